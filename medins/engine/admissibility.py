"""Stage 1 — admissibility: is the claim covered at all?

Why: an inadmissible claim pays nothing from any fund and must say why. Each failed condition adds
a reason code (``excluded_cause:traffic_accident``, ``late_claim`` …); a condition whose facts are
absent is *unchecked*, listed as such, and never rejects a claim by itself (DESIGN.md §3).
Reasons are boolean columns, combined into a list at the end, so a year of claims is checked at
column speed.
"""

from __future__ import annotations

import polars as pl

from medins.engine.context import ASSUMED, Run
from medins.policy.compiled import CompiledPolicy

#: The reasons found so far, as codes joined by ";" (null: none) — string ops beat list ops tenfold.
REASON_COLUMNS = "_reasons"


def add_reason(run: Run, code: str | pl.Expr, flag: pl.Expr) -> None:
    """Append ``code`` to the claim's reasons where ``flag`` is true (null counts as false)."""
    run.frame = run.frame.with_columns(append_code(REASON_COLUMNS, code, flag))


def append_code(column: str, code: str | pl.Expr, flag: pl.Expr) -> pl.Expr:
    """``column`` (codes joined by ";", null = none) with ``code`` appended where ``flag`` is true."""
    code_expr = code if isinstance(code, pl.Expr) else pl.lit(code)
    codes = pl.col(column)
    return (pl.when(flag.fill_null(False))
            .then(pl.concat_str([codes, code_expr.cast(pl.String)], separator=";", ignore_nulls=True))
            .otherwise(codes)
            .alias(column))


def reasons_ok() -> pl.Expr:
    """True where the claim has no reason to be rejected."""
    return pl.col(REASON_COLUMNS).is_null()


def reasons_list() -> pl.Expr:
    """The reasons as a list of codes (empty when none), the form of the settlement table."""
    return codes_list(REASON_COLUMNS)


def codes_list(column: str) -> pl.Expr:
    """Codes joined by ";" (null: none) as a list of codes (empty when none)."""
    return (pl.when(pl.col(column).is_null()).then(pl.lit([], pl.List(pl.String)))
            .otherwise(pl.col(column).str.split(";")))


def check_admissibility(run: Run) -> None:
    """Categories, designated hospitals, excluded zones and causes, then the policy's checks."""
    adm = run.policy.model.admission
    run.frame = run.frame.with_columns(
        pl.lit(None, pl.String).alias(REASON_COLUMNS),
        pl.lit([], pl.List(pl.String)).alias("_unchecked"),
    )
    _categories(run)
    unchecked: list[tuple[str, pl.Series]] = []  # (code, rows where the check could not be decided)
    if adm.unlisted_hospitals == "not_designated":
        bound = run.ev(adm.hospitals_when, "bool") if adm.hospitals_when else pl.repeat(True, run.frame.height,
                                                                                        eager=True)
        run.frame = run.frame.with_columns(_bound=bound.fill_null(True))
        add_reason(run, "not_designated", pl.col("_bound") & pl.col("_listed").not_())
        # Only the hospital's name decides (a zone alone does not say which hospital): without a name, or
        # a stated ``designated``, the check is listed as not done rather than passed in silence.
        unnamed = pl.col("_bound") & pl.col("_listed").is_null() & pl.col("hospital_designated").is_null()
        unchecked.append(("not_designated", run.frame.select(unnamed).to_series()))
        run.frame = run.frame.drop("_bound")
    add_reason(run, "not_designated", pl.col("hospital_designated").not_())
    if adm.excluded_zones:
        add_reason(run, pl.col("hospital_zone"), pl.col("hospital_zone").is_in(adm.excluded_zones))
    if adm.excluded_causes:
        add_reason(run, pl.lit("excluded_cause:") + pl.col("cause"), pl.col("cause").is_in(adm.excluded_causes))
    for check in adm.checks:
        if not check.enabled:
            continue
        everywhere = pl.repeat(True, run.frame.height, dtype=pl.Boolean, eager=True)
        applies = run.ev(check.when, "bool") if check.when else everywhere
        reject = run.ev(check.reject_if, "bool", mask=applies.fill_null(False))
        run.frame = run.frame.with_columns(_app=applies, _rej=reject)
        add_reason(run, check.code, pl.col("_app") & pl.col("_rej"))
        unchecked.append((check.code, run.frame.select(pl.col("_app").fill_null(False) & pl.col("_rej").is_null())
                          .to_series()))
        run.frame = run.frame.drop("_app", "_rej")
    for rule in adm.not_checkable:  # conditions no bill shows: listed on every claim they concern
        concerned = run.ev(rule.when, "bool") if rule.when else pl.repeat(True, run.frame.height, eager=True)
        unchecked.append((rule.code, concerned.fill_null(True)))
    if unchecked:
        run.frame = run.frame.with_columns(_unchecked=flags_to_lists(unchecked))


def check_sources(policy: CompiledPolicy) -> dict[str, str]:
    """The citation of every check that can be listed as unchecked, by code (checks sharing a code: joined)."""
    adm = policy.model.admission
    found: dict[str, list[str]] = {}
    if adm.unlisted_hospitals == "not_designated":
        found["not_designated"] = [adm.hospitals_source or "admission.hospitals"]
    for item in [*adm.checks, *adm.not_checkable]:
        found.setdefault(item.code, [])
        if item.source not in found[item.code]:
            found[item.code].append(item.source)
    return {code: "; ".join(sources) for code, sources in found.items()}


def flags_to_lists(flags: list[tuple[str, pl.Series]]) -> pl.Series:
    """Per row, the list of codes whose flag holds, in the given order.

    Why not append to a list column check by check: each append rebuilds a million lists; here each
    row's flags form a bit pattern, the few distinct patterns become lists once, and rows take theirs.
    """
    n = flags[0][1].len()
    out = None
    for first in range(0, len(flags), 62):  # 62 flags per Int64 bit pattern
        chunk = flags[first:first + 62]
        bits = pl.select(pl.sum_horizontal([pl.lit(flag).cast(pl.Int64) * (1 << k)
                                            for k, (_code, flag) in enumerate(chunk)])).to_series()
        patterns = bits.unique()
        lists = pl.Series([[code for k, (code, _flag) in enumerate(chunk) if pattern >> k & 1]
                           for pattern in patterns.to_list()], dtype=pl.List(pl.String))
        index = bits.replace_strict(patterns, pl.int_range(0, patterns.len(), dtype=pl.UInt32, eager=True),
                                    return_dtype=pl.UInt32)
        part = lists.gather(index)
        out = part if out is None else pl.select(pl.concat_list(pl.lit(out), pl.lit(part))).to_series()
    return out if out is not None else pl.repeat([], n, dtype=pl.List(pl.String), eager=True)


def _categories(run: Run) -> None:
    """Settle unknown categories as the policy's default (listed as assumed), or reject them when it has none."""
    cats = run.policy.model.admission.categories
    if cats is None:
        return
    known = pl.col("person_category").is_in(cats.known)
    if cats.default is not None:
        run.frame = run.frame.with_columns(append_code(ASSUMED, f"person_category={cats.default}", ~known.fill_null(False)))
        run.frame = run.frame.with_columns(
            person_category=pl.when(known.fill_null(False)).then(pl.col("person_category")).otherwise(pl.lit(cats.default))
        )
    else:
        add_reason(run, "unknown_category", known.not_().fill_null(True))
