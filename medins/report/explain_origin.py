"""Where a value of the explain trace came from: the parameter or table entry, the facts, the overrides.

Why: "deductible 280.00" is only checkable when the reader sees it is ``deductible_by_admission[2]``, that the
2 is the claim's ``admission_no`` and that the bill did not state it (it was ``history.admissions + 1``) — or
that the number was replaced by ``--set``. The expression is the policy's own text; each table lookup in it is
re-read on the claim's facts (the same facts the engine read, from the trace row), so the entry named is the
entry used. Nothing here decides an amount: the amounts stay the engine's.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from decimal import Decimal

from medins.engine.context import _to_env, parse
from medins.policy.expr import _OPEN_KEY, ExprEvalError
from medins.policy.plan import CompiledPolicy

#: Facts the engine derives (never read from the bill as such), with how.
DERIVED = {"service_date", "year", "stay_days", "admissions", "inscope", "eligible", "class_b_inscope", "total_items"}


def origin(policy: CompiledPolicy, row: Mapping, text: str | None, *, scale: str | None = None) -> dict | None:
    """``{expression, entries, facts, parameters}`` for the policy expression ``text`` on this claim, or None
    when it reads nothing (a bare number).

    ``entries``: each ``table[key]`` with the key it resolved to (an open key ``3+`` included) and the value;
    ``facts``: each claim fact read, its value and ``origin`` (``bill``, ``assumed``, ``counted``, ``birth_date``,
    ``derived``); ``parameters``: each parameter read, with ``override`` (the ``--set`` / ``--set-file`` text)
    when the value is not the policy's own.
    """
    if not text:
        return None
    expr = parse(text)
    params = policy.versions[row.get("_v") or 0].params
    constants = params.constants
    # a band rate expression reads ``rate``, the listed rate of the band (of the ``scale`` parameter)
    names = (expr.names - {"rate"}) | ({scale} if scale else set()) if scale is not None else expr.names
    if not names:
        return None
    env: dict[str, object] = dict(constants)
    for name in expr.names - set(constants):
        env[name] = _to_env(name, row.get(name))
    out: dict[str, object] = {"expression": text}
    entries = [e for node in _taken(expr, expr.tree.body, env) if (e := _entry(expr, node, env, constants)) is not None]
    if entries:
        out["entries"] = entries
    facts = [_fact(name, row) for name in sorted(names) if name not in constants and name not in params.scales]
    if facts:
        out["facts"] = facts
    parameters = [_parameter(policy, row, name) for name in sorted(names)
                  if name in constants or name in params.scales]
    if parameters:
        out["parameters"] = parameters
    return out


def scale_origin(policy: CompiledPolicy, row: Mapping, scale: str | None) -> dict | None:
    """The scale parameter of a rule's bands, with its override when ``--set`` / ``--set-file`` replaced it."""
    if not scale:
        return None
    return {"expression": scale, "parameters": [_parameter(policy, row, scale)]}


def _parameter(policy: CompiledPolicy, row: Mapping, name: str) -> dict:
    """A parameter read, with ``override``: its source when ``--set`` or ``--set-file`` replaced the policy's value
    (the compiled source differs from the one the policy file gives it, in its version or at the top)."""
    v = row.get("_v") or 0
    source = policy.versions[v].params.sources.get(name, "")
    model = policy.model
    spec = model.versions[v] if model.versions and v < len(model.versions) else None
    own = spec.parameters.get(name) if spec is not None else None
    own = own or model.parameters.get(name)
    item: dict[str, object] = {"name": name}
    if own is None or own.source != source:
        item["override"] = source
    return item


def _taken(expr, node: ast.AST, env: Mapping[str, object]):
    """The nodes of the expression the claim's facts reach: of ``a if cond else b`` only the branch taken (both
    when ``cond`` is unknown), so a table entry of the branch not taken is never named."""
    yield node
    if isinstance(node, ast.IfExp):
        try:
            cond = expr.part(node.test).evaluate(env)
        except (ExprEvalError, ArithmeticError, TypeError, ValueError):
            cond = None
        branches = [node.body] if cond is True else [node.orelse] if cond is False else [node.body, node.orelse]
        for child in [node.test, *branches]:
            yield from _taken(expr, child, env)
        return
    for child in ast.iter_child_nodes(node):
        yield from _taken(expr, child, env)


def _entry(expr, node: ast.AST, env: Mapping[str, object], constants: Mapping[str, object]) -> dict | None:
    """One ``table[key]`` of the expression: the key as the claim's facts give it and the entry it selects."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)):
        return None
    table = constants.get(node.value.id)
    if not isinstance(table, dict):
        return None
    key_expr = expr.part(node.slice)
    try:
        key = key_expr.evaluate(env)
    except (ExprEvalError, ArithmeticError, TypeError, ValueError):
        return None
    found = matched_key(table, key)
    item: dict[str, object] = {"table": node.value.id, "key_expression": key_expr.text, "key": _text(key)}
    if found is not None:
        item["entry"] = str(found)
        value = table[found]
        if not isinstance(value, dict):
            item["value"] = _text(value)
    return item


def matched_key(table: Mapping, key: object) -> object | None:
    """The key of ``table`` that ``key`` selects, as the expression language looks it up (an open last key
    ``N+`` holding N and every later whole number), or None."""
    if key is None:
        return None
    candidates: list[object] = [key]
    if isinstance(key, Decimal) and key == key.to_integral_value():
        candidates += [int(key), str(int(key))]
    candidates.append(str(key))
    for candidate in candidates:
        if candidate in table:
            return candidate
    if isinstance(key, Decimal) and key == key.to_integral_value():
        opens = [(int(m.group(1)), k) for k in table if (m := _OPEN_KEY.match(str(k)))]
        below = [(n, k) for n, k in opens if n <= key]
        if below:
            return max(below)[1]
    return None


def _fact(name: str, row: Mapping) -> dict:
    """A claim fact: its value and where it came from."""
    value = row.get(name)
    item: dict[str, object] = {"name": name, "value": _text(_to_env(name, value)) if value is not None else None}
    assumed = {code.split("=", 1)[0] for code in (row.get("assumed") or [])}
    if name in assumed:
        item["origin"] = "assumed"
    elif name == "admission_no" and not row.get("_tr_admission_no_given"):
        item["origin"] = "counted"
        item["admissions_before"] = row.get("admissions")
    elif name == "age" and row.get("_tr_age_born") is not None:
        item["origin"] = "birth_date"
        item["birth_date"] = str(row.get("birth_date"))
        item["on"] = str(row.get("service_date"))
    elif name in DERIVED:
        item["origin"] = "derived"
    elif value is None:
        item["origin"] = "absent"
    else:
        item["origin"] = "bill"
    return item


def _text(value: object) -> str | None:
    """A value as plain text: Decimal without exponent, True/False lower-case, None as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    return str(value)
