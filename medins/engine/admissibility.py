"""Stage 1 — admissibility: is the claim covered at all?

Why: an inadmissible claim pays nothing from any fund and must say why. Each failed condition adds
a reason code (``excluded_cause:traffic_accident``, ``late_claim`` …); a condition whose facts are
absent is *unchecked*, listed as such, and never rejects a claim by itself (DESIGN.md §3).
Reasons are bits of an integer column set in the stage's one query (``engine/codes.py``), joined into
text once after the rules stage, so a year of claims is checked at column speed.
"""

from __future__ import annotations

import polars as pl

from medins.engine.codes import pattern, replace_columns, texts_by_pattern
from medins.engine.context import ASSUMED, Lazy, Run
from medins.engine.native import is_one_of
from medins.policy.plan import CompiledPolicy

#: The reasons, as codes joined by ";" (null: none) — string ops beat list ops tenfold. Until ``settle`` joins them
#: (``Run.finish_codes``, after the rules stage) they are bits (``engine/codes.py``), and this column is absent.
REASON_COLUMNS = "_reasons"
#: The checks not done for want of facts, as codes joined by ";" (null: none); a list only in the settlement.
UNCHECKED = "_unchecked"


def add_reason(run: Run, code: str | pl.Expr, flag: pl.Expr, *, prefix: str = "") -> None:
    """Add ``code`` to the claim's reasons where ``flag`` is true (null counts as false), in one eager step.

    The reasons are kept as bits (``engine/codes.py``) until ``settle`` joins them (``Run.finish_codes``).
    """
    run.add_code(REASON_COLUMNS, code, flag, prefix=prefix)


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
    """Categories, designated hospitals, excluded zones and causes, then the policy's checks.

    One query (``Run.lazy``): every condition with a native form is an expression of it, and the reasons are
    bits set on it; only a condition the exact evaluator must give materialises the frame before it.
    """
    run.deferred(_admissibility)


def _admissibility(run: Run, defer: bool) -> None:
    adm = run.policy.model.admission
    q = run.lazy(defer=defer)
    _categories(q)
    unchecked: list[tuple[str, pl.Expr]] = []  # (code, rows where the check could not be decided)
    temporaries: list[str] = []

    def column(value: pl.Expr) -> pl.Expr:
        # A condition read twice (its reason, and whether it could be decided) is a column of the query, computed
        # once: common parts are only shared within one ``with_columns``, and the unchecked flags come last.
        name = f"_adm{len(temporaries)}"
        temporaries.append(name)
        q.with_columns(value.alias(name))
        return pl.col(name)

    conditions: dict[str, pl.Expr] = {}

    def condition(text: str) -> pl.Expr:
        # One column per distinct condition: a policy's checks often share one (``visit_type in (…)``), and the
        # query would compute it again for each.
        if text not in conditions:
            conditions[text] = column(q.ev(text, "bool"))
        return conditions[text]

    if adm.unlisted_hospitals == "not_designated":
        bound = condition(adm.hospitals_when).fill_null(True) if adm.hospitals_when else pl.lit(True)
        q.code(REASON_COLUMNS, "not_designated", bound & pl.col("_listed").not_())
        # Only the hospital's name decides (a zone alone does not say which hospital): without a name, or
        # a stated ``designated``, the check is listed as not done rather than passed in silence.
        unchecked.append(("not_designated",
                          bound & pl.col("_listed").is_null() & pl.col("hospital_designated").is_null()))
    q.code(REASON_COLUMNS, "not_designated", pl.col("hospital_designated").not_())
    if adm.excluded_zones:
        q.code(REASON_COLUMNS, pl.col("hospital_zone"), is_one_of(pl.col("hospital_zone"), adm.excluded_zones))
    if adm.excluded_causes:
        q.code(REASON_COLUMNS, pl.col("cause"), is_one_of(pl.col("cause"), adm.excluded_causes), prefix="excluded_cause:")
    for check in adm.checks:
        if not check.enabled:
            continue
        applies = condition(check.when) if check.when else None
        reject = column(q.ev(check.reject_if, "bool", mask=None if applies is None else applies.fill_null(False)))
        app = pl.lit(True) if applies is None else applies
        q.code(REASON_COLUMNS, check.code, app & reject)
        unchecked.append((check.code, app.fill_null(False) & reject.is_null()))
    for rule in adm.not_checkable:  # conditions no bill shows: listed on every claim they concern
        concerned = q.ev(rule.when, "bool").fill_null(True) if rule.when else pl.lit(True)
        unchecked.append((rule.code, concerned))
    chunks = pattern([flag for _code, flag in unchecked])
    q.with_columns(pl.lit(None, pl.String).alias(UNCHECKED), *(p.alias(f"_uc{c}") for c, p in enumerate(chunks)))
    q.drop(*temporaries)
    run = q.collect()
    if unchecked:
        names = [f"_uc{c}" for c in range(len(chunks))]
        texts = texts_by_pattern([code for code, _flag in unchecked], [run.frame[n] for n in names])
        run.frame = replace_columns(run.frame, names, texts.alias(UNCHECKED))


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


def _categories(q: Lazy) -> None:
    """Settle unknown categories as the policy's default (listed as assumed), or reject them when it has none."""
    cats = q.run.policy.model.admission.categories
    if cats is None:
        return
    known = is_one_of(pl.col("person_category"), cats.known)
    if cats.default is not None:
        q.code(ASSUMED, f"person_category={cats.default}", ~known.fill_null(False))
        q.with_columns(person_category=pl.when(known.fill_null(False)).then(pl.col("person_category"))
                       .otherwise(pl.lit(cats.default)))
    else:
        q.code(REASON_COLUMNS, "unknown_category", known.not_().fill_null(True))
