"""Renderables and exports of the analyst views: side-by-side bills, claims views, the reform view.

Why one place for all formats: every view is a Polars frame; the same frame becomes a Rich table
(money right-justified, shares as percent), JSON records, a CSV block or an XLSX sheet, so the
numbers an analyst pastes into a report are the numbers on screen.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from medins.atomic import atomic_path
from medins.engine.settle import MONEY_OUTPUTS
from medins.money import format_yuan
from medins.report.labels import STATUS, Lang, field_label, pick, reason_label

MONEY_VIEW_COLUMNS = {"total", "fund", "inscope_selfpay", "outscope_selfpay", "inscope", "fund_change", "gain_sum",
                      "loss_sum", "gain_mean", "loss_mean", "largest_gain", "largest_loss"}
RATIO_COLUMNS = {"fund_share", "inscope_rate", "incidence"}
HEADINGS = {
    "policy": ("政策", "policy"), "group": ("分组", "group"), "claims": ("笔数", "claims"),
    "not_paid": ("不予支付", "not paid"), "total": ("医疗费总额", "total"), "fund": ("基金支付", "fund"),
    "inscope_selfpay": ("政策范围内自付", "in-scope self-pay"),
    "outscope_selfpay": ("政策范围外自费", "out-of-scope self-pay"),
    "inscope": ("政策范围内金额", "in scope"), "fund_share": ("实际报销比", "fund ÷ total"),
    "inscope_rate": ("政策范围内报销比", "fund ÷ in scope"), "persons": ("人数", "persons"),
    "person_years": ("人·年", "person-years"),
    "with_income": ("有收入数据", "with income"), "catastrophic": ("灾难性支出", "catastrophic"),
    "incidence": ("发生率", "incidence"), "reason": ("原因", "reason"), "unit": ("单位", "unit"),
    "count": ("数量", "count"), "gain": ("受益", "gain"), "lose": ("受损", "lose"), "unchanged": ("不变", "unchanged"),
    "fund_change": ("基金支出变化", "fund change"), "gain_sum": ("受益合计", "gains"), "loss_sum": ("受损合计", "losses"),
    "gain_mean": ("平均受益", "mean gain"), "loss_mean": ("平均受损", "mean loss"),
    "largest_gain": ("最大受益", "largest gain"), "largest_loss": ("最大受损", "largest loss"),
}
TITLES = {
    "totals": ("合计", "Totals"), "fee_bands": ("按费用段", "By fee band"), "age_groups": ("按年龄组", "By age group"),
    "catastrophic": ("灾难性医疗支出(按人按年度:年内自付超过年收入40%)",
                     "Catastrophic expenditure (per person and benefit year: out-of-pocket > 40 % of income)"),
    "not_paid": ("不予支付的结算(按原因)", "Claims not paid, by reason"), "reform": ("改革影响(第二个政策相对第一个)",
                                                                       "Reform view (second policy against the first)"),
}


def _cell(column: str, value: object, lang: Lang) -> str:
    if value is None:
        return "—"
    if column in MONEY_VIEW_COLUMNS:
        return format_yuan(int(value))
    if column in RATIO_COLUMNS:
        return f"{float(value) * 100:.1f}%"
    if column == "reason":
        return f"{reason_label(str(value), lang)} [{value}]"
    return str(value)


def view_table(name: str, frame: pl.DataFrame, lang: Lang) -> Table:
    table = Table(title=pick(TITLES.get(name, (name, name)), lang), box=box.SIMPLE, title_justify="left")
    for column in frame.columns:
        numeric = column not in ("policy", "group", "reason", "unit")
        table.add_column(pick(HEADINGS.get(column, (column, column)), lang), justify="right" if numeric else "left")
    for row in frame.iter_rows(named=True):
        table.add_row(*[_cell(c, row[c], lang) for c in frame.columns])
    return table


def views_renderable(views: dict[str, pl.DataFrame], lang: Lang) -> RenderableType:
    return Group(*[view_table(name, frame, lang) for name, frame in views.items() if frame.height])


def bill_table(results: list[dict], lang: Lang) -> RenderableType:
    """Fields as rows, one column per policy; a value differing from the first policy's is highlighted."""
    zh = lang == "zh"
    table = Table(title=("同一账单在不同政策下" if zh else "One bill under each policy"), box=box.SIMPLE_HEAVY,
                  title_justify="left")
    table.add_column("项目" if zh else "field")
    for r in results:
        table.add_column(r["policy"], justify="right")
    for name in MONEY_OUTPUTS:
        values = [r[name] for r in results]
        if all(v == "0.00" for v in values) and name not in ("fund_pay_sumamt", "psn_part_amt"):
            continue
        if name in ("refund_amt", "due_amt") and all(r["deposit_amt"] == "0.00" for r in results):
            continue  # no deposit given: 应退/应补 would only repeat the cash share
        cells = [Text(format_yuan(int(v.replace(".", ""))), style="bold yellow" if v != values[0] else "")
                 for v in values]
        table.add_row(field_label(name, lang), *cells)
    table.add_section()
    table.add_row(field_label("status", lang), *[
        Text(pick(STATUS[r["status"]], lang), style="green" if r["status"] == "settled" else "red") for r in results])
    table.add_row(field_label("reasons", lang), *[
        Text("\n".join(reason_label(c, lang) for c in r["reasons"]) or "—") for r in results])
    return table


def views_to_json(views: dict[str, pl.DataFrame]) -> dict:
    return {name: frame.to_dicts() for name, frame in views.items()}


def views_to_csv(views: dict[str, pl.DataFrame]) -> str:
    """All views in one CSV text: a ``view`` column, then each view's columns (blank where not its own)."""
    frames = [frame.with_columns(pl.all().cast(pl.String)).with_columns(view=pl.lit(name)) for name, frame in views.items()
              if frame.height]
    merged = pl.concat(frames, how="diagonal").select("view", pl.all().exclude("view"))
    return merged.write_csv()


def views_to_xlsx(views: dict[str, pl.DataFrame], path: Path) -> None:
    """One sheet per view, written to a temporary file and renamed (an interrupted run leaves no half file)."""
    import xlsxwriter

    with atomic_path(path, ".xlsx") as tmp, xlsxwriter.Workbook(tmp) as book:
        for name, frame in views.items():
            if frame.height:
                frame.write_excel(book, worksheet=name[:31])
