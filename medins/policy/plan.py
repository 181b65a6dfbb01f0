"""What the engine runs, without pydantic: the compiled policy's classes and the plain form of its model.

Why a module of its own: settling a bill needs the compiled policy — resolved parameter values per version,
the expressions, the model's rules, scope and account read as attributes — but none of the validation that
made it. ``medins.policy.compiled`` (which compiles, and imports pydantic and the schema models) re-exports
everything here, so the engine, the explanations, ``medins calc`` and ``medins batch`` (and its workers) with a
cached policy import this module alone: pydantic and the 30 schema models cost more than the rest of ``calc``'s own
start-up, and a fifth of ``batch``'s.

:class:`PlainModel` is a schema model's fields as frozen attributes, what the plan cache
(``medins.policy.cache``) turns each model into when it is written for ``calc`` and ``batch``: the engine reads a model's
fields only (no pydantic method), so it runs the same on both (``tests/test_plan_cache.py`` settles every
policy's examples both ways).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS
from medins.claims.fields import PAYER_FIELDS as FUND_FIELD_LABELS
from medins.claims.vocabulary import FIELD_VOCABULARY

#: Names the engine computes for every claim, usable in expressions next to the claim fields.
DERIVED_NAMES = frozenset({
    "service_date", "year", "age", "stay_days", "admissions", "inscope", "eligible", "class_b_inscope",
    "rate", "total_items",
})
CLAIM_NAMES = frozenset(f.name for f in CLAIM_FIELDS)
#: Named amounts a payer's expressions may read besides those (``medins/engine/payers.py``, docs/payers.md).
PAYER_NAMES = frozenset({"out_of_catalogue", "over_limit", "self_pay_first", "basic_deductible", "basic_paid",
                         "basic_cap_cut", "above_ceiling", "paid"})
ITEM_NAMES = frozenset(f.name for f in ITEM_FIELDS)
#: The fund fields a payer layer may write (every registry payer field but the basic fund's own).
PAYER_FIELDS = tuple(name for name in FUND_FIELD_LABELS if name != "hifp_pay")


@dataclass(frozen=True)
class ScaleBand:
    """One band in fen and ppm: (lo, hi] paid at rate; hi None = open."""

    lo: int
    hi: int | None
    rate: Decimal
    source: str | None


@dataclass
class ParamSet:
    """Parameter values of one version: expression constants plus scales."""

    constants: dict[str, object]
    scales: dict[str, list[ScaleBand]]
    missing: set[str]
    sources: dict[str, str]


@dataclass
class CompiledVersion:
    id: str
    valid_from: date | str | None
    valid_to: date | str | None
    params: ParamSet


@dataclass
class CompiledPolicy:
    """What the engine runs: the model plus resolved values per version."""

    model: Any  # medins.policy.schema.Policy, or its PlainModel from the plan cache
    file: str
    versions: list[CompiledVersion]
    overrides: dict[str, str] = field(default_factory=dict)
    benefit_year_start: str | None = "01-01"
    #: Every expression of the policy in the order of ``schema.iter_expressions`` (listed when compiled, so the
    #: engine need not walk the model's pydantic fields to find them).
    expressions: tuple[str, ...] | None = None
    #: Values of expressions already evaluated (``engine.context``): a year of claims repeats the same
    #: dates and codes in every partition. Not part of the policy's identity, not pickled.
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "memo": {}}

    @property
    def id(self) -> str:
        return self.model.id

    def label(self) -> str:
        ids = ",".join(v.id for v in self.versions if v.id != "default")
        return f"{self.model.id}@{ids}" if ids else self.model.id

    def expression_texts(self) -> tuple[str, ...]:
        """Every expression of the policy (the list made when compiled; walked afresh for one built by hand)."""
        if self.expressions is None:
            from medins.policy.schema import iter_expressions

            self.expressions = tuple(text for _loc, text, _holder in iter_expressions(self.model))
        return self.expressions


class PlainModel:
    """A schema model's fields as frozen attributes, for the engine: equal when kind and fields are equal."""

    __slots__ = ("__dict__", "_kind")

    def __init__(self, kind: str, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_kind", kind)
        self.__dict__.update(fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self._kind} is frozen")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainModel) and other._kind == self._kind and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((self._kind, *self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{self._kind}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def __reduce__(self) -> tuple:
        return plain_model, (self._kind, dict(self.__dict__))


class PlainScope(PlainModel):
    """``schema.Scope``'s one method besides its fields."""

    __slots__ = ()

    def self_pay_first_name(self, index: int) -> str:
        return self_pay_first_name(self, index)


#: Plain classes of the schema models that have methods the engine calls.
_PLAIN_KINDS: dict[str, type[PlainModel]] = {"Scope": PlainScope}


def plain_model(kind: str, fields: dict[str, Any]) -> PlainModel:
    """The plain form of a schema model of class ``kind`` (what a plan-cache entry names to rebuild one)."""
    return _PLAIN_KINDS.get(kind, PlainModel)(kind, fields)


def self_pay_first_name(scope: Any, index: int) -> str:
    """The name of rule ``index`` in reason codes and explanations: its ``id`` or its position."""
    rule = scope.self_pay_first[index]
    return rule.id or f"self_pay_first[{index}]"


class PayerOrderError(ValueError):
    """Two rules list the same payers in opposite orders: no single chain order exists."""


def payer_order(model: Any) -> list[str]:
    """Payer ids in an order that keeps every rule's order (a stable topological sort).

    Raises :class:`PayerOrderError` naming the two payers when rules disagree.
    """
    after: dict[str, set[str]] = {}
    first_seen: list[str] = []
    for rule in model.rules:
        ids = [layer.id for layer in rule.layers]
        for i, pid in enumerate(ids):
            if pid not in after:
                after[pid] = set()
                first_seen.append(pid)
            after[pid] |= set(ids[:i])
    order: list[str] = []
    while len(order) < len(first_seen):
        ready = [p for p in first_seen if p not in order and after[p] <= set(order)]
        if not ready:
            left = [p for p in first_seen if p not in order]
            raise PayerOrderError(f"rules list the payers {', '.join(left)} in different orders")
        order.append(ready[0])
    return order


def field_codes(model: Any) -> dict[str, tuple[str, ...]]:
    """Claim/item field → the extra codes the policy declares for it (what its readers also accept)."""
    return {f: tuple(c.code for c in model.vocabulary.get(v.name, ())) for f, v in FIELD_VOCABULARY.items()
            if model.vocabulary.get(v.name)}



def declared_values(model: Any) -> dict[str, dict[str, str]]:
    """Claim/item field → {word: code} for a claims file: each declared code to itself, its aliases to it.

    Why as value mappings: the claims reader already applies ``--map`` values per field and accepts a
    code mapped to itself as declared (``parse.declared_codes``), so the policy's codes need no second path.
    Why here: ``medins batch`` needs it for a policy read from the plan cache, without the checks' pydantic.
    """
    out: dict[str, dict[str, str]] = {}
    for f, vocab in FIELD_VOCABULARY.items():
        for extra in model.vocabulary.get(vocab.name, ()):
            out.setdefault(f, {}).update({extra.code: extra.code, **dict.fromkeys(extra.aliases, extra.code)})
    return out
