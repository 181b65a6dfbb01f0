"""Stage 3 — which benefit rule settles each claim, and what it needs.

Why: a scheme has a handful of benefit rules (inpatient, 门诊大病, outpatient …). The first rule
whose ``when`` holds settles the claim; a claim no rule covers is rejected ``no_rule`` rather than
settled by a guess, and a rule that needs a number the source document does not give rejects its
claims ``missing_parameter:<name>`` (the CLI turns that into "supply it with --set").
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

import polars as pl

from medins.engine.admissibility import REASON_COLUMNS
from medins.engine.context import Lazy, Run, parse
from medins.engine.history import check_history
from medins.engine.native import is_one_of

if TYPE_CHECKING:  # annotations only: the engine runs on a plain model too (medins.policy.plan)
    from collections.abc import Callable, Sequence

    from medins.policy.schema import Bands, Layer, Rule


def rule_expressions(rule: Rule) -> list[str]:
    """Every expression a rule evaluates (to find the parameters it needs)."""
    return [rule.when, *_basic_expressions(rule), *(t for layer in rule.layers for t in layer_expressions(layer))]


def _basic_expressions(rule: Rule) -> list[str]:
    """The expressions of the basic fund's part of a rule (not evaluated when its payment is given as paid)."""
    texts: list[str] = []
    if rule.deductible:
        texts.append(rule.deductible.standard)
    if rule.ceiling:
        texts.append(rule.ceiling.amount)
    if rule.bands is not None:
        texts += [t for t in (rule.bands.rate, rule.bands.class_b_offset) if t]
    texts += [a.amount for a in rule.allowances] + [a.when for a in rule.allowances if a.when]
    if rule.cap is not None:
        texts.append(rule.cap.amount)
    return texts


def layer_expressions(layer: Layer) -> list[str]:
    """Every expression of one payer."""
    texts = [t for t in (layer.when, layer.base, layer.bands.rate) if t]
    texts += [part.amount for part in (layer.ceiling, layer.cap) if part is not None]
    if layer.deductible:
        texts.append(layer.deductible.standard)
    return texts


def _names(texts: list[str], bands: Bands | None) -> set[str]:
    names: set[str] = set()
    for text in texts:
        names |= parse(text).names
    if bands is not None and bands.scale:
        names.add(bands.scale)
    return names


def rule_needs(rule: Rule) -> set[str]:
    """Every name a rule reads (parameters among them)."""
    names = _names([rule.when, *_basic_expressions(rule)], rule.bands)
    for layer in rule.layers:
        names |= _names(layer_expressions(layer), layer.bands)
    return names


def _default_bucket(rule: Rule) -> str:
    return rule.bucket or rule.id


#: The state-bucket columns and each rule's bucket in them (its own bucket, else the rule's): the bucket of a
#: claim is that of the rule settling it (null where none does).
BUCKETS: dict[str, Callable[[Rule], str]] = {
    "_b_rule": _default_bucket,
    "_b_ded": lambda r: r.deductible.bucket if r.deductible and r.deductible.bucket else _default_bucket(r),
    "_b_ceil": lambda r: r.ceiling.bucket if r.ceiling and r.ceiling.bucket else _default_bucket(r),
    "_b_axis": lambda r: r.bands.bucket if r.bands and r.bands.bucket else _default_bucket(r),
    "_b_cap": lambda r: r.cap.bucket if r.cap and r.cap.bucket else _default_bucket(r),
}


def bucket_names(rules: Sequence[Rule], column: str) -> list[str]:
    """Each rule's bucket in the state-bucket ``column`` (``BUCKETS``), by rule number.

    Why a function: ``benefits._grouping`` groups claims by these per-rule names through ``_rule`` (small
    integers) rather than by the bucket column's texts, which cost a hash of every row's string.
    """
    return [BUCKETS[column](rule) for rule in rules]


def select_rules(run: Run) -> None:
    """Add ``_rule`` (index into policy.rules, null = none) and the state-bucket columns, and check the
    claims' history (``history.py``): one query (``Run.lazy``), the reasons as bits (``engine/codes.py``)."""
    run.deferred(_select_rules)


def _select_rules(run: Run, defer: bool) -> None:
    rules = run.policy.model.rules
    q = run.lazy(defer=defer)
    q.with_columns(_rule=pl.lit(None, pl.Int64))
    for idx, rule in enumerate(rules):
        hit = q.ev(rule.when, "bool", mask=pl.col("_rule").is_null()).fill_null(False)
        q.with_columns(_rule=pl.when(hit).then(pl.lit(idx, pl.Int64)).otherwise(pl.col("_rule")))
    q.code(REASON_COLUMNS, "no_rule", pl.col("_rule").is_null())
    _unsettled_zones(q)
    for idx, rule in enumerate(rules):
        # A part whose payment the bill gives as already paid is not computed: its missing numbers are not needed.
        parts = [(_names([rule.when], None), None), (_names(_basic_expressions(rule), rule.bands), "hifp_pay")]
        parts += [(_names(layer_expressions(layer), layer.bands), layer.field) for layer in rule.layers]
        needed: dict[tuple[int, str], pl.Expr] = {}
        for v_idx, version in enumerate(run.policy.versions):
            for names, field in parts:
                for name in names & version.params.missing:
                    where = pl.lit(True) if field is None else pl.col(f"paid_{field}").is_null()
                    needed[(v_idx, name)] = needed[(v_idx, name)] | where if (v_idx, name) in needed else where
        for (v_idx, name), where in sorted(needed.items(), key=lambda kv: kv[0]):
            q.code(REASON_COLUMNS, f"missing_parameter:{name}", (pl.col("_rule") == idx) & (pl.col("_v") == v_idx) & where)
    _account_needs(q)

    def bucket(names: list[str]) -> pl.Expr:
        # one lookup by rule number (a when/then chain over the rules costs a pass per rule): ``_rule`` is the
        # index itself, so a gather (a fourth of a ``replace_strict``); null where no rule settles the claim
        if not rules:
            return pl.lit(None, pl.String)
        return pl.lit(pl.Series(names, dtype=pl.String)).gather(pl.col("_rule"))

    # The bucket texts are read by the trace alone: the state groupings number the rules' buckets from ``_rule``
    # (``benefits._grouping``), so a batch leaves out the five text columns (a gather of texts each per claim).
    # Without rules there is no ``_rule`` to number: the (null) columns are what the groupings read.
    texts = {column: bucket(bucket_names(rules, column)) for column in BUCKETS} if run.trace or not rules else {}
    admission = pl.lit(pl.Series([r.admission for r in rules], dtype=pl.Boolean)).gather(pl.col("_rule")) if rules \
        else pl.lit(None, pl.Boolean)  # null where no rule settles the claim, as a null bucket text compared was
    q.with_columns(**texts, _admission=admission)
    check_history(q)
    q.collect()


#: Claim facts a policy table may be keyed by, and the reason a claim gets when the rule's table has no entry for
#: its value: the scheme does not settle that kind of care (words in ``report/labels.py`` say what to do instead).
KEYED_FACTS = {"hospital_zone": "zone_not_settled", "hospital_level": "level_not_settled",
               "visit_type": "visit_type_not_settled", "hospital_kind": "kind_not_settled"}


def keyed_tables(rule: Rule, fact: str = "hospital_zone") -> set[str]:
    """Parameters a rule looks up by the claim's ``fact`` (``deductible[hospital_zone]``)."""
    names: set[str] = set()
    for text in rule_expressions(rule):
        for node in ast.walk(parse(text).tree):
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                    and isinstance(node.slice, ast.Name) and node.slice.id == fact):
                names.add(node.value.id)
    return names


def _unsettled_zones(q: Lazy) -> None:
    """Reject ``zone_not_settled:<zone>`` (likewise a level, visit type or hospital kind) where the rule's tables
    keyed by that fact have no entry for the claim's value.

    Why: a scheme that gives deductibles for in-district, in-city and out-of-city care only does not
    settle out-of-province care (that goes by the cross-region rules of 异地就医); saying so tells the
    user what to do, where a failed table lookup would only say ``policy_error``.
    """
    unknown: dict[tuple[str, tuple[str, ...]], pl.Expr] = {}  # (fact, known values) -> a column, computed once

    def outside(fact: str, known: list[str]) -> pl.Expr:
        # rules (and versions) keyed by the same table share its look-up: one ``is_in`` per row, not one per rule
        key = (fact, tuple(known))
        if key not in unknown:
            name = f"_unknown{len(unknown)}"
            q.with_columns((pl.col(fact).is_not_null() & ~is_one_of(pl.col(fact).cast(pl.String), known)).alias(name))
            unknown[key] = pl.col(name)
        return unknown[key]

    for fact, code in KEYED_FACTS.items():
        if fact not in q.schema:
            continue
        value = pl.col(fact)
        for idx, rule in enumerate(q.run.policy.model.rules):
            tables = keyed_tables(rule, fact)
            for v_idx, version in enumerate(q.run.policy.versions):
                keyed = [set(map(str, t)) for name in sorted(tables)
                         if isinstance(t := version.params.constants.get(name), dict)]
                if not keyed or any(k.endswith("+") for keys in keyed for k in keys):  # "3+": open, every value fits
                    continue
                known = sorted(set.intersection(*keyed))
                flag = (pl.col("_rule") == idx) & (pl.col("_v") == v_idx) & outside(fact, known)
                q.code(REASON_COLUMNS, value, flag, prefix=f"{code}:")
    if unknown:
        q.drop(*(col.meta.output_name() for col in unknown.values()))


def _account_needs(q: Lazy) -> None:
    """A claim the account pays for needs the account's credit: a ``missing: true`` parameter there stops
    the claim ``missing_parameter:<name>`` (once taken as 0, which silently paid nothing from the account)."""
    account = q.run.policy.model.account
    if account is None:
        return
    needs = parse(account.credit).names
    pays: pl.Expr | None = None
    for v_idx, version in enumerate(q.run.policy.versions):
        for name in sorted(needs & version.params.missing):
            if pays is None:
                pays = q.ev(account.pays, "bool").fill_null(False)
            q.code(REASON_COLUMNS, f"missing_parameter:{name}", pays & (pl.col("_v") == v_idx))


def rule_mask(run: Run, idx: int) -> pl.Series:
    """Rows settled (so far admissible) by rule ``idx``."""
    return run.frame.select((pl.col("_rule") == idx) & pl.col("_ok")).to_series().fill_null(False)
