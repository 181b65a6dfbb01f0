"""Renderables and exports of the analyst views: side-by-side bills, claims views, the reform view.

Why one place for all formats: every view is a Polars frame; the same frame becomes a Rich table
(money right-justified, shares as percent), JSON records, a CSV block or an XLSX sheet, so the
numbers an analyst pastes into a report are the numbers on screen. Machine-readable outputs follow the
contract of every medins output (docs/outputs.md): money as yuan text with two decimals (``"17519.25"``),
shares as percentages rounded half up to two decimals (``"61.23%"``), computed exactly from the integer
parts (fund ÷ total in fen), never a binary float.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.text import Text

from medins.atomic import atomic_path
from medins.claims.writers import yuan_text
from medins.engine.settle import MONEY_OUTPUTS
from medins.money import format_yuan
from medins.report.labels import STATUS, Lang, field_label, pick, reason_label
from medins.report.layout import Column, SplitTable

MONEY_VIEW_COLUMNS = {"total", "fund", "patient", "inscope_selfpay", "outscope_selfpay", "inscope", "fund_change",
                      "gain_sum", "loss_sum", "gain_mean", "loss_mean", "largest_gain", "largest_loss"}
RATIO_COLUMNS = {"fund_share", "inscope_rate", "incidence"}
#: Each share as numerator ÷ denominator of integer columns of the same view (exact percentages).
RATIO_PARTS = {"fund_share": ("fund", "total"), "inscope_rate": ("fund", "inscope"),
               "incidence": ("catastrophic", "with_income")}
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


def percent_text(numerator: pl.Expr, denominator: pl.Expr, decimals: int = 2) -> pl.Expr:
    """``numerator ÷ denominator`` as ``"61.23%"``, rounded half up exactly (integers); null when ÷ 0.

    Both parts are non-negative counts or fen; Int128 keeps a year of claims' sums times 10⁴ exact.
    """
    scale = 10 ** (decimals + 2)
    num, den = numerator.cast(pl.Int128), denominator.cast(pl.Int128)
    units = (num * (2 * scale) + den) // (2 * den)
    whole = (units // 10**decimals).cast(pl.String)
    text = whole + pl.lit(".") + (units % 10**decimals).cast(pl.String).str.zfill(decimals) if decimals else whole
    return pl.when(den > 0).then(text + pl.lit("%"))


def export_frame(frame: pl.DataFrame, decimals: int = 2) -> pl.DataFrame:
    """A view as every output writes it: money columns as yuan text, shares as exact percentages."""
    exprs = []
    for name in frame.columns:
        if name in MONEY_VIEW_COLUMNS:
            exprs.append(yuan_text(pl.col(name).cast(pl.Int64)).alias(name))
        elif name in RATIO_PARTS and set(RATIO_PARTS[name]) <= set(frame.columns):
            exprs.append(percent_text(*(pl.col(c) for c in RATIO_PARTS[name]), decimals).alias(name))
        else:
            exprs.append(pl.col(name))
    return frame.select(exprs)


def _cell(column: str, value: object, lang: Lang) -> str:
    if value is None:
        return "—"
    if column in MONEY_VIEW_COLUMNS:
        return format_yuan(int(value))
    if column == "reason":
        return f"{reason_label(str(value), lang)} [{value}]"
    return str(value)


def view_table(name: str, frame: pl.DataFrame, lang: Lang) -> SplitTable:
    """One view as a table that splits into parts rather than cut a number (policy and group repeat)."""
    shown = frame.with_columns(export_frame(frame, 1).select(c for c in frame.columns if c in RATIO_COLUMNS))
    columns = [Column(pick(HEADINGS.get(c, (c, c)), lang), justify="left" if c in KEY_COLUMNS or c == "reason"
                      else "right", key=c in KEY_COLUMNS, whole=c != "reason") for c in frame.columns]
    rows = [[_cell(c, row[c], lang) for c in frame.columns] for row in shown.iter_rows(named=True)]
    return SplitTable(pick(TITLES.get(name, (name, name)), lang), columns, rows,
                      continued="(续)" if lang == "zh" else "(continued)")


#: Columns that identify a row of a view: repeated in each part of a split table.
KEY_COLUMNS = ("policy", "group", "unit")


def views_renderable(views: dict[str, pl.DataFrame], lang: Lang) -> RenderableType:
    return Group(*[view_table(name, frame, lang) for name, frame in views.items() if frame.height])


def bill_table(results: list[dict], lang: Lang) -> RenderableType:
    """Fields as rows, one column per policy (split into parts when they do not fit side by side); a value
    differing from the first policy's is highlighted."""
    zh = lang == "zh"
    columns = [Column("项目" if zh else "field", key=True, whole=False)]
    columns += [Column(f"{r['policy']}", justify="right") for r in results]
    rows: list[list] = []
    for name in MONEY_OUTPUTS:
        values = [r[name] for r in results]
        if all(v == "0.00" for v in values) and name not in ("fund_pay_sumamt", "psn_part_amt"):
            continue
        if name in ("refund_amt", "due_amt") and all(r["deposit_amt"] == "0.00" for r in results):
            continue  # no deposit given: 应退/应补 would only repeat the cash share
        rows.append([field_label(name, lang), *[
            Text(format_yuan(int(v.replace(".", ""))), style="bold yellow" if v != values[0] else "") for v in values]])
    rows.append([field_label("status", lang), *[
        Text(pick(STATUS[r["status"]], lang), style="green" if r["status"] == "settled" else "red") for r in results]])
    rows.append([field_label("reasons", lang), *[
        Text("\n".join(reason_label(c, lang) for c in r["reasons"]) or "—") for r in results]])
    return SplitTable("同一账单在不同政策下" if zh else "One bill under each policy", columns, rows,
                      box=box.SIMPLE_HEAVY, continued="(续)" if zh else "(continued)")


def views_to_json(views: dict[str, pl.DataFrame]) -> dict:
    """Each view as a list of records (money yuan text, shares percent text, counts integers)."""
    return {name: export_frame(frame).to_dicts() for name, frame in views.items()}


def views_to_csv(views: dict[str, pl.DataFrame]) -> str:
    """All views in one CSV text: a ``view`` column, then each view's columns (blank where not its own)."""
    frames = [export_frame(frame).with_columns(pl.all().cast(pl.String)).with_columns(view=pl.lit(name))
              for name, frame in views.items() if frame.height]
    merged = pl.concat(frames, how="diagonal").select("view", pl.all().exclude("view"))
    return merged.write_csv()


def views_to_xlsx(views: dict[str, pl.DataFrame], path: Path) -> None:
    """One sheet per view, written to a temporary file and renamed (an interrupted run leaves no half file)."""
    import xlsxwriter

    with atomic_path(path, ".xlsx") as tmp, xlsxwriter.Workbook(tmp) as book:
        for name, frame in views.items():
            if frame.height:
                export_frame(frame).write_excel(book, worksheet=name[:31])
