"""Stages 3–5 — ceiling, deductible, bands, allowances and caps of the basic fund (then ``payers.py``).

Why one module: these stages share the claim's position in the person's year (how much in-scope
expense, deductible and fund payment came before it) and must agree on it. All of that state is a
clamped cumulative sum over (person, benefit year, bucket) windows (``state.py``); a single bill
is a one-row window whose starting point is its ``history`` block.

Exactness: each band's part (fen) × its rate (ppm) is summed exactly together with the pro-rata
class-B reduction — in Int64 when the frame's amounts bound every intermediate below 2^62 (any
real bill), else in Int128 — and the layer's payment is rounded half up to the fen once. Caps clip
that rounded amount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import polars as pl

from medins.engine.codes import replace_columns
from medins.engine.context import Run, table_of
from medins.engine.fused import at_least_zero, collected, repeat
from medins.engine.ordinals import admission_ordinals
from medins.engine.rules import BUCKETS, bucket_names
from medins.engine.state import (
    NUMPY_ROWS,
    SEQUENCE,
    UNLIMITED,
    Grouping,
    _not_negative,
    _running_total_fits,
    clamped_cumsum,
    group_order,
    running_max_before,
    sequence_positions,
)
from medins.policy.plan import ScaleBand

if TYPE_CHECKING:  # annotations only: the engine runs on a plain model too (medins.policy.plan)
    from medins.policy.schema import Bands

PERSON_YEAR = ["_pk", "year"]  # _pk: the person, numbered in claim order (settle.py)


def _grouping(run: Run, bucket: str | None) -> Grouping:
    """The (person, benefit year, ``bucket``) grouping, computed once per distinct partition of the rules.

    ``bucket`` None, or a column holding one value on every row: the (person, benefit year) grouping (kept under
    the key ``""``), which the payers' state uses too — one sort for both where a policy's buckets are all one.

    A state-bucket column (``rules.BUCKETS``) is the bucket of the claim's rule: claims are grouped by the
    number of their rule's bucket among the distinct ones (``_rule`` gathered, small integers), which groups them
    exactly as the bucket's texts do without hashing a text per row; two bucket columns whose rules share
    buckets alike share the grouping.
    """
    rules = run.policy.model.rules
    if bucket is not None and bucket in BUCKETS and rules:
        names = bucket_names(rules, bucket)
        numbers = {name: k for k, name in enumerate(dict.fromkeys(names), start=1)}
        codes = [numbers[name] for name in names]
        key = f"rules:{codes}"  # the partition of the rules into buckets, whatever their names
        if key not in run.groupings:
            rule = run.frame["_rule"]
            if _constant(rule) or codes == list(range(1, len(codes) + 1)):  # one rule, or a bucket per rule: no query
                column = rule
            else:
                column = pl.Series(codes, dtype=pl.Int64).gather(rule)
            # null where no rule settles the claim: a value of its own for ``group_order``, as a null bucket text was
            if _constant(column):
                run.groupings[key] = _grouping(run, None)
            else:
                narrow = pl.DataFrame([run.frame[c] for c in (*PERSON_YEAR, SEQUENCE) if c in run.frame.columns]
                                      + [column.alias("_bucket")])  # columns side by side: no query
                run.groupings[key] = group_order(narrow, [*PERSON_YEAR, "_bucket"], positions=_positions(run))
        return run.groupings[key]
    if bucket is None or _constant(run.frame[bucket]):
        if "" not in run.groupings:
            run.groupings[""] = group_order(run.frame, PERSON_YEAR, positions=_positions(run))
        return run.groupings[""]
    if bucket not in run.groupings:
        same = next((name for name in run.groupings if name in run.frame.columns
                     and run.frame[name].equals(run.frame[bucket])), None)
        run.groupings[bucket] = run.groupings[same] if same else group_order(run.frame, [*PERSON_YEAR, bucket],
                                                                             positions=_positions(run))
    return run.groupings[bucket]


#: ``run.groupings``' entry (not a column's name) holding ``state.sequence_positions`` of the run's frame.
_POSITIONS = "<sequence positions>"


def _positions(run: Run):
    """The frame's rows in ``SEQUENCE`` order (``state.sequence_positions``), once a run: every grouping of a large
    frame orders its rows from them (None for a frame the groupings sort otherwise, or not so numbered)."""
    if run.frame.height < NUMPY_ROWS or SEQUENCE not in run.frame.columns:
        return None
    if _POSITIONS not in run.groupings:
        run.groupings[_POSITIONS] = (sequence_positions(run.frame[SEQUENCE]),)
    return run.groupings[_POSITIONS][0]


def _constant(column: pl.Series) -> bool:
    """Whether every row holds the same value (no null): then a grouping by it is the (person, year) grouping."""
    return column.len() > 0 and not column.null_count() and bool((column == column[0]).all())


def _pick(run: Run, per_rule: dict[int, pl.Series], dtype: pl.DataType) -> pl.Series:
    """Merge per-rule series (each null outside its rule's rows) into one column.

    Why from the first series and only while nulls remain: each ``fill_null`` is a query of its own (on a bill,
    a query costs far more than its row), and filling a column without nulls changes nothing."""
    out: pl.Series | None = None
    for series in per_rule.values():
        if out is None:
            out = series.cast(dtype)
        elif out.null_count():
            out = out.fill_null(series)
    return repeat(None, run.frame.height, dtype) if out is None else out


def _ev_rules(run: Run, attr, returns: str, *, required: bool = False) -> pl.Series:
    """Evaluate, for each rule, the expression ``attr(rule)`` on that rule's admissible rows.

    Rules with the same expression (``deductible[hospital_zone]`` for the stays and the 门诊大病) evaluate it once,
    on their rows together: each row's value and reason are the expression's on that row whichever rule it is of
    (the rules' rows are disjoint), and the rows are selected, numbered by their distinct facts and put in place
    once instead of once a rule.
    """
    rules_of: dict[str, list[int]] = {}
    for idx, rule in enumerate(run.policy.model.rules):
        text = attr(rule)
        if text is not None:
            rules_of.setdefault(text, []).append(idx)
    per_rule = {}
    for text, idxs in rules_of.items():
        per_rule[idxs[0]] = run.ev(text, returns, mask=_mask(run, idxs), required=required)
    return _pick(run, per_rule, pl.Int64 if returns != "bool" else pl.Boolean)


def _mask(run: Run, idx: int | list[int], version: int | None = None) -> pl.Series:
    """The rule's (and version's) admissible rows, as Series operations: no query (``fill_null`` only on nulls).
    ``idx`` a list: the rows of any of those rules."""
    frame = run.frame
    rule = frame["_rule"]
    if isinstance(idx, list) and len(idx) == 1:
        idx = idx[0]
    cond = ((rule == idx) if isinstance(idx, int) else rule.is_in(idx)) & frame["_ok"]
    if version is not None:
        cond = cond & (frame["_v"] == version)
    return cond.fill_null(False) if cond.null_count() else cond


def settle_benefits(run: Run) -> None:
    """Compute ``eligible``, ``ded``, band parts, ``_raw``, ``hifp_pay`` and layer payments."""
    f = run.frame.with_columns(
        _e0=pl.when(pl.col("_ok")).then(pl.col("inscope")).otherwise(0),
        _adm=(pl.col("_ok") & pl.col("_admission")).cast(pl.Int64),
    )
    g_rule = [*PERSON_YEAR, "_b_rule"]
    run.frame = f
    run.groupings = {}  # buckets are fixed by now; each grouping is sorted out once
    # Earlier admissions this year = the running count before this claim (an unlimited clamped sum).
    f = clamped_cumsum(f, x="_adm", limit=None, h0="hist_admissions", group=g_rule, out_before="admissions",
                       out_after="_adm_after", grouping=_grouping(run, "_b_rule"))
    f = replace_columns(f, ["_adm_after"])
    run.frame = f
    admission_ordinals(run, _grouping(run, "_b_rule"))
    rules = run.policy.model.rules
    # Ceiling: only so much in-scope expense a year enters the calculation — measured from 0, or (measure:
    # above_deductible) on the expense above the deductible, which is then known only after the deductible.
    if any(r.ceiling is not None for r in rules) or not _never_clipped(run.frame, "_e0", "hist_inscope"):
        above = _above_deductible_ceiling(run)
        ceiling = _ev_rules(run, lambda r: r.ceiling.amount if r.ceiling else None, "money")
        query = (run.frame.lazy().with_columns(_ceil=ceiling, _cabove=above)
                 .with_columns(_ceil0=pl.when(pl.col("_cabove")).then(None).otherwise(pl.col("_ceil"))))
        run.frame = replace_columns(run.frame, [], *collected(query, ["_ceil", "_cabove", "_ceil0"]).get_columns())
        run.frame = clamped_cumsum(run.frame, x="_e0", limit="_ceil0", h0="hist_inscope",
                                   group=[*PERSON_YEAR, "_b_ceil"], out_before="_c_ceil0", out_after="_c_ceil1",
                                   grouping=_grouping(run, "_b_ceil"))
        eligible = run.frame["_c_ceil1"] - run.frame["_c_ceil0"]
    else:
        # No rule has a ceiling and no year's sum comes near the state's bound: the state column would add each
        # claim's in-scope expense whole (after − before = x), so that is what enters (no scan, no columns).
        eligible = run.frame["_e0"].cast(pl.Int64)
    run.frame = replace_columns(run.frame, [], eligible.alias("eligible"))
    _deductible(run)
    if any(r.ceiling is not None and r.ceiling.measure == "above_deductible" for r in rules):
        f = run.frame.with_columns(
            _ax=pl.when(pl.col("_cabove")).then(pl.col("eligible") - pl.col("ded")).otherwise(0),
            _al=pl.when(pl.col("_cabove")).then(pl.col("_ceil")).otherwise(None),
            _ah=at_least_zero(pl.col("hist_inscope") - pl.col("hist_deductible_paid")))
        f = clamped_cumsum(f, x="_ax", limit="_al", h0="_ah", group=[*PERSON_YEAR, "_b_ceil"], out_before="_a0",
                           out_after="_a1", grouping=_grouping(run, "_b_ceil"))
        run.frame = f.with_columns(
            eligible=pl.when(pl.col("_cabove")).then(pl.col("ded") + pl.col("_a1") - pl.col("_a0"))
            .otherwise(pl.col("eligible")))
        run.frame = run.drop(run.frame, {"_a0": "_tr_ceil_above0"}, "_ax", "_al", "_ah", "_a0", "_a1")  # trace: used before
    if any(r.bands is not None and r.bands.axis == "cumulative" for r in rules):  # only a cumulative axis reads it
        run.frame = clamped_cumsum(run.frame, x="eligible", limit=None, h0="hist_inscope",
                                   group=[*PERSON_YEAR, "_b_axis"], out_before="_c0", out_after="_c1",
                                   grouping=_grouping(run, "_b_axis"))
    _basic_bands(run)
    allowance = repeat(0, run.frame.height, pl.Int64)
    for idx, rule in enumerate(rules):
        for allow in rule.allowances:
            mask = _mask(run, idx)
            if allow.when:
                mask = mask & run.ev(allow.when, "bool", mask=mask).fill_null(False)
            amount = run.ev(allow.amount, "money", mask=mask).fill_null(0).clip(lower_bound=0)
            allowance = allowance + amount
    # A basic payment given as already paid (``amounts.paid.hifp_pay``) is not computed: it is used as is,
    # and counts in the yearly cap state like a computed one. Lines a self_pay_first rule's fund_rate pays
    # directly (scope.py) join the fund's payment before the cap.
    given = pl.col("_ok") & pl.col("paid_hifp_pay").is_not_null()
    run.frame = run.frame.with_columns(_allow=allowance, _raw_total=pl.when(given).then(pl.col("paid_hifp_pay"))
                                       .otherwise(pl.col("_raw") + allowance + pl.col("direct_pay")))
    _cap(run, rules_cap=lambda r: r.cap, raw="_raw_total", out="hifp_pay", bucket="_b_cap", h0="hist_fund_paid",
         given=given)
    run.frame = run.frame.with_columns(
        hifp_pay=pl.when(given).then(pl.min_horizontal("paid_hifp_pay", "total")).otherwise(pl.col("hifp_pay")))
    from medins.engine.payers import settle_payers  # payers.py builds on this module's band machinery

    settle_payers(run)


def _never_clipped(frame: pl.DataFrame, x: str, h0: str) -> bool:
    """Whether a state column of ``x`` without a limit gives each row its ``x`` whole: ``x`` never negative (a
    negative amount leaves the state as it is) and no history plus running sum reaching ``UNLIMITED``."""
    return _not_negative(frame[x]) and _running_total_fits(frame, x, h0)


def _above_deductible_ceiling(run: Run) -> pl.Expr:
    """True on rows of rules whose ceiling is measured on the expense above the deductible."""
    expr: pl.Expr = pl.lit(False)
    for idx, rule in enumerate(run.policy.model.rules):
        if rule.ceiling is not None and rule.ceiling.measure == "above_deductible":
            expr = pl.when(pl.col("_rule") == idx).then(pl.lit(True)).otherwise(expr)
    return expr


def _deductible(run: Run) -> None:
    """``ded``: per admission, topped up to the highest standard of the year, or once a year (its own counter).

    A mode no rule has needs no state column: the running maximum is computed only for a top-up rule, the yearly
    counter only for a yearly one (``--explain`` reads each only for a rule of that mode). Each mode is the set of
    its rules (no text column per row)."""
    rules = run.policy.model.rules
    std = _ev_rules(run, lambda r: r.deductible.standard if r.deductible else None, "money", required=True)
    if std.null_count():
        std = std.fill_null(0)  # only where no deductible applies: unknown standards were rejected above
    modes: dict[str, list[int]] = {"admission": [], "topup": [], "year": []}
    for idx, rule in enumerate(rules):
        if rule.deductible:
            per_year, topup = rule.deductible.per == "year", rule.deductible.topup
            modes["year" if per_year else ("topup" if topup else "admission")].append(idx)

    def mode(name: str) -> pl.Expr:
        return pl.col("_rule").is_in(modes[name]).fill_null(False) if modes[name] else pl.lit(False)

    g = [*PERSON_YEAR, "_b_ded"]
    added = {"_std": std}
    if modes["topup"]:
        added["_std_seen"] = pl.when(pl.col("_ok") & mode("topup")).then(pl.col("_std")).otherwise(0)
    if modes["year"]:
        added["_x_year"] = pl.when(mode("year")).then(pl.col("eligible")).otherwise(0)
        added["_l_year"] = pl.when(mode("year")).then(pl.col("_std")).otherwise(UNLIMITED)
    query = run.frame.lazy().with_columns(_std=std).with_columns(**{k: v for k, v in added.items() if k != "_std"})
    f = replace_columns(run.frame, [], *collected(query, list(added)).get_columns())
    ded = pl.when(~pl.col("_ok")).then(0).when(mode("admission")).then(pl.min_horizontal("eligible", "_std"))
    if modes["topup"]:
        f = running_max_before(f, x="_std_seen", h0="hist_deductible_standard", group=g, out="_prior_std",
                               grouping=_grouping(run, "_b_ded"))
        ded = ded.when(mode("topup")).then(
            pl.min_horizontal(pl.col("eligible"), at_least_zero(pl.col("_std") - pl.col("_prior_std"))))
    if modes["year"]:
        f = clamped_cumsum(f, x="_x_year", limit="_l_year", h0="hist_deductible_paid", group=g,
                           out_before="_dy0", out_after="_dy1", grouping=_grouping(run, "_b_ded"))
        ded = ded.when(mode("year")).then(pl.col("_dy1") - pl.col("_dy0"))
    f = f.with_columns(ded=ded.otherwise(0))
    kept = {"_dy0": "_tr_ded0"} if modes["year"] else {}  # trace: paid before
    run.frame = run.drop(f, kept, *(c for c in ("_std_seen", "_x_year", "_l_year", "_dy0", "_dy1") if c in f.columns))


def _scale_for(run: Run, bands: Bands, version: int) -> list[ScaleBand]:
    if bands.scale is None:
        return [ScaleBand(0, None, None, bands.source)]  # type: ignore[arg-type]
    return run.policy.versions[version].params.scales.get(bands.scale, [])


def band_parts(run: Run, which, prefix: str, lower: pl.Expr, upper: pl.Expr, *, only: str | None = None) -> None:
    """Add ``{prefix}num`` (fen×ppm; Int64, or Int128 when the frame's amounts need it): Σ over the bands of the
    part of the claim's paid interval [lower, upper] in the band × the band's rate.

    ``which(rule)`` gives the rule's Bands (or None). ``only``: a boolean column; rates are evaluated only on its
    rows (a payer's rate must not reject a claim the payer does not settle). One query: the band columns
    (:func:`_band_query`) are kept only with ``run.trace`` (``--explain`` reads them; nothing else does).
    """
    bands = _band_query(run, which, prefix, lower, upper, only=only)
    # Σ a_k × r_k ≤ (Σ a_k) × max r ≤ width × (upper − lower) × max r: Int64 when that bound fits (any real bill),
    # else Int128 (the same sums; the bound, from the interval and the rates that can occur, is known before).
    paid = _top(run.frame, at_least_zero(upper - lower))
    wide = pl.Int64 if _fits_int64(bands.rate, bands.width, paid) else pl.Int128
    summed = pl.lit(0, wide)
    for k in range(bands.width):
        summed = summed + pl.col(f"{prefix}{k}_a").cast(wide) * pl.col(f"{prefix}{k}_r").fill_null(0).cast(wide)
    query = bands.query.with_columns(**{f"{prefix}num": summed})
    kept = [*bands.added, f"{prefix}num"] if run.trace else [f"{prefix}num"]
    run.frame = replace_columns(run.frame, [], *collected(query, kept).get_columns())


def _fits_int64(rate: int, width: int, paid: int) -> bool:
    """Whether Σ of ``width`` parts of at most ``paid`` fen × rates of at most ``rate`` ppm stays below 2^62."""
    return rate * width * paid < 1 << 62


def _top(frame: pl.DataFrame, value: pl.Expr) -> int:
    """The largest ``value`` of the frame (0 when it has no rows or none is known)."""
    return int(frame.select(value.max()).item() or 0) if frame.height else 0


class _Bands(NamedTuple):
    """:func:`_band_query`'s pending query and what is known of its columns before it runs."""

    query: pl.LazyFrame
    added: list[str]  # the band columns it adds (kept with ``run.trace``)
    width: int  # the most bands of any (rule, version)
    rate: int  # no band rate (ppm) of any row exceeds it in absolute value, nor 10^6
    offsets: list[pl.Series]  # the class-B offsets' values (ppm) on their rows, each once or more (min and max read)
    banded: pl.Expr  # the rows of a (rule, version) with bands: elsewhere no band has an edge, a rate or an offset


def _band_query(run: Run, which, prefix: str, lower: pl.Expr, upper: pl.Expr, *, only: str | None) -> _Bands:
    """The query adding per band k ``{prefix}k_lo``, ``_hi``, ``_r`` (edges and rate), ``{prefix}k_a`` (the part of
    [lower, upper] in the band), and ``{prefix}off``, ``{prefix}sum``, ``{prefix}width`` — not yet collected, so
    that the caller's own sums join the same query and only the columns read later are materialised."""
    rules = run.policy.model.rules
    width = max(
        [len(_scale_for(run, b, v)) for r in rules if (b := which(r)) for v in range(len(run.policy.versions))],
        default=0,
    )
    # Band edges and rates as one when/then chain per column over (rule, version): a single pass over
    # the frame; rates that depend on the claim come from the expression engine as temporary columns.
    exprs: dict[str, pl.Expr] = {f"{prefix}{k}_{p}": pl.lit(None, pl.Int64)
                                 for k in range(width) for p in ("lo", "hi", "r")}
    offset: pl.Expr = pl.lit(0, pl.Int64)
    temporary: dict[str, pl.Series] = {}
    offsets: list[pl.Series] = []
    top_rate = 1_000_000
    banded: pl.Expr = pl.lit(False)
    for idx, rule in enumerate(rules):
        bands = which(rule)
        if bands is None:
            continue
        for v in range(len(run.policy.versions)):
            mask = _mask(run, idx, v)
            if only is not None:
                mask = mask & run.frame[only]
            if not mask.any():
                continue
            where = (pl.col("_rule") == idx) & (pl.col("_v") == v) & pl.col("_ok")
            banded = banded | where
            shared: dict = {}  # the band rates (and offset) of one mask: its rows and their distinct values once
            for k, band in enumerate(_scale_for(run, bands, v)):
                if bands.rate is not None:
                    name = f"_t{prefix}_{idx}_{v}_{k}"
                    temporary[name] = run.ev(bands.rate, "rate", mask=mask, extra={"rate": band.rate}, required=True,
                                             shared=shared)
                    rate_expr: pl.Expr = pl.col(name)
                    values = table_of(temporary[name], shared)
                    low, high = values.min(), values.max()  # Series reductions: no query
                    if low is not None and not 0 <= low <= high <= 1_000_000:  # type: ignore[operator]
                        rate_expr = rate_expr.clip(0, 1_000_000)  # in the query: not a pass of its own
                else:
                    fixed = int(band.rate * 1_000_000)
                    top_rate = max(top_rate, abs(fixed))
                    rate_expr = pl.lit(fixed, pl.Int64)
                for p, value in (("lo", pl.lit(band.lo, pl.Int64)), ("hi", pl.lit(band.hi, pl.Int64)), ("r", rate_expr)):
                    key = f"{prefix}{k}_{p}"
                    exprs[key] = pl.when(where).then(value).otherwise(exprs[key])
            if bands.class_b_offset:
                name = f"_t{prefix}_{idx}_{v}_off"
                temporary[name] = run.ev(bands.class_b_offset, "rate", mask=mask, required=True, shared=shared)
                offsets.append(table_of(temporary[name], shared))
                offset = pl.when(where).then(pl.col(name).fill_null(0)).otherwise(offset)
    # One lazy query: the (rule, version) conditions the chains share are computed once (``fused.py``).
    query = (run.frame.lazy().with_columns(**temporary).with_columns(**exprs, **{f"{prefix}off": offset})
             .with_columns(_lower=lower, _upper=upper))
    parts = list(range(width))
    query = query.with_columns(
        at_least_zero(pl.min_horizontal(pl.col("_upper"), pl.col(f"{prefix}{k}_hi").fill_null(UNLIMITED))
         - pl.max_horizontal(pl.col("_lower"), pl.col(f"{prefix}{k}_lo"))).fill_null(0)
        .alias(f"{prefix}{k}_a") for k in parts)
    total = pl.lit(0, pl.Int64)
    for k in parts:
        total = total + pl.col(f"{prefix}{k}_a")
    query = query.with_columns(**{f"{prefix}sum": total, f"{prefix}width": pl.lit(width)})
    added = [*exprs, f"{prefix}off", *(f"{prefix}{k}_a" for k in parts), f"{prefix}sum", f"{prefix}width"]
    return _Bands(query, added, width, top_rate, offsets, banded)


def _half_up(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """Round num/den half up (num ≥ 0, den > 0), Int128 in, Int64 out."""
    return ((num * 2 + den) // (den * 2)).cast(pl.Int64)


def _basic_bands(run: Run) -> None:
    axis_lower: pl.Expr = pl.col("ded")
    axis_upper: pl.Expr = pl.col("eligible")
    for idx, rule in enumerate(run.policy.model.rules):
        if rule.bands is None:
            continue
        if rule.bands.axis == "cumulative":
            lo, hi = pl.col("_c0") + pl.col("ded"), pl.col("_c0") + pl.col("eligible")
        elif rule.bands.axis == "above_deductible":
            lo, hi = pl.lit(0, pl.Int64), pl.col("eligible") - pl.col("ded")
        else:
            continue
        axis_lower = pl.when(pl.col("_rule") == idx).then(lo).otherwise(axis_lower)
        axis_upper = pl.when(pl.col("_rule") == idx).then(hi).otherwise(axis_upper)
    bands = _band_query(run, lambda r: r.bands, "_b", axis_lower, axis_upper, only=None)
    # Class B pro rata (A-SQ-4): band k pays A_k × max(0, r_k − off × B/E), rounded half up once — in the same query,
    # in the narrow form where the largest values that can occur allow it: the rates' and offsets' (known), the
    # largest E and B, and Σ A_k ≤ width × (upper − lower).
    offset_top = max((abs(int(v or 0)) for s in bands.offsets for v in (s.min(), s.max())), default=0)
    if run.frame.height:
        paid, e0, class_b = run.frame.select(at_least_zero(axis_upper - axis_lower).max(),
                                             pl.col("_e0").abs().max(), pl.col("class_b_inscope").abs().max()).row(0)
    else:
        paid = e0 = class_b = 0
    narrow = (_narrow_fits(max(bands.rate, offset_top), int(e0 or 0), bands.width * int(paid or 0), int(class_b or 0))
              and all((s.min() or 0) >= 0 for s in bands.offsets))
    raw = class_b_raw(bands.width, narrow=narrow, offset=any(s.max() or s.min() for s in bands.offsets))
    paying = pl.col("_ok") & (pl.col("_e0") > 0)
    if run.trace:
        query = bands.query.with_columns(_raw=pl.when(paying).then(raw).otherwise(0))
        run.frame = replace_columns(run.frame, [], *collected(query, [*bands.added, "_raw"]).get_columns())
        return
    # Without the trace only ``_raw`` is read, 0 where the claim pays nothing (rejected, or no expense in scope) and
    # where no band applies (no rate, no offset: every term is 0): the bands are worked out on the other rows alone,
    # the same expressions row by row, and put in place by ``_i``.
    rows = bands.query.filter(paying & bands.banded).select("_i", raw.alias("_raw")).collect()
    column = repeat(0, run.frame.height, pl.Int64).scatter(rows["_i"], rows["_raw"])
    run.frame = replace_columns(run.frame, [], column.alias("_raw"))


def _narrow_fits(rate: int, e0: int, paid: int, class_b: int) -> bool:
    """Whether :func:`class_b_raw`'s narrow form stays inside Int64 for every row whose |values| are at most
    these maxima (and whose offset is not negative, checked by the caller)."""
    rate = max(rate, 1_000_000)
    return max(rate * class_b, rate * paid, 3_000_000 * e0, 2 * e0 * paid) < 1 << 62


def class_b_raw(width: int, *, narrow: bool, offset: bool = True) -> pl.Expr:
    """Σ_k A_k × max(0, r_k − off × B / E) in fen, half up (rows with E = ``_e0`` > 0), exactly.

    Over the common denominator 10^6 × E the sum is N = Σ A_k × max(0, r_k × E − C) with C = off × B:
    the wide form computes that in Int128. The narrow form (Int64 only, several times faster; used
    when ``_narrow_fits`` holds for the frame) writes C = q × E + ρ (0 ≤ ρ < E), so that
    max(0, r_k × E − C) is (r_k − q) × E − ρ when r_k > q and 0 otherwise, hence
    N = E × S₁ − ρ × S₂ with S₁ = Σ A_k × max(0, r_k − q) and S₂ = Σ_{r_k > q} A_k; with
    S₁ = u × 10^6 + v, round(N / (10^6 × E)) = u + ⌊(E × (2v + 10^6) − 2ρ × S₂) / (2 × 10^6 × E)⌋.

    ``offset`` False (the frame's offsets all 0, as under every policy without a class-B reduction): then q = ρ = 0
    and that is u + ⌊(2v + 10^6) / (2 × 10^6)⌋ = ⌊(S₁ + 500000) / 10^6⌋ with S₁ = Σ A_k × max(0, r_k) — the
    same value in a third of the operations (narrow form only: S₁ < 2^62 there, so S₁ + 500000 fits).
    """
    bands = [(pl.col(f"_b{k}_a"), pl.col(f"_b{k}_r").fill_null(0)) for k in range(width)]
    e0 = pl.when(pl.col("_e0") > 0).then(pl.col("_e0")).otherwise(1)
    off, b = pl.col("_boff"), at_least_zero(pl.col("class_b_inscope"))
    if not narrow:
        e0, c = e0.cast(pl.Int128), off.cast(pl.Int128) * b.cast(pl.Int128)
        num = pl.sum_horizontal(pl.lit(0, pl.Int128), *(
            a.cast(pl.Int128) * at_least_zero(r.cast(pl.Int128) * e0 - c) for a, r in bands))
        return _half_up(num, e0 * 1_000_000)
    if not offset:
        s1 = pl.sum_horizontal(pl.lit(0, pl.Int64), *(a * at_least_zero(r) for a, r in bands))
        return (s1 + 500_000) // 1_000_000
    c = off * b
    q, rho = c // e0, c % e0
    s1 = pl.sum_horizontal(pl.lit(0, pl.Int64), *(a * at_least_zero(r - q) for a, r in bands))
    s2 = pl.sum_horizontal(pl.lit(0, pl.Int64), *(pl.when(r > q).then(a).otherwise(0) for a, r in bands))
    u, v = s1 // 1_000_000, s1 % 1_000_000
    return u + (e0 * (2 * v + 1_000_000) - 2 * rho * s2) // (2_000_000 * e0)


def _cap(run: Run, *, rules_cap, raw: str, out: str, bucket: str, h0: str, given: pl.Expr | None = None) -> None:
    """Clip ``raw`` by the rule's cap (per claim, or per person-year within a bucket) into ``out``.

    On ``given`` rows ``raw`` is a payment the bill records as made: it is never clipped, so one above what the
    cap leaves contradicts the policy and the claim is rejected ``paid_above_cap:<out>`` (docs/bill.md) — in a
    batch and in ``calc`` with the equivalent ``history`` alike (that history is refused as impossible)."""
    rules = run.policy.model.rules
    amount = _ev_rules(run, lambda r: rules_cap(r).amount if rules_cap(r) else None, "money")
    per_year_expr: pl.Expr = pl.lit(False)
    for idx, rule in enumerate(rules):
        cap = rules_cap(rule)
        if cap is not None and cap.per == "year":
            per_year_expr = pl.when(pl.col("_rule") == idx).then(pl.lit(True)).otherwise(per_year_expr)
    applies_year = pl.col("_cyear") & pl.col("_camt").is_not_null()
    query = run.frame.lazy().with_columns(_camt=amount, _cyear=per_year_expr).with_columns(
        _cx=pl.when(applies_year).then(pl.col(raw)).otherwise(0),
        _cl=pl.when(applies_year).then(pl.col("_camt")).otherwise(None),
    )
    f = replace_columns(run.frame, [], *collected(query, ["_camt", "_cyear", "_cx", "_cl"]).get_columns())
    f = clamped_cumsum(f, x="_cx", limit="_cl", h0=h0, group=[*PERSON_YEAR, bucket], out_before="_k0", out_after="_k1",
                       grouping=_grouping(run, bucket))
    f = f.with_columns(
        pl.when(~pl.col("_ok")).then(0)
        .when(applies_year).then(pl.col("_k1") - pl.col("_k0"))
        .when(pl.col("_camt").is_not_null()).then(pl.min_horizontal(pl.col(raw), pl.col("_camt")))
        .otherwise(pl.col(raw))
        .alias(out)
    )
    if given is not None:
        left = pl.when(applies_year).then(pl.col("_camt") - pl.col("_k0")).otherwise(pl.col("_camt"))
        over = f.select(pl.col("_i").filter((given & pl.col("_camt").is_not_null() & (pl.col(raw) > left)).fill_null(False)))
        for i in over.to_series().to_list():
            run.problems.setdefault(i, []).append(f"paid_above_cap:{out}")
    run.frame = run.drop(f, {"_camt": "_tr_cap", "_cyear": "_tr_cap_year", "_k0": "_tr_cap0"},  # trace: the cap's headroom
                         "_camt", "_cyear", "_cx", "_cl", "_k0", "_k1")
