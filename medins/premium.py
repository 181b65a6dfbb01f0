"""Contributions (缴费): who pays what for one person, from a policy's ``premiums`` section.

Why with the same expressions as benefits: a scheme's contribution rules ("individual 30, government
120 for children", "employee 2 % of wage + 3 yuan") are cited policy data like its benefits, and an
analyst comparing reforms changes them with the same ``--set``. Each share is rounded half up to
the fen once; the age is the completed age on the payment date (A-SQ-13).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from medins import dates
from medins.errors import UsageError
from medins.money import round_decimal_to_fen
from medins.policy.compiled import CompiledPolicy
from medins.policy.expr import Expression, ExprEvalError


@dataclass
class PremiumResult:
    """The chosen group and each payer's share in fen (``total`` = their sum)."""

    group: str
    label: tuple[str, str] | None
    shares: dict[str, int]
    period: str
    source: str

    @property
    def total(self) -> int:
        return sum(self.shares.values())


def _version_constants(policy: CompiledPolicy, on: date) -> dict[str, object]:
    for version in policy.versions:
        start = version.valid_from if isinstance(version.valid_from, date) else None
        end = version.valid_to if isinstance(version.valid_to, date) else None
        if (start is None or on >= start) and (end is None or on <= end):
            return version.params.constants
    return policy.versions[0].params.constants


def premium(policy: CompiledPolicy, *, person_category: str | None = None, sex: str | None = None,
            birth_date: date | None = None, paid_date: date | None = None,
            inputs: dict[str, Decimal] | None = None) -> PremiumResult:
    """Compute one person's contribution shares; a usage error names what is missing."""
    spec = policy.model.premiums
    if spec is None:
        raise UsageError(f"Policy {policy.id} defines no contributions.", f"政策 {policy.id} 没有缴费规定。",
                         hint_en="Policies with premiums: see `medins policy show`.",
                         hint_zh="有缴费规定的政策见 `medins policy show`。")
    paid = paid_date or date.today()
    env: dict[str, object] = dict(_version_constants(policy, paid))
    env.update({"person_category": person_category, "sex": sex, "birth_date": birth_date, "service_date": paid,
                "age": Decimal(dates.age_on(birth_date, paid)) if birth_date else None})
    for name in spec.inputs:
        env[name] = (inputs or {}).get(name)
    for name, value in (inputs or {}).items():
        if name not in spec.inputs:
            raise UsageError(f"Unknown input {name!r}; this policy's inputs are: {', '.join(spec.inputs) or 'none'}.",
                             f"未知的输入 {name!r};此政策的输入有:{', '.join(spec.inputs) or '无'}。")
        env[name] = value
    candidates: list[PremiumResult] = []
    for group in spec.groups:
        if Expression.parse(group.when).evaluate(env) is not True:
            continue
        shares: dict[str, int] = {}
        for payer, text in group.shares.items():
            try:
                value = Expression.parse(text).evaluate(env)
            except ExprEvalError as exc:
                raise UsageError(f"Cannot compute {payer}: {exc}", f"无法计算 {payer}:{exc}") from None
            if value is None:
                needed = sorted(n for n in Expression.parse(text).names if env.get(n) is None)
                raise UsageError(
                    f"Cannot compute the {payer} share without: {', '.join(needed)}.",
                    f"缺少 {', '.join(needed)},无法计算{payer}的缴费。",
                    hint_en="Give --input NAME=VALUE for wages/bases, --birth-date, --sex or --category.",
                    hint_zh="请用 --input 名称=值 提供工资/基数,或提供 --birth-date、--sex、--category。")
            shares[payer] = round_decimal_to_fen(value)
        label = (group.label.zh, group.label.en) if group.label else None
        candidates.append(PremiumResult(group.id, label, shares, spec.period, group.source))
        if spec.choose == "first":
            break
    if not candidates:
        raise UsageError("No contribution group applies to this person (give --birth-date, --sex or --category).",
                         "没有适用于此人的缴费类别(请提供 --birth-date、--sex 或 --category)。")
    if spec.choose == "lowest" and spec.lowest_of:
        return min(candidates, key=lambda r: r.shares.get(spec.lowest_of or "", 0))
    return candidates[0]
