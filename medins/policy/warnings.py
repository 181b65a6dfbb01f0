"""Warnings of ``medins policy check``: a policy that loads, but whose claims may be rejected for its sake.

Why: two ``self_pay_first`` rules that can select the same line (a class-B item that is also a special
exam) need a declared combination (``scope.self_pay_first_combine``); without one, every claim where
they meet is rejected ``self_pay_first_overlap``. The policy itself is valid — a scheme may never see
such a line — so this is said at ``policy check`` as a located warning, not refused as an error.
"""

from __future__ import annotations

from pathlib import Path

from medins.errors import PolicyIssue, format_key_path
from medins.policy.messages import load_model_with_positions
from medins.policy.schema import ItemSelector, Policy


def _meet(a: list[str] | None, b: list[str] | None) -> bool:
    """Two selector lists can pick the same value (``None`` picks any)."""
    return a is None or b is None or bool(set(a) & set(b))


def can_overlap(a: ItemSelector, b: ItemSelector) -> bool:
    """Whether one line can match both selectors: their categories and their classes meet (``when`` is not
    decided here — it depends on the claim — so two rules differing only by ``when`` count as overlapping)."""
    return _meet(a.categories, b.categories) and _meet(a.classes, b.classes)


def self_pay_first_overlaps(model: Policy) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of self_pay_first rules that can match one line when no combination is declared."""
    scope = model.scope
    if scope.self_pay_first_combine is not None:
        return []
    rules = scope.self_pay_first
    return [(i, j) for j in range(len(rules)) for i in range(j) if can_overlap(rules[i], rules[j])]


def policy_warnings(file: str) -> list[PolicyIssue]:
    """Located warnings for a policy file that already passed ``check_policy_file``."""
    text = Path(file).read_text(encoding="utf-8-sig")
    model, positions = load_model_with_positions(text, file, Policy)
    out: list[PolicyIssue] = []
    scope = model.scope
    for i, j in self_pay_first_overlaps(model):
        loc = ("scope", "self_pay_first", j)
        line, column = positions.locate(loc)
        a, b = scope.self_pay_first_name(i), scope.self_pay_first_name(j)
        out.append(PolicyIssue(
            file=file, line=line, column=column, key_path=format_key_path(loc), found=f"{a} + {b}",
            allowed="scope.self_pay_first_combine: max | sequential", code="self_pay_first_overlap",
            message_en=f"self_pay_first rules {a} and {b} can match the same line and no combination is declared: "
                       "claims where they meet are rejected self_pay_first_overlap",
            message_zh=f"先行自付规则 {a} 与 {b} 可能作用于同一明细，但未声明组合方式：两者同时适用的结算单将被拒付"
                       "（self_pay_first_overlap）",
            hint_en="add scope.self_pay_first_combine: max (the larger share) or sequential (one after the other "
                    "on what is left), as the source says",
            hint_zh="按政策原文在 scope 下加 self_pay_first_combine: max（取较高比例）或 sequential（依次在剩余部分上计算）",
        ))
    return out
