"""The batch summary a data team reads first: does it add up, what did the fund pay, what was rejected.

Why these cuts: reimbursement is judged by the effective rate (fund ÷ total) by visit type, zone and
hospital level; a reprocessing run is judged by rows read = settled + rejected.
"""

from __future__ import annotations

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from medins.money import format_yuan
from medins.report.labels import Lang, field_label, reason_label


def _rate(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}%" if whole else "—"


def breakdown(settlement: pl.DataFrame, by: str | None) -> pl.DataFrame:
    """Claims, total, fund, patient and the effective rate, overall (``by=None``) or per value of ``by``."""
    # A partitioned run hands over counts already aggregated (``_n`` claims per row); a plain run, claims.
    weight = pl.col("_n") if "_n" in settlement.columns else pl.col("medfee_sumamt").is_not_null().cast(pl.Int64)
    aggs = [
        weight.sum().alias("claims"),
        pl.col("medfee_sumamt").sum().alias("total"),
        pl.col("fund_pay_sumamt").sum().alias("fund"),
        pl.col("psn_part_amt").sum().alias("patient"),
        pl.when(pl.col("status") == "rejected").then(weight).otherwise(0).sum().alias("not_paid"),
    ]
    if by is None:
        return settlement.select(aggs)
    return settlement.group_by(pl.col(by).cast(pl.String).fill_null("—")).agg(aggs).sort(by)


def summary_view(result, lang: Lang) -> RenderableType:
    """Accounting line, totals by visit type / zone / level, and rejected input rows by reason."""
    zh = lang == "zh"
    settled_rows = result.rows_read - result.rows_rejected
    unit = ("行" if zh else "rows")
    check = Text(
        (f"读取 {result.rows_read} {unit} = 结算 {settled_rows} + 拒收 {result.rows_rejected}"
         if zh else f"rows read {result.rows_read} = settled {settled_rows} + rejected {result.rows_rejected}")
        + (f"   ({result.claims_settled} {'笔结算' if zh else 'claims'}, {result.encoding}, "
           f"{result.seconds:.2f} s)"),
        style="bold",
    )
    parts: list[RenderableType] = [check]
    headers = (("分组", "group"), ("笔数", "claims"), (field_label("medfee_sumamt", lang), "total"),
               (field_label("fund_pay_sumamt", lang), "fund"), (field_label("psn_part_amt", lang), "patient"),
               ("基金占比", "fund share"), ("不予支付", "not paid"))
    for by, title in ((None, ("合计", "All claims")), ("visit_type", ("按就诊类型", "By visit type")),
                      ("hospital_zone", ("按就医区域", "By zone")), ("hospital_level", ("按医院等级", "By hospital level"))):
        frame = breakdown(result.settlement, by)
        table = Table(title=title[0] if zh else title[1], box=box.SIMPLE, title_justify="left")
        for i, head in enumerate(headers):
            if by is None and i == 0:
                continue
            table.add_column(head[0] if zh else head[1], justify="left" if i == 0 else "right")
        for row in frame.iter_rows(named=True):
            cells = [str(row["claims"]), format_yuan(row["total"]), format_yuan(row["fund"]),
                     format_yuan(row["patient"]), _rate(row["fund"], row["total"]), str(row["not_paid"])]
            table.add_row(*([] if by is None else [str(row[by])]), *cells)
        parts.append(table)
    frame = result.settlement
    weight = pl.col("_n") if "_n" in frame.columns else pl.col("medfee_sumamt").is_not_null().cast(pl.Int64)
    not_paid = (frame.filter(pl.col("status") == "rejected").select(pl.col("reasons"), weight.alias("_w"))
                .explode("reasons").group_by("reasons").agg(pl.col("_w").sum().alias("len"))
                .sort(["len", "reasons"], descending=[True, False]))
    if not_paid.height:
        table = Table(title="不予支付的结算(按原因)" if zh else "Claims not paid, by reason", box=box.SIMPLE,
                      title_justify="left")
        table.add_column("原因" if zh else "reason")
        table.add_column("笔数" if zh else "claims", justify="right")
        for reason, count in not_paid.iter_rows():
            table.add_row(f"{reason_label(reason, lang)} [{reason}]", str(count))
        parts.append(table)
    if result.rows_rejected:
        reasons = (result.rejects_table.select(pl.col("reason").str.split(";")).explode("reason")
                   .group_by("reason").len().sort(["len", "reason"], descending=[True, False]))
        table = Table(title="拒收的输入行" if zh else "Rejected input rows", box=box.SIMPLE, title_justify="left")
        table.add_column("原因" if zh else "reason")
        table.add_column("行数" if zh else "rows", justify="right")
        for reason, count in reasons.iter_rows():
            table.add_row(f"{_reject_words(reason, lang)} [{reason}]", str(count))
        parts.append(table)
        parts.append(Text(f"{'拒收明细' if zh else 'Rejects written to'}: {result.rejects}", style="yellow"))
    parts.append(Text(f"{'结算结果' if zh else 'Settlements written to'}: {result.output}", style="green"))
    return Group(*parts)


def _reject_words(code: str, lang: Lang) -> str:
    head, _, column = code.partition(":")
    words = {
        "missing_field": ("缺少必填字段", "missing required field"), "bad_date": ("日期无效", "invalid date"),
        "negative_amount": ("金额为负", "negative amount"), "not_a_number": ("不是数字", "not a number"),
        "sub_fen": ("金额小于一分", "finer than one fen"), "too_large": ("金额过大", "amount too large"),
        "unknown_code": ("未知代码", "unknown code"), "self_pay_above_total": ("自费高于总额", "self-pay above total"),
        "class_b_above_in_scope": ("乙类高于范围内金额", "class B above the in-scope amount"),
        "field_count": ("列数不符", "wrong number of fields"),
        "discharge_before_admit": ("出院早于入院", "discharge before admission"),
        "conflicting_claim_fields": ("同一结算单的信息不一致", "conflicting claim fields"),
        "claim_has_bad_line": ("同一结算单有错误明细", "another line of the claim is bad"),
    }.get(head)
    if words is None:
        return reason_label(code, lang)
    text = words[0] if lang == "zh" else words[1]
    return f"{text}: {column}" if column else text
