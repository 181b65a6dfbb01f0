"""The batch summary a data team reads first: does it add up, what did the fund pay, what was refused.

Why these cuts: a reprocessing run is judged by its accounting (rows read = settled + rejected), and
reimbursement by the fund's and the patient's shares and the effective rate (fund ÷ total), by
visit type, zone and hospital level — the cuts 医保 statistics are reported in.
"""

from __future__ import annotations

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from medins.money import format_yuan
from medins.report.labels import INPUT_REJECTS, SUMMARY, VALUES, Lang, pick, reason_label

CUTS = ("visit_type", "hospital_zone", "hospital_level")


def _rate(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}%" if whole else "—"


def _weight(settlement: pl.DataFrame) -> pl.Expr:
    # A partitioned run hands over counts already aggregated (``_n`` claims per row); a plain run, claims.
    return pl.col("_n") if "_n" in settlement.columns else pl.col("medfee_sumamt").is_not_null().cast(pl.Int64)


def breakdown(settlement: pl.DataFrame, by: str | None) -> pl.DataFrame:
    """Claims, total, fund, patient and claims not paid, overall (``by=None``) or per value of ``by``."""
    weight = _weight(settlement)
    aggs = [
        weight.sum().alias("claims"),
        pl.col("medfee_sumamt").sum().alias("total"),
        pl.col("fund_pay_sumamt").sum().alias("fund"),
        pl.col("psn_part_amt").sum().alias("patient"),
        pl.when(pl.col("status") == "rejected").then(weight).otherwise(0).sum().alias("not_paid"),
    ]
    if by is None:
        return settlement.select(aggs)
    return settlement.group_by(pl.col(by).cast(pl.String)).agg(aggs).sort(by, nulls_last=True)


def group_label(by: str, value: str | None, lang: Lang) -> str:
    """``inpatient`` → 住院 / inpatient; level ``3`` → 3级 / level 3; unknown → 未知 / unknown."""
    if value is None:
        return pick(SUMMARY["unknown"], lang)
    if by == "hospital_level":
        return f"{value}级" if lang == "zh" else f"level {value}"
    return pick(VALUES.get(by, {}).get(value, (value, value)), lang)


def summary_view(result, lang: Lang) -> RenderableType:
    """Accounting line, totals by visit type / zone / level, claims not paid and rejected rows by reason."""
    def say(key: str) -> str:
        return pick(SUMMARY[key], lang)

    parts: list[RenderableType] = [accounting_line(result.rows_read, result.rows_rejected, result.claims_settled,
                                                   result.encoding, result.seconds, lang)]
    columns = [say("claims"), say("total"), say("fund"), say("patient"), say("rate"), say("not_paid")]
    for by in (None, *CUTS):
        frame = breakdown(result.settlement, by)
        table = Table(title=say(by or "all"), box=box.SIMPLE, title_justify="left", padding=(0, 1), pad_edge=False,
                      collapse_padding=True)
        if by is not None:
            width = max([len(say("group")), *(len(group_label(by, v, lang)) * (2 if lang == "zh" else 1)
                                               for v in frame[by].to_list())])
            table.add_column(say("group"), min_width=min(width, 10))
        for name in columns:
            table.add_column(name, justify="right", no_wrap=True)
        for row in frame.iter_rows(named=True):
            cells = [str(row["claims"]), format_yuan(row["total"]), format_yuan(row["fund"]),
                     format_yuan(row["patient"]), _rate(row["fund"], row["total"]), str(row["not_paid"])]
            table.add_row(*([] if by is None else [group_label(by, row[by], lang)]), *cells)
        parts.append(table)
    parts.append(Text(say("rate_note"), style="dim"))
    frame = result.settlement
    # the two columns it reads, then the rejected rows: filtering the whole settlement first copied every column
    # of every rejected claim (50 ms of a 200,000-claim batch's summary)
    not_paid = (frame.select(pl.col("reasons"), _weight(frame).alias("_w")).filter(frame["status"] == "rejected")
                .explode("reasons").group_by("reasons").agg(pl.col("_w").sum().alias("n"))
                .sort(["n", "reasons"], descending=[True, False]))
    if not_paid.height:
        table = Table(title=say("not_paid_by_reason"), box=box.SIMPLE, title_justify="left")
        table.add_column(say("reason"))
        table.add_column(say("claims"), justify="right")
        for reason, count in not_paid.iter_rows():
            table.add_row(f"{reason_label(reason, lang)} [{reason}]", str(count))
        parts.append(table)
    if result.rows_rejected:
        parts.append(rejected_rows_table(result.rejects_table, lang))
        parts.append(Text(f"{say('rejects_file')}: {result.rejects}", style="yellow"))
    parts.append(Text(f"{say('output_file')}: {result.output}", style="green"))
    return Group(*parts)


def accounting_line(rows_read: int, rows_rejected: int, claims: int, encoding: str, seconds: float | None,
                    lang: Lang) -> Text:
    """``rows read 27 = settled 25 + rejected 2   (25 claims, gbk, 0.31 s)``: the line every command that reads
    claims prints first (batch, compare), so a run is judged by whether it adds up."""
    settled_rows = rows_read - rows_rejected
    took = "" if seconds is None else (f", {seconds:.2f} 秒" if lang == "zh" else f", {seconds:.2f} s")
    if lang == "zh":
        line = (f"读取 {rows_read} 行 = 结算 {settled_rows} 行 + 拒收 {rows_rejected} 行"
                f"   (结算单 {claims} 笔, {encoding}{took})")
    else:
        line = (f"rows read {rows_read} = settled {settled_rows} + rejected {rows_rejected}"
                f"   ({claims} claims, {encoding}{took})")
    return Text(line, style="bold")


def rejected_rows_table(rejects: pl.DataFrame, lang: Lang) -> Table:
    """The rejected input rows by reason (a row with several reasons counts under each)."""
    reasons = (rejects.select(pl.col("reason").str.split(";")).explode("reason")
               .group_by("reason").len().sort(["len", "reason"], descending=[True, False]))
    table = Table(title=pick(SUMMARY["rejected_rows"], lang), box=box.SIMPLE, title_justify="left")
    table.add_column(pick(SUMMARY["reason"], lang), overflow="fold")
    table.add_column(pick(SUMMARY["rows"], lang) if lang == "zh" else "rows", justify="right", no_wrap=True)
    for reason, count in reasons.iter_rows():
        table.add_row(f"{reject_words(reason, lang)} [{reason}]", str(count))
    return table


def reject_words(code: str, lang: Lang) -> str:
    """Words for a rejected input row's code: ``bad_date:admit_date`` → invalid date: admit_date."""
    head, _, column = code.partition(":")
    words = INPUT_REJECTS.get(head)
    if words is None:
        return reason_label(code, lang)
    text = pick(words, lang)
    return f"{text}: {column}" if column else text
