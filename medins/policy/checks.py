"""What ``policy check`` proves after the schema: codes are known, names resolve, results stay in range.

Why a module of its own: the schema (pydantic) sees one value at a time; these checks need the whole
policy — the vocabularies plus the policy's own ``vocabulary:`` codes, the parameters an expression
may read, which table an expression indexes with which claim field. Each mistake they find would
otherwise pass ``policy check`` and then change payments (a misspelt code matches nothing) or
reject every claim at run time (an unknown name). Every issue is located (``file:line:col``) and
worded from ``messages.yaml`` in both languages, with a did-you-mean when a close name exists.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel

from medins.claims.aliases import ALL_FIELDS
from medins.claims.vocabulary import FIELD_VOCABULARY, VOCABULARIES, close_code
from medins.errors import PolicyIssue, format_key_path
from medins.policy.compiled import CLAIM_NAMES, DERIVED_NAMES, ITEM_NAMES, PAYER_NAMES
from medins.policy.expr import ExprError, Expression, ExprEvalError
from medins.policy.messages import dictionary
from medins.policy.plan import declared_values, field_codes  # noqa: F401 - where they were
from medins.policy.schema import (
    Allowance,
    Approval,
    Bands,
    Cap,
    Ceiling,
    Deductible,
    ItemLimit,
    ItemSelector,
    Parameter,
    Policy,
    SelfPayFirst,
    VisitLimit,
    iter_expressions,
)

if TYPE_CHECKING:  # annotations only: a cached policy is settled without the YAML reader
    from medins.policy.yamlsource import Positions

#: Names the engine gives an expression itself (a band's ``rate``): a parameter of that name is shadowed.
BUILTIN_NAMES = CLAIM_NAMES | DERIVED_NAMES | ITEM_NAMES

CAT_PREFIX = "cat_"

#: What an expression's value means, by (model, field): a rate (0–100 %) or an amount (≥ 0).
_DOMAINS: dict[tuple[type, str], str] = {
    (Deductible, "standard"): "amount", (Ceiling, "amount"): "amount", (Cap, "amount"): "amount",
    (Allowance, "amount"): "amount", (Approval, "min_amount"): "amount", (ItemLimit, "max"): "amount",
    (ItemLimit, "max_per_dose"): "amount", (VisitLimit, "max"): "amount", (Bands, "rate"): "rate",
    (Bands, "class_b_offset"): "rate", (SelfPayFirst, "rate"): "rate",
}


#: Names the engine computes in later stages: not yet known where an expression of an earlier stage runs.
_LATER: dict[str, frozenset[str]] = {
    "scope": frozenset({"inscope", "eligible", "class_b_inscope", "total_items", "admissions", "rate"}),
    "selection": frozenset({"eligible", "admissions", "rate"}),  # admission checks, a rule's when
    "ceiling": frozenset({"eligible", "rate"}),
    "benefits": frozenset({"rate"}),  # ``rate`` is a band's own rate: only in a band's rate expression
}


def stage_of(loc: tuple, holder: BaseModel) -> str | None:
    """Which engine stage evaluates the expression at ``loc`` (for the names it cannot read yet)."""
    if loc[0] == "scope":
        return "scope"
    if loc[0] == "admission" or (loc[0] == "rules" and len(loc) == 3 and loc[2] == "when"):
        return "selection"
    if isinstance(holder, Ceiling):
        return "ceiling"
    if isinstance(holder, Bands) and loc[-1] == "rate":
        return None
    return "benefits"


def declared_codes(model: Policy) -> dict[str, tuple[str, ...]]:
    """Vocabulary name → every code this policy may name: the registry's, then its own ``vocabulary:``."""
    out: dict[str, tuple[str, ...]] = {}
    for name, vocab in VOCABULARIES.items():
        extra = tuple(c.code for c in model.vocabulary.get(name, ()) if c.code not in vocab.names)  # type: ignore[call-overload]
        out[name] = vocab.names + extra
    return out


def domain_of(holder: BaseModel, key: object) -> str | None:
    """``rate`` or ``amount`` for an expression field with a result domain, else None."""
    return next((d for (tp, name), d in _DOMAINS.items() if isinstance(holder, tp) and name == key), None)


class Checker:
    """Collects located issues for one policy file."""

    def __init__(self, model: Policy, positions: Positions, filename: str) -> None:
        self.model, self.positions, self.filename = model, positions, filename
        self.codes = declared_codes(model)
        self.params = set(model.parameters)
        self.issues: list[PolicyIssue] = []
        self._constants: list[dict[str, object]] | None = None

    @property
    def constants(self) -> list[dict[str, object]]:
        """Parameter values of every version (compiled once, on the first constant expression)."""
        if self._constants is None:
            self._constants = _constant_sets(self.model)
        return self._constants

    def issue(self, code: str, loc: tuple, found: str, *, prefer: str = "value", **values: str) -> None:
        """One issue, worded by the ``messages.yaml`` entry for ``code``; ``suggestion`` picks its did-you-mean hint."""
        entry = dictionary()[code]
        line, col = self.positions.locate(loc, prefer)  # type: ignore[arg-type]
        fill = {"found": found, **values}
        suggest = bool(values.get("suggestion"))
        texts = {lang: entry[lang].format_map(fill) for lang in ("en", "zh")}
        hints = {lang: (entry.get(f"suggest_{lang}") if suggest else entry.get(f"hint_{lang}")) for lang in ("en", "zh")}
        self.issues.append(PolicyIssue(
            file=self.filename, line=line, column=col, key_path=format_key_path(loc), found=repr(found),
            allowed=values.get("allowed"), message_en=texts["en"], message_zh=texts["zh"],
            hint_en=hints["en"].format_map(fill) if hints["en"] else None,
            hint_zh=hints["zh"].format_map(fill) if hints["zh"] else None, code=str(entry["code"])))

    def code(self, vocab: str, word: object, loc: tuple, extra: tuple[str, ...] = (), prefer: str = "value") -> None:
        """``word`` must be a code of ``vocab`` (or one of ``extra``, e.g. literals an index may take)."""
        if word is None:
            return
        known = tuple(dict.fromkeys((*self.codes[vocab], *extra)))
        if str(word) in known:
            return
        v = VOCABULARIES[vocab]
        self.issue("unknown_code", loc, str(word), prefer=prefer, vocab_en=v.en, vocab_zh=v.zh,
                   suggestion=close_code(str(word), known) or "", allowed=_short_list(known))


def _short_list(codes: tuple[str, ...]) -> str:
    return ", ".join(codes) if len(codes) <= 12 else ", ".join(codes[:12]) + f", … ({len(codes)} codes)"


def check_policy(model: Policy, positions: Positions, filename: str) -> list[PolicyIssue]:
    """Every check of this module on one validated policy."""
    c = Checker(model, positions, filename)
    _check_listed_codes(c)
    _check_parameters(c)
    _check_version_dates(c)
    _check_expressions(c)
    _check_idle_keys(c)
    return c.issues


#: (why en, why zh) a key given in the file changes nothing where it stands.
_IDLE = {
    "bands_bucket": ("a bands bucket only places the claim on the cumulative axis; this axis is not cumulative",
                     "bands 的 bucket 只用于 cumulative 轴，而此处不是 cumulative"),
    "cap_bucket": ("a cap bucket only counts a yearly cap; this cap is per claim",
                   "cap 的 bucket 只用于按年计算的限额，而此处按次计算"),
    "deductible_bucket": ("a deductible bucket only counts a yearly or top-up deductible; this one is charged per "
                          "admission", "起付线的 bucket 只用于按年或补差的起付线，而此处按次收取"),
    "topup": ("topup only applies to a per-admission deductible; this one is charged once a year",
              "topup 只适用于按次起付线，而此处按年收取一次"),
    "lowest_of": ("lowest_of is only read with choose: lowest", "lowest_of 只在 choose: lowest 时使用"),
    "choose_lowest": ("choose: lowest needs lowest_of (the share compared); without it the first group is taken",
                      "choose: lowest 需要 lowest_of（比较的份额）；缺少时取第一组"),
    "default": ("a bill of another category is settled as the default, which is not a known category itself",
                "其他类别的账单按默认类别结算，而默认类别本身不在 known 中"),
    "source": ("a source cites the list next to it, which is absent", "source 引用的是旁边的列表，但该列表不存在"),
}


def _check_idle_keys(c: Checker) -> None:
    """Every key does something where it stands: a key the engine would ignore is a mistake to point at."""
    def idle(loc: tuple, found: object, why: str) -> None:
        c.issue("idle_key", loc, str(found), prefer="key", key=str(loc[-1]), why_en=_IDLE[why][0], why_zh=_IDLE[why][1])

    for i, rule in enumerate(c.model.rules):
        for loc, bands in [(("rules", i, "bands"), rule.bands),
                           *((("rules", i, "layers", j, "bands"), layer.bands) for j, layer in enumerate(rule.layers))]:
            if bands is not None and bands.bucket and bands.axis != "cumulative":
                idle((*loc, "bucket"), bands.bucket, "bands_bucket")
        for loc, cap in [(("rules", i, "cap"), rule.cap),
                         *((("rules", i, "layers", j, "cap"), layer.cap) for j, layer in enumerate(rule.layers))]:
            if cap is not None and cap.bucket and cap.per == "claim":
                idle((*loc, "bucket"), cap.bucket, "cap_bucket")
        ded = rule.deductible
        if ded is not None and ded.bucket and ded.per == "admission" and not ded.topup:
            idle(("rules", i, "deductible", "bucket"), ded.bucket, "deductible_bucket")
        if ded is not None and ded.topup and ded.per == "year":
            idle(("rules", i, "deductible", "topup"), ded.topup, "topup")
    premiums = c.model.premiums
    if premiums is not None and premiums.lowest_of and premiums.choose != "lowest":
        idle(("premiums", "lowest_of"), premiums.lowest_of, "lowest_of")
    if premiums is not None and premiums.choose == "lowest" and not premiums.lowest_of:
        idle(("premiums", "choose"), premiums.choose, "choose_lowest")
    adm = c.model.admission
    if adm.categories is not None and adm.categories.default and adm.categories.default not in adm.categories.known:
        idle(("admission", "categories", "default"), adm.categories.default, "default")
    for key, subject in (("excluded_causes_source", adm.excluded_causes), ("excluded_zones_source", adm.excluded_zones),
                         ("hospitals_source", adm.hospitals)):
        if getattr(adm, key) and not subject:
            idle(("admission", key), getattr(adm, key), "source")
    if c.model.scope.days_supply_source and not c.model.scope.days_supply_limit:
        idle(("scope", "days_supply_source"), c.model.scope.days_supply_source, "source")


def _check_listed_codes(c: Checker) -> None:
    """Codes the policy lists: categories, hospitals, excluded causes and zones, scope categories."""
    adm = c.model.admission
    for i, word in enumerate(adm.excluded_causes):
        c.code("causes", word, ("admission", "excluded_causes", i))
    for i, word in enumerate(adm.excluded_zones):
        c.code("zones", word, ("admission", "excluded_zones", i))
    if adm.categories is not None:
        for i, word in enumerate(adm.categories.known):
            c.code("person_categories", word, ("admission", "categories", "known", i))
        c.code("person_categories", adm.categories.default, ("admission", "categories", "default"))
    for i, hospital in enumerate(adm.hospitals):
        c.code("zones", hospital.zone, ("admission", "hospitals", i, "zone"))
        c.code("hospital_kinds", hospital.kind, ("admission", "hospitals", i, "kind"))
    for loc, selector in _selectors(c.model.scope, ("scope",)):
        for j, word in enumerate(selector.categories or ()):
            c.code("item_categories", word, (*loc, "categories", j))


def _selectors(model: BaseModel, loc: tuple) -> Iterator[tuple[tuple, ItemSelector]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        for i, item in (enumerate(value) if isinstance(value, list) else [(None, value)]):
            if isinstance(item, ItemSelector):
                yield ((*loc, name) if i is None else (*loc, name, i)), item


def _check_parameters(c: Checker) -> None:
    """A parameter named like a built-in name would be shadowed by it (or shadow it): refuse it."""
    for loc_head, params in [(("parameters",), c.model.parameters)] + [
            (("versions", i, "parameters"), v.parameters) for i, v in enumerate(c.model.versions)]:
        for name in params:
            if name in BUILTIN_NAMES:
                c.issue("shadowed_name", (*loc_head, name), name, prefer="key")


def _check_version_dates(c: Checker) -> None:
    """A version's ``valid_from``/``valid_to`` is a date or the name of a date parameter (else calc cannot start)."""
    dates = sorted(n for n, p in c.model.parameters.items() if p.unit == "date")
    for i, version in enumerate(c.model.versions):
        for attr in ("valid_from", "valid_to"):
            given = getattr(version, attr)
            if given is None or given in dates:
                continue
            try:
                date.fromisoformat(given)
            except ValueError:
                c.issue("bad_version_date", ("versions", i, attr), given, allowed="YYYY-MM-DD, " + ", ".join(dates),
                        suggestion=close_code(given, dates) or "")


def _check_expressions(c: Checker) -> None:
    """Parse every expression, resolve its names, check its code literals, table keys and constant range."""
    base = CLAIM_NAMES | DERIVED_NAMES | c.params
    premium_inputs = set(c.model.premiums.inputs) if c.model.premiums else set()
    for loc, text, holder in iter_expressions(c.model):
        known = set(base)
        if isinstance(holder, ItemSelector) or loc == ("scope", "days_supply_limit"):
            known |= ITEM_NAMES
        if loc and loc[0] == "premiums":
            known |= premium_inputs
        if len(loc) > 2 and loc[0] == "rules" and loc[2] == "layers":
            known |= PAYER_NAMES  # the amounts a payer's base is formed from (docs/payers.md)
        try:
            expr = Expression.parse(text)
        except ExprError as exc:
            c.issue("bad_expression", loc, text, error=str(exc))
            continue
        resolved = True
        stage = stage_of(loc, holder)
        for name in sorted(expr.names & _LATER.get(stage or "", frozenset())):
            c.issue("name_not_yet_known", loc, text, name=name, stage=stage or "")
            resolved = False
        for name in sorted(expr.names - known):
            if name.startswith(CAT_PREFIX):
                category = name[len(CAT_PREFIX):]
                if category not in c.codes["item_categories"]:
                    guess = close_code(category, c.codes["item_categories"])
                    c.issue("unknown_name", loc, text, name=name, suggestion=CAT_PREFIX + guess if guess else "",
                            allowed="cat_<item category>")
                    resolved = False
                continue
            guess = close_code(name, sorted(known)) or next(iter(_close_names(name, known)), "")
            c.issue("unknown_name", loc, text, name=name, suggestion=guess, allowed="parameters, claim fields")
            resolved = False
        _check_literals(c, expr, loc)
        domain = domain_of(holder, loc[-1])
        if resolved and domain:
            _check_constant(c, expr, loc, domain, holder)


def _close_names(name: str, known: set[str]) -> list[str]:
    from medins.errors import close_names

    return close_names(name, sorted(known))


def _vocab_of_name(name: str) -> str | None:
    vocab = FIELD_VOCABULARY.get(name)
    return vocab.name if vocab else None


def _choices_of_name(name: str) -> tuple[str, ...]:
    """A field's fixed choices that belong to no vocabulary (``sex``: M, F; ``item_class``: A, B, C)."""
    f = ALL_FIELDS.get(name)
    return f.choices if f is not None and name not in FIELD_VOCABULARY else ()


def _strings(node: ast.AST) -> list[str] | None:
    """The text literals of a literal or a tuple/list of literals (None: not only text literals)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List)):
        out = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return out if len(out) == len(node.elts) else None
    return None


def _check_literals(c: Checker, expr: Expression, loc: tuple) -> None:
    """``visit_type == 'inpatien'``, ``hospital_kind in ('village_statio',)``, ``deductible[hospital_zone]``
    with a table keyed ``in_distric``: a code compared with a vocabulary field must be one of its codes."""
    for node in ast.walk(expr.tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for left, right in itertools.pairwise(operands):
                for a, b in ((left, right), (right, left)):
                    name = a.id if isinstance(a, ast.Name) else ""
                    vocab, choices, words = _vocab_of_name(name), _choices_of_name(name), _strings(b)
                    for word in words or ():
                        if vocab:
                            c.code(vocab, word, loc)
                        elif choices and word not in choices:
                            c.issue("bad_literal", loc, word, name=name, allowed=", ".join(choices),
                                    suggestion=close_code(word, choices) or "")
        elif isinstance(node, ast.Subscript):
            _check_table_keys(c, node, loc)


def _check_table_keys(c: Checker, node: ast.Subscript, loc: tuple) -> None:
    """A table indexed by an expression reading vocabulary fields: its keys at that depth must be codes
    of those vocabularies or text literals the index expression itself can give (``'retired_70'``)."""
    depth, table = 0, node.value
    while isinstance(table, ast.Subscript):
        depth, table = depth + 1, table.value
    if not isinstance(table, ast.Name) or table.id not in c.model.parameters:
        return
    index_names = [n.id for n in ast.walk(node.slice) if isinstance(n, ast.Name)]
    vocabs = {v for v in map(_vocab_of_name, index_names) if v}
    if not vocabs:
        return
    literals = tuple(n.value for n in ast.walk(node.slice) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    allowed = literals + tuple(code for v in sorted(vocabs) for code in c.codes[v])
    vocab = sorted(vocabs)[0]
    compared = {id(n) for cmp in ast.walk(node.slice) if isinstance(cmp, ast.Compare)
                for n in ast.walk(cmp) if isinstance(n, ast.Constant)}
    yielded = {n.value for n in ast.walk(node.slice)
               if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in compared}
    for head, param in _parameter_versions(c.model, table.id):
        if param.values is None:
            continue
        keys = {str(key) for _path, key in _keys_at(param.values, depth)}
        for path, key in _keys_at(param.values, depth):
            c.code(vocab, key, (*head, "values", *path, key), extra=allowed, prefer="key")
        for word in sorted(yielded - keys):  # a key the index gives but the table lacks: every such claim fails
            c.issue("missing_key_in_table", loc, word, table=table.id, allowed=", ".join(sorted(keys)),
                    suggestion=close_code(word, sorted(keys)) or "")


def _parameter_versions(model: Policy, name: str) -> Iterator[tuple[tuple, Parameter]]:
    if name not in model.parameters:
        return  # an unknown scale reference: reported by the loader (unknown_parameter)
    yield ("parameters", name), model.parameters[name]
    for i, version in enumerate(model.versions):
        if name in version.parameters:
            yield ("versions", i, "parameters", name), version.parameters[name]


def _keys_at(table: dict, depth: int, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    for key, value in table.items():
        if depth == 0:
            yield path, key
        elif isinstance(value, dict):
            yield from _keys_at(value, depth - 1, (*path, key))


def _check_constant(c: Checker, expr: Expression, loc: tuple, domain: str, holder: BaseModel) -> None:
    """An expression reading only parameters (or a band's listed rates) is evaluated now, in every version."""
    names = set(expr.names)
    rates: list[object] = [None]
    if isinstance(holder, Bands) and "rate" in names:
        rates = _band_rates(c.model, holder)
        names.discard("rate")
    if names - c.params:
        return  # reads the claim: checked on each claim at run time
    for constants in c.constants:
        for rate in rates:
            env = {**constants, **({"rate": rate} if rate is not None else {})}
            try:
                value = expr.evaluate(env)
            except (ExprEvalError, ArithmeticError, TypeError, ValueError):
                continue  # a table lookup by a claim field: run time
            if not isinstance(value, Decimal):
                continue
            if domain == "amount" and value < 0:
                c.issue("negative_amount", loc, expr.text, value=str(value))
                return
            if domain == "rate" and not 0 <= value <= 1:
                c.issue("rate_out_of_range", loc, expr.text, value=f"{value * 100:f}%")
                return


def _band_rates(model: Policy, bands: Bands) -> list[object]:
    """The listed rates a band's ``rate`` expression transforms (every version's scale)."""
    if bands.scale is None:
        return [None]
    out: list[object] = []
    for _head, param in _parameter_versions(model, bands.scale):
        if param.scale is not None:
            out += [b.rate for b in param.scale]
        elif param.value is not None and param.unit == "rate":
            from medins.policy.schema import check_scalar

            out.append(check_scalar(param.value, "rate"))
    return out or [None]


def _constant_sets(model: Policy) -> list[dict[str, object]]:
    from medins.policy.compiled import compile_policy

    try:
        compiled = compile_policy(model, "<check>")
    except ValueError:
        return []
    return [v.params.constants for v in compiled.versions]


