"""``medins audit``: recompute a settlement export and show where it disagrees with the policy.

Why a job of its own: an export from a hospital or 医保 system already carries what someone paid
(统筹基金支付 / hifp_pay, 起付线 / act_pay_dedc …). The auditor's question is whether each claim paid
what the policy says, and if not, where the two part. The answer must come from the very engine
``batch`` uses — the export is read by the same reader (encodings, aliases, ``--map``, rejects) with
its recorded columns kept apart, settled by :func:`medins.engine.settle.settle`, and compared field
by field — so an audit can never disagree with a batch of the same claims.

The first field of the waterfall (scope → payability → deductible → pooled fund → layers → totals →
account → cash) where recorded and recomputed differ names the claim's reason; the numbers of the
steps (standard, zone, cap cut, class-B reduction) come from the engine's own trace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from medins.claims.aliases import with_values
from medins.claims.fields import RECORDED_FIELDS
from medins.claims.readers import read_claims
from medins.engine.settle import FUND_FIELDS, settle
from medins.errors import InputError
from medins.money import format_yuan
from medins.policy.checks import declared_values
from medins.policy.compiled import CompiledPolicy
from medins.policy.schema import PAYER_FIELDS
from medins.report.labels import reason_label
from medins.report.tables import short_source

#: The compared settlement fields in waterfall order: the first that differs names the claim's reason.
COMPARED = ("overlmt_selfpay", "inscp_scp_amt", "act_pay_dedc", *FUND_FIELDS, "fund_pay_sumamt", "psn_part_amt",
            "acct_pay", "psn_cash_pay")
SCOPE_FIELDS = ("overlmt_selfpay", "inscp_scp_amt")
FUND_PARTS = FUND_FIELDS
LAYER_FIELDS = PAYER_FIELDS

#: Reason code of a claim by its first differing field (hifp_pay is refined by the trace: cap, class B, bands).
FIELD_REASON = {
    "overlmt_selfpay": "scope_differs", "inscp_scp_amt": "scope_differs",
    "act_pay_dedc": "deductible_differs", "hifp_pay": "band_differs",
    **dict.fromkeys(PAYER_FIELDS, "layer_differs"), "fund_pay_sumamt": "fund_total_differs",
    "psn_part_amt": "patient_share_differs", "acct_pay": "account_differs", "psn_cash_pay": "cash_differs",
}


@dataclass
class AuditResult:
    """What an audit found; money in fen. ``claims`` has one row per claim read, ``differences`` one per
    differing field (or not settleable claim); ``trace_of`` gives the engine's full rows of some claims."""

    rows_read: int
    rows_rejected: int
    encoding: str
    compared: tuple[str, ...]
    tolerance: int
    claims: pl.DataFrame
    differences: pl.DataFrame
    rejects: pl.DataFrame
    trace_of: Callable[[pl.Expr], pl.DataFrame]
    seconds: float
    #: Parameters the policy lacks that some claim needs (the command stops on them, as calc and batch do).
    missing: tuple[str, ...] = ()

    @property
    def agree(self) -> int:
        return self.claims.filter(pl.col("verdict") == "agree").height

    @property
    def differ(self) -> int:
        return self.claims.filter(pl.col("verdict") == "differ").height

    @property
    def not_settleable(self) -> int:
        return self.claims.filter(pl.col("verdict") == "not_settleable").height

    @property
    def clean(self) -> bool:
        """Every row read, every claim settled and agreeing: exit code 0."""
        return self.rows_rejected == 0 and self.agree == self.claims.height


def recorded(name: str) -> str:
    """The column of the export's recorded value of settlement field ``name``."""
    return f"recorded_{name}"


def run_audit(claims_path: str | Path, policy: CompiledPolicy, *, encoding: str = "auto", mapping: dict | None = None,
              tolerance: int = 0, on_stage: Callable[[str, float], None] | None = None) -> AuditResult:
    """Read the export, settle every claim with the one engine, and compare (``tolerance`` in fen)."""
    start = time.perf_counter()
    stage = on_stage or (lambda _name, _done: None)
    stage("read", 0.0)
    mapping = with_values(mapping, declared_values(policy.model))  # as batch: codes the policy declares are read
    read = read_claims(claims_path, encoding=encoding, mapping=mapping, recorded=True)
    present = {name for name in read.header_map.values() if name}
    compared = tuple(f for f in COMPARED if recorded(f) in present)
    if not compared:
        raise InputError(
            message_en="the file has no recorded settlement column to compare (e.g. hifp_pay / 统筹基金支付, "
                       "act_pay_dedc / 起付线, psn_part_amt / 个人负担)",
            message_zh="文件中没有可核对的结算结果列（如 统筹基金支付、起付线、个人负担）",
            hint_en="map your export's headers with --map MAP.yaml (columns: {YOUR_HEADER: recorded_hifp_pay})",
            hint_zh="可用 --map MAP.yaml 指定表头（columns: {原表头: recorded_hifp_pay}）", file=str(claims_path))
    stage("settle", 0.3)
    items = read.items if read.shape == "items" else None
    # the recorded amounts never enter the engine: they rejoin its output, which is in input order
    given = [recorded(f) for f in compared]
    inputs = read.claims.drop(f.name for f in RECORDED_FIELDS)
    settled = settle(policy, inputs, items, keep=("row", "hospital_name", "discharge_date")).with_columns(
        read.claims.select(given))
    stage("compare", 0.85)

    def trace_of(which: pl.Expr) -> pl.DataFrame:
        return person_trace(policy, inputs, items, which)

    claims, differences = compare(policy, settled, compared, tolerance, trace_of)
    codes = settled.select(pl.col("reasons").explode().drop_nulls().unique())["reasons"].to_list()
    missing = tuple(sorted({c.split(":", 1)[1] for c in codes if c.startswith("missing_parameter:")}))
    return AuditResult(missing=missing, rows_read=read.rows_read, rows_rejected=read.rejects.height, encoding=read.encoding,
                       compared=compared, tolerance=tolerance, claims=claims, differences=differences,
                       rejects=read.rejects, trace_of=trace_of, seconds=time.perf_counter() - start)


def person_trace(policy: CompiledPolicy, claims: pl.DataFrame, items: pl.DataFrame | None,
                 which: pl.Expr) -> pl.DataFrame:
    """The engine's full trace (``keep_trace``) of the claims ``which`` selects, keyed by ``row``.

    Why settle the persons again rather than keep the trace of the whole file: the trace is ten times
    wider than a settlement, and only the few differing claims need it. All year-to-date state belongs
    to one person (the property the partitioned batch rests on), so settling every claim of the persons
    concerned gives their rows exactly as the whole file did.
    """
    persons = claims.filter(which)["person_id"].unique()
    mine = claims.filter(pl.col("person_id").is_in(persons.implode()))
    lines = items.filter(pl.col("claim_row").is_in(mine["row"].implode())) if items is not None else None
    return settle(policy, mine, lines, keep_trace=True)


def _unsettleable() -> pl.Expr:
    """The engine could not decide (a fact or a parameter is missing): nothing to compare with."""
    return (pl.col("status") == "rejected") & pl.col("reasons").list.eval(
        pl.element().str.starts_with("missing_")).list.any()


def _fund(frame_cols: set[str], compared: tuple[str, ...], side: str) -> pl.Expr:
    """The fund's payment on one side ("recorded" or "computed"), from the fields the export records."""
    def col(name: str) -> pl.Expr:
        return pl.col(recorded(name) if side == "recorded" else name)

    if "fund_pay_sumamt" in compared:
        return col("fund_pay_sumamt")
    parts = [f for f in FUND_PARTS if f in compared]
    if parts:
        return pl.sum_horizontal(col(f) for f in parts) if side == "computed" else pl.when(
            pl.all_horizontal(col(f).is_not_null() for f in parts)).then(pl.sum_horizontal(col(f) for f in parts))
    if "psn_part_amt" in compared:
        return pl.col("medfee_sumamt") - col("psn_part_amt")
    return pl.lit(None, pl.Int64)


def compare(policy: CompiledPolicy, settled: pl.DataFrame, compared: tuple[str, ...], tolerance: int,
            trace_of: Callable[[pl.Expr], pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per claim: verdict, first differing field, reason and fund delta; per differing field: both values.

    A blank recorded cell is not compared (an unknown is never guessed). The reason's words come from
    the engine's trace (``trace_of``), read in Python for the differing claims only.
    """
    diffs = {f: pl.col(recorded(f)) - pl.col(f) for f in compared}
    differs = {f: pl.col(recorded(f)).is_not_null() & (diffs[f].abs() > tolerance) for f in compared}
    first = pl.coalesce([pl.when(differs[f]).then(pl.lit(f)) for f in compared] + [pl.lit(None, pl.String)])
    cols = set(settled.columns)
    frame = settled.with_columns(
        _unsettleable=_unsettleable(),
        _first=first,
        fund_recorded=_fund(cols, compared, "recorded"),
        fund_computed=_fund(cols, compared, "computed"),
        _audit_i=pl.int_range(pl.len(), dtype=pl.Int64),
    ).with_columns(
        verdict=pl.when(pl.col("_unsettleable")).then(pl.lit("not_settleable"))
        .when(pl.col("_first").is_not_null()).then(pl.lit("differ")).otherwise(pl.lit("agree")),
        # only a differing claim over- or under-pays: the views add up to the same totals whatever the tolerance
        fund_delta=pl.when(~pl.col("_unsettleable") & pl.col("_first").is_not_null())
        .then(pl.col("fund_recorded") - pl.col("fund_computed")).fill_null(0),
        month=pl.col("discharge_date").dt.strftime("%Y-%m"),
    )
    explained = _explain_rows(policy, frame.filter(pl.col("verdict") != "agree"), compared, trace_of)
    claims = frame.select("_audit_i", "row", "claim_id", "person_id", "hospital_name", "month", "verdict",
                          "fund_recorded", "fund_computed", "fund_delta", *(recorded(f) for f in compared),
                          field="_first")
    claims = claims.join(explained, on="_audit_i", how="left", maintain_order="left").drop("_audit_i")
    keyed = claims.select("row", "person_id", "hospital_name", "month", "reason", "step", "message_en", "message_zh")
    long = [frame.filter(differs[f] & ~pl.col("_unsettleable")).select(
        "row", "claim_id", field=pl.lit(f), recorded=pl.col(recorded(f)), computed=pl.col(f), difference=diffs[f])
        for f in compared]
    unsettled = claims.filter(pl.col("verdict") == "not_settleable").select(
        "row", "claim_id", field=pl.lit(None, pl.String), recorded=pl.lit(None, pl.Int64),
        computed=pl.lit(None, pl.Int64), difference=pl.lit(None, pl.Int64))
    differences = (pl.concat([*long, unsettled], how="vertical")
                   .with_columns(_order=pl.col("field").replace_strict(
                       list(COMPARED), list(range(len(COMPARED))), default=len(COMPARED), return_dtype=pl.Int64))
                   .sort("row", "_order").drop("_order")
                   .join(keyed, on="row", how="left", maintain_order="left")
                   .select("row", "claim_id", "person_id", "hospital_name", "month", "field", "recorded", "computed",
                           "difference", "reason", "step", "message_en", "message_zh"))
    return claims, differences


def _explain_rows(policy: CompiledPolicy, rows: pl.DataFrame, compared: tuple[str, ...],
                  trace_of: Callable[[pl.Expr], pl.DataFrame]) -> pl.DataFrame:
    """Reason code, waterfall step and zh/en sentence of each differing or unsettleable claim."""
    out: dict[str, list] = {"_audit_i": [], "reason": [], "step": [], "message_en": [], "message_zh": []}
    if rows.height:
        ours = ["row", "_audit_i", "verdict", "_first", "fund_recorded", *(recorded(f) for f in compared)]
        trace = trace_of(pl.col("row").is_in(rows["row"].implode()))
        rows = rows.select(ours).join(trace.drop([c for c in ours if c != "row"], strict=False), on="row",
                                      how="left", maintain_order="left")
    for row in rows.iter_rows(named=True):
        reason, step, en, zh = explain_difference(policy, row, compared)
        for key, value in zip(out, (row["_audit_i"], reason, step, en, zh), strict=True):
            out[key].append(value)
    return pl.DataFrame(out, schema={"_audit_i": pl.Int64, "reason": pl.String, "step": pl.String,
                                     "message_en": pl.String, "message_zh": pl.String})


def _y(fen: int | None) -> str:
    return "—" if fen is None else format_yuan(int(fen))


def _cite(text: str | None) -> str:
    return f" — {short_source(text)}" if text else ""


def explain_difference(policy: CompiledPolicy, row: dict, compared: tuple[str, ...]) -> tuple[str, str, str, str]:
    """(reason code, step, English, Chinese) of one claim's first divergence, from the engine's trace row."""
    from medins.report.explain import _scope_source, explain_steps

    model = policy.model
    if row["verdict"] == "not_settleable":
        codes = [c for c in row["reasons"] if c.startswith("missing_")]
        words_en = "; ".join(reason_label(c, "en") for c in codes)
        words_zh = "；".join(reason_label(c, "zh") for c in codes)
        return (codes[0] if codes else "not_settleable", "rejected", f"cannot settle: {words_en}",
                f"无法结算：{words_zh}")
    field = row["_first"]
    rec, comp = row[recorded(field)], row[field]
    rule = model.rules[row["_rule"]] if row.get("_rule") is not None and row["status"] == "settled" else None
    if field in SCOPE_FIELDS:
        code = FIELD_REASON[field]
        name_en = {"inscp_scp_amt": "in-scope amount", "overlmt_selfpay": "over-limit self-pay"}[field]
        name_zh = {"inscp_scp_amt": "符合范围金额", "overlmt_selfpay": "超限价自付"}[field]
        cite = _cite(_scope_source(model))
        return (code, field, f"{name_en} recorded {_y(rec)}, policy says {_y(comp)}{cite}",
                f"{name_zh}记录为 {_y(rec)}，按政策应为 {_y(comp)}{cite}")
    if row["status"] != "settled":
        reasons = list(row["reasons"] or [])
        words_en = "; ".join(reason_label(c, "en") for c in reasons)
        words_zh = "；".join(reason_label(c, "zh") for c in reasons)
        cite = _cite(_rejection_source(model, reasons))
        paid = row["fund_recorded"]
        what_en, what_zh, amount = ("fund paid", "基金支付", paid) if paid else (
            f"{_label(field, 'en')} recorded", f"{_label(field, 'zh')}记录为", rec)
        return ("not_payable_paid", "rejected",
                f"{what_en} {_y(amount)}, but the policy does not pay this claim ({words_en}){cite}",
                f"{what_zh} {_y(amount)}，但按政策不予支付（{words_zh}）{cite}")
    if field == "act_pay_dedc":
        zone = row.get("hospital_zone")
        std = _y(row.get("_std") or 0)
        source = rule.deductible.source if rule is not None and rule.deductible else None
        cite = _cite(source)
        from medins.report.labels import VALUES

        where_en = f" for {zone}" if zone else ""
        where_zh = VALUES["hospital_zone"].get(zone, (zone, zone))[0] if zone else ""
        return ("deductible_differs", field,
                f"deductible charged {_y(rec)}, policy says {_y(comp)} (standard {std}{where_en}){cite}",
                f"起付线记录为 {_y(rec)}，按政策应为 {_y(comp)}（{where_zh}起付标准 {std}）{cite}")
    if field == "hifp_pay":
        steps = explain_steps(policy, row)
        by_key = {s["step"]: s for s in steps}
        cap = by_key.get("cap")
        if cap is not None and cap.get("binding") and rec > comp:  # every cap checked is a step; this one bound
            cut = cap["amount"]
            cite = _cite(cap.get("source"))
            return ("cap_exceeded", "cap",
                    f"pooled fund paid {_y(rec)}, the cap leaves {_y(comp)} (cap cut {_money(cut)}){cite}",
                    f"统筹基金支付 {_y(rec)}，封顶线以内应为 {_y(comp)}（封顶扣减 {_money(cut)}）{cite}")
        class_b = by_key.get("class_b")
        if class_b is not None:
            reduction = _fen_of(class_b["amount"].lstrip("-"))
            if abs((rec - comp) - reduction) <= 1:
                cite = _cite(class_b.get("source"))
                return ("class_b_reduction_missed", "class_b",
                        f"pooled fund paid {_y(rec)}, policy says {_y(comp)}: the class-B reduction of "
                        f"{_y(reduction)} ({class_b.get('rate')}) was not applied{cite}",
                        f"统筹基金支付 {_y(rec)}，按政策应为 {_y(comp)}：未按乙类降低 {class_b.get('rate')} 扣减 "
                        f"{_y(reduction)}{cite}")
        cite = _cite(rule.bands.source if rule is not None and rule.bands is not None else
                     (rule.source if rule is not None else None))
        label = f" ({rule.id})" if rule is not None else ""
        return ("band_differs", "band",
                f"pooled fund paid {_y(rec)}, policy says {_y(comp)}{label}{cite}",
                f"统筹基金支付 {_y(rec)}，按政策应为 {_y(comp)}{label}{cite}")
    code = FIELD_REASON[field]
    source = None
    if field in LAYER_FIELDS and rule is not None:
        source = next((layer.source for layer in rule.layers if layer.field == field), None)
    cite = _cite(source)
    return (code, field, f"{_label(field, 'en')} recorded {_y(rec)}, policy says {_y(comp)}{cite}",
            f"{_label(field, 'zh')}记录为 {_y(rec)}，按政策应为 {_y(comp)}{cite}")


def _label(field: str, lang: str) -> str:
    from medins.report.labels import field_label

    return field_label(field, lang)  # type: ignore[arg-type]


def _money(text: str) -> str:
    return _y(_fen_of(text))


def _fen_of(text: str) -> int:
    """Yuan text of the explain trace (up to six decimals) → fen, half up (the engine rounds the same way)."""
    from decimal import ROUND_HALF_UP, Decimal

    return int((Decimal(text) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _rejection_source(model, reasons: list[str]) -> str | None:
    """The clause behind the first reason a claim is not paid (an excluded cause, a check, a hospital)."""
    adm = model.admission
    for code in reasons:
        head = code.partition(":")[0]
        if head == "excluded_cause":
            return adm.excluded_causes_source
        for check in adm.checks:
            if check.code == head:
                return check.source
        if head in ("hospital_not_designated", "not_designated"):
            return adm.hospitals_source
    return None


# --- summary views ---------------------------------------------------------------------------------

#: Money columns of the views (fen inside; yuan on every edge).
VIEW_MONEY = ("fund_recorded", "fund_computed", "fund_delta", "fund_overpaid", "fund_underpaid", "fund_net")
#: How many claims the "largest differences" view lists.
LARGEST = 20


def _sums(frame: pl.DataFrame, by: str) -> pl.DataFrame:
    """Claims, differing claims, and the fund's over- and under-payment by ``by``; largest net first."""
    delta = pl.col("fund_delta")
    return (frame.group_by(by).agg(
        claims=pl.len(), differ=(pl.col("verdict") == "differ").sum(),
        fund_overpaid=delta.clip(lower_bound=0).sum(), fund_underpaid=(-delta).clip(lower_bound=0).sum(),
        fund_net=delta.sum())
        .with_columns(pl.col("claims", "differ").cast(pl.Int64)))


def summary_views(result: AuditResult) -> dict[str, pl.DataFrame]:
    """The audit's views as frames (money in fen): overview, by reason, hospital and month, largest
    differences first, claims not settleable, and the rejected input rows by reason."""
    claims = result.claims
    delta = pl.col("fund_delta")
    overview = pl.DataFrame({
        "rows_read": [result.rows_read], "rows_rejected": [result.rows_rejected], "claims": [claims.height],
        "agree": [result.agree], "differ": [result.differ], "not_settleable": [result.not_settleable],
    }).with_columns(claims.select(fund_overpaid=delta.clip(lower_bound=0).sum(),
                                  fund_underpaid=(-delta).clip(lower_bound=0).sum(), fund_net=delta.sum()))
    differing = claims.filter(pl.col("verdict") == "differ")
    by_reason = (_sums(differing, "reason").drop("differ")
                 .sort(pl.col("fund_net").abs(), "claims", "reason", descending=[True, True, False]))
    named = claims.with_columns(hospital=pl.col("hospital_name").fill_null("—"))
    by_hospital = (_sums(named, "hospital").filter(pl.col("differ") > 0)
                   .sort(pl.col("fund_net").abs(), "differ", "hospital", descending=[True, True, False]))
    by_month = _sums(claims.with_columns(pl.col("month").fill_null("—")), "month").sort("month")
    largest = (differing.sort(delta.abs(), "row", descending=[True, False]).head(LARGEST)
               .select("claim_id", hospital=pl.col("hospital_name"), month="month", reason="reason",
                       fund_recorded="fund_recorded", fund_computed="fund_computed", fund_delta="fund_delta",
                       message_en="message_en", message_zh="message_zh"))
    unsettled = (claims.filter(pl.col("verdict") == "not_settleable").group_by("reason").agg(claims=pl.len())
                 .with_columns(pl.col("claims").cast(pl.Int64)).sort("claims", "reason", descending=[True, False]))
    rejects = (result.rejects.group_by("reason").agg(rows=pl.len()).with_columns(pl.col("rows").cast(pl.Int64))
               .sort("rows", "reason", descending=[True, False]))
    return {"overview": overview, "by_reason": by_reason, "by_hospital": by_hospital, "by_month": by_month,
            "largest": largest, "not_settleable": unsettled, "rejects": rejects}


def views_in_yuan(views: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The views with money as yuan text (two decimals), for JSON, CSV and XLSX."""
    from medins.claims.writers import yuan_text

    return {name: frame.with_columns(yuan_text(pl.col(c)).alias(c) for c in VIEW_MONEY if c in frame.columns)
            for name, frame in views.items()}


#: The columns of the differences file (``-o DIFF``); money columns are written as yuan.
DIFF_MONEY = ("recorded", "computed", "difference")


def write_outputs(result: AuditResult, output: Path | None, rejects: Path | None) -> None:
    """The differences file (one row per differing field of each claim, and per claim not settleable) and the
    rejects, renamed into place together (rejects first) by the project's :class:`medins.atomic.OutputFiles`."""
    from medins.atomic import OutputFiles
    from medins.claims.writers import write_rejects, write_table

    targets = [Path(t) for t in (rejects, output) if t is not None]
    if not targets:
        return
    with OutputFiles(targets) as files:
        if rejects is not None:
            write_rejects(result.rejects, rejects, into=files.temp(Path(rejects)))
        if output is not None:
            write_table(result.differences, output, money_columns=DIFF_MONEY, into=files.temp(Path(output)))
        files.commit()
