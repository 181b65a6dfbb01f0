"""``policy check``: a table indexed by a fact without an upper bound must have an open last key.

Why: a page lists the deductible of the 1st, 2nd and 3rd admission; the 4th admission comes anyway.
A table ``{1: 400, 2: 280, 3: 200}`` read with ``admission_no`` (or ``age``, or ``admissions + 1``)
settles the first three and rejects the fourth with ``policy_error`` — found only when such a claim
arrives. The check finds it when the policy is written: it asks for an open key such as ``"3+"``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from medins.errors import PolicyIssue, format_key_path
from medins.policy.expr import ExprError, Expression
from medins.policy.schema import OPEN_KEY, Parameter, Policy, is_missing_entry, iter_expressions
from medins.policy.yamlsource import Positions

#: Facts that grow without a bound the policy can list: an ordinal, an age, a count.
OPEN_ENDED = frozenset({"admission_no", "age", "admissions"})


def check_open_ended_tables(model: Policy, positions: Positions, filename: str) -> list[PolicyIssue]:
    """One located issue per expression that indexes a table by an open-ended fact at a level without ``N+``."""
    issues: list[PolicyIssue] = []
    for loc, text, _holder in iter_expressions(model):
        try:
            expr = Expression.parse(text)
        except ExprError:
            continue  # reported by the expression check
        for table, depth, fact in _indexed_by_open_facts(expr.tree):
            levels = [_level_keys(p.values, depth) for p in _all_versions(model, table) if p.values is not None]
            if not levels:
                continue  # a missing table, or not a table: other checks speak about it
            if any(any(OPEN_KEY.match(str(k)) for k in keys) for keys in levels):
                continue
            keys = sorted({str(k) for ks in levels for k in ks})
            if not keys or not all(k.isdigit() for k in keys):
                continue  # text keys: not a numeric ladder
            last = max(int(k) for k in keys)
            line, col = positions.locate(loc)
            issues.append(PolicyIssue(
                file=filename, line=line, column=col, key_path=format_key_path(loc), found=repr(text),
                allowed=f"an open last key, e.g. \"{last}+\"", code="open_ended_index",
                message_en=f"table {table!r} is indexed by {fact}, which has no upper bound, but its keys end at "
                           f"{last}: a claim where {fact} is above {last} could not be settled",
                message_zh=f"表 {table!r} 以 {fact} 为键,它没有上限,但表的键止于 {last}:"
                           f"{fact} 大于 {last} 的理赔将无法结算",
                hint_en=f"write the last entry as \"{last}+\" (meaning {last} and later), or add the missing entries",
                hint_zh=f"把最后一项写成 \"{last}+\"(表示 {last} 及以后),或补全缺少的表项"))
    return issues


def _all_versions(model: Policy, name: str) -> Iterator[Parameter]:
    if name in model.parameters:
        yield model.parameters[name]
    for version in model.versions or []:
        if name in version.parameters:
            yield version.parameters[name]


def _level_keys(values: dict, depth: int) -> set:
    """The keys of a nested table at ``depth`` (0 = top), over every branch."""
    level: list[dict] = [values]
    for _ in range(depth):
        level = [v for table in level for v in table.values() if isinstance(v, dict) and not is_missing_entry(v)]
    return {k for table in level for k in table}


def _indexed_by_open_facts(tree: ast.AST) -> Iterator[tuple[str, int, str]]:
    """(table parameter, depth, index text) for each ``table[...][...]`` whose index at ``depth`` is a number made of
    an open-ended fact (a name or arithmetic on it — not a condition or a text choice)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Subscript):
            continue
        chain: list[ast.AST] = []
        base: ast.AST = node
        while isinstance(base, ast.Subscript):
            chain.append(base.slice)
            base = base.value
        if not isinstance(base, ast.Name):
            continue
        chain.reverse()
        depth = len(chain) - 1  # this node's own index is the last one of the chain
        index = chain[depth]
        if not _numeric(index):
            continue
        facts = sorted({n.id for n in ast.walk(index) if isinstance(n, ast.Name)} & OPEN_ENDED)
        if facts:
            yield base.id, depth, ast.unparse(index)


def _numeric(node: ast.AST) -> bool:
    """A number-valued index: a name, or + - * of such (``admissions + 1``), or min/max of such."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.BinOp):
        return _numeric(node.left) or _numeric(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
        return False  # min(admission_no, 3) is bounded by the author on purpose
    return False
