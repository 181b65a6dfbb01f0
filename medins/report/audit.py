"""Rich views of ``medins audit``, in Chinese or English: the accounting, the views, one claim beside its record.

Why apart from the job: the numbers (``medins.audit``) are the same whether they end on a terminal, in
JSON, CSV or a workbook; this module only chooses words and layout.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from medins.audit import COMPARED, VIEW_MONEY, AuditResult, recorded
from medins.money import format_yuan
from medins.report.labels import AUDIT_REASONS, Lang, field_label, pick, reason_label
from medins.report.summary import reject_words

TITLES = {
    "overview": ("核对结果", "Audit"), "by_reason": ("按原因(差额大者在前)", "By reason (largest first)"),
    "by_hospital": ("按医院(差额大者在前)", "By hospital (largest first)"),
    "by_month": ("按月份(出院月)", "By month (discharge)"), "largest": ("差额最大的结算", "Largest differences"),
    "not_settleable": ("无法结算(按原因)", "Not settleable, by reason"),
    "rejects": ("未读入的行(按原因)", "Rejected input rows, by reason"),
}
HEADINGS = {
    "rows_read": ("读入行数", "rows read"), "rows_rejected": ("拒收行数", "rows rejected"), "claims": ("结算笔数", "claims"),
    "agree": ("一致", "agree"), "differ": ("不一致", "differ"), "not_settleable": ("无法结算", "not settleable"),
    "fund_overpaid": ("基金多付", "fund overpaid"), "fund_underpaid": ("基金少付", "fund underpaid"),
    "fund_net": ("净差额", "net"), "reason": ("原因", "reason"), "hospital": ("医院", "hospital"),
    "month": ("月份", "month"), "claim_id": ("结算单号", "claim"), "fund_recorded": ("记录基金支付", "fund recorded"),
    "fund_computed": ("应付基金", "fund per policy"), "fund_delta": ("差额", "difference"),
    "message": ("说明", "explanation"), "rows": ("行数", "rows"),
}


def audit_reason_label(code: str, lang: Lang) -> str:
    """Words of an audit reason (or, for a claim not settleable, of the engine's reason)."""
    return pick(AUDIT_REASONS[code], lang) if code in AUDIT_REASONS else reason_label(code, lang)


def _cell(name: str, column: str, value: object, lang: Lang) -> str:
    if value is None:
        return "—"
    if column in VIEW_MONEY:
        return format_yuan(int(value))  # type: ignore[arg-type]
    if column == "reason":
        words = reject_words(str(value), lang) if name == "rejects" else audit_reason_label(str(value), lang)
        return f"{words} [{value}]"
    return str(value)


def view_table(name: str, frame: pl.DataFrame, lang: Lang) -> Table:
    """One view as a table; the largest-differences view shows the explanation in the chosen language."""
    if name == "largest":  # the explanations are printed under the table, one line each
        frame = frame.drop("message_en", "message_zh")
    table = Table(title=pick(TITLES.get(name, (name, name)), lang), box=box.SIMPLE, title_justify="left")
    for column in frame.columns:
        text = column in ("reason", "hospital", "month", "claim_id", "message")
        table.add_column(pick(HEADINGS.get(column, (column, column)), lang), justify="left" if text else "right",
                         overflow="fold")
    for row in frame.iter_rows(named=True):
        table.add_row(*[_cell(name, c, row[c], lang) for c in frame.columns])
    return table


def audit_view(result: AuditResult, views: Mapping[str, pl.DataFrame], lang: Lang) -> RenderableType:
    """The accounting line first (rows read = claims + rejected; claims = agree + differ + not settleable),
    then every non-empty view."""
    zh = lang == "zh"
    line = (f"读入 {result.rows_read} 行 = 结算 {result.claims.height} 笔 + 拒收 {result.rows_rejected} 行;"
            f"结算 {result.claims.height} 笔 = 一致 {result.agree} + 不一致 {result.differ} + 无法结算 "
            f"{result.not_settleable}" if zh else
            f"rows read {result.rows_read} = claims {result.claims.height} + rejected {result.rows_rejected}; "
            f"claims {result.claims.height} = agree {result.agree} + differ {result.differ} + not settleable "
            f"{result.not_settleable}")
    compared = ", ".join(field_label(f, lang) for f in result.compared)
    tolerance = format_yuan(result.tolerance)
    note = (f"核对字段:{compared};容差 {tolerance} 元" if zh else f"compared: {compared}; tolerance {tolerance} yuan")
    parts: list[RenderableType] = [Text(line, style="bold"), Text(note, style="dim")]
    for name, frame in views.items():
        if name == "overview" or not frame.height:
            continue
        parts.append(view_table(name, frame, lang))
        if name == "largest":
            parts += [Text(f"  • {r['claim_id']}: {r['message_zh' if zh else 'message_en']}", style="red")
                      for r in frame.iter_rows(named=True)]
    return Group(*parts)


def claim_view(result: AuditResult, claim_id: str, lang: Lang, policy) -> RenderableType:
    """One claim: recorded beside recomputed for every settlement field, the reason, then the full explain."""
    from medins.api import settlement_row_to_dict
    from medins.errors import UsageError
    from medins.report.explain import explain_steps
    from medins.report.tables import explain_table

    if result.claims.filter(pl.col("claim_id") == claim_id).height == 0:
        rejected = result.rejects.filter(pl.col("claim_id") == claim_id)
        if rejected.height:
            r = rejected.row(0, named=True)
            raise UsageError(f"claim {claim_id!r} was not read: row {r['row']}: {r['message_en']}",
                             f"结算单“{claim_id}”未读入:第 {r['row']} 行:{r['message_zh']}")
        raise UsageError(f"no claim {claim_id!r} in the file", f"文件中没有结算单“{claim_id}”")
    row = result.trace_of(pl.col("claim_id") == claim_id).filter(pl.col("claim_id") == claim_id).row(0, named=True)
    audited = result.claims.filter(pl.col("claim_id") == claim_id).row(0, named=True)
    zh = lang == "zh"
    table = Table(title=f"{claim_id}  ·  {row['policy']}", box=box.SIMPLE_HEAVY, title_justify="left")
    for heading in (("项目", "Item"), ("记录(元)", "Recorded"), ("按政策(元)", "Per policy"), ("差额", "Difference")):
        table.add_column(pick(heading, lang), justify="left" if heading[1] == "Item" else "right")
    given_row = result.claims.filter(pl.col("claim_id") == claim_id).row(0, named=True)
    for field in ("medfee_sumamt", "fulamt_ownpay_amt", *COMPARED):
        computed = row[field]
        given = given_row.get(recorded(field)) if field in result.compared else None
        differs = given is not None and abs(given - computed) > result.tolerance
        if given is None and not computed and field not in ("inscp_scp_amt", "hifp_pay", "psn_part_amt"):
            continue
        table.add_row(field_label(field, lang), "—" if given is None else format_yuan(given), format_yuan(computed),
                      Text(format_yuan(given - computed), style="bold red") if differs else Text(""))
    verdict = audited["verdict"]
    head = Text(f"{pick(AUDIT_REASONS[verdict], lang)}", style="green" if verdict == "agree" else "bold red")
    parts: list[RenderableType] = [table, head]
    if audited.get("reason"):
        message = audited["message_zh" if zh else "message_en"]
        parts.append(Text(f"  • {audit_reason_label(audited['reason'], lang)} [{audited['reason']}]: {message}",
                          style="red"))
    result_dict = settlement_row_to_dict(row)
    for code in result_dict["reasons"]:
        parts.append(Text(f"  • {reason_label(code, lang)}  [{code}]", style="yellow"))
    parts.append(explain_table(explain_steps(policy, row), lang))
    return Group(*parts)
