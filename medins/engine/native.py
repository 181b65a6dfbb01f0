"""True/false policy conditions compiled to native Polars expressions, when that is exactly the same.

Why: most conditions of a policy only compare a claim's codes, flags and dates with literals —
``visit_type == 'inpatient'``, ``not coalesce(emergency, False)``, ``registered_date <= admit_date``.
Evaluating those once per distinct combination of values (``Run.ev``) costs a hash, a gather and a
Python call per combination; as a Polars expression they cost one pass at column speed. Polars
follows the language's three-valued logic for unknowns (``and``/``or``/``not`` are Kleene's, a
comparison or ``in`` with an unknown side is unknown), so the result is identical row for row.

Only a whitelist compiles: texts, true/false and dates (never amounts, whose units and exact
decimals the evaluator owns), literal lists of texts, ``coalesce`` of the same kind, and
``add_days(date, whole number)``. Anything else returns None and is evaluated as before, so a
condition is never given a second meaning. ``tests/engine/test_native.py`` checks both ways agree.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

import polars as pl

from medins.policy.expr import Expression

_KINDS = {pl.String: "str", pl.Boolean: "bool", pl.Date: "date"}
_COMPARE = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}


class _Unsupported(Exception):
    """The node is outside the whitelist: the condition is evaluated the usual way."""


def compile_condition(expr: Expression, schema: Mapping[str, pl.DataType],
                      constants: list[Mapping[str, object]]) -> pl.Expr | None:
    """A Polars Boolean expression equal to ``expr`` on every row, or None when there is none.

    ``schema``: the frame's columns; ``constants``: the parameters of each policy version (a
    parameter the condition reads must be the same in all of them).
    """
    try:
        out, kind = _Compiler(schema, constants).node(expr.tree.body)
    except _Unsupported:
        return None
    return out if kind == "bool" else None


class _Compiler:
    def __init__(self, schema: Mapping[str, pl.DataType], constants: list[Mapping[str, object]]) -> None:
        self.schema, self.constants = schema, constants

    def node(self, node: ast.AST) -> tuple[pl.Expr, str]:
        """The expression and its kind (``str``, ``bool``, ``date``, ``strs`` for a list of texts)."""
        if isinstance(node, ast.Constant):
            return _literal(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BoolOp):
            parts = [self.boolean(v) for v in node.values]
            out = parts[0]
            for part in parts[1:]:
                out = (out & part) if isinstance(node.op, ast.And) else (out | part)
            return out, "bool"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~self.boolean(node.operand), "bool"
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            return self.compare(node.ops[0], node.left, node.comparators[0]), "bool"
        if isinstance(node, (ast.Tuple, ast.List)):
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(values) != len(node.elts) or not all(isinstance(v, str) for v in values):
                raise _Unsupported
            return pl.lit(pl.Series(values, dtype=pl.String)), "strs"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.call(node.func.id, node.args)
        raise _Unsupported

    def boolean(self, node: ast.AST) -> pl.Expr:
        out, kind = self.node(node)
        if kind != "bool":
            raise _Unsupported  # the evaluator reports "expected true/false"
        return out

    def name(self, name: str) -> tuple[pl.Expr, str]:
        if name in self.schema:
            dtype = self.schema[name]
            kind = _KINDS.get(dtype if isinstance(dtype, type) else type(dtype))
            if kind is None:
                raise _Unsupported
            return pl.col(name), kind
        values = [c.get(name, _Unsupported) for c in self.constants]
        if not values or any(v is _Unsupported or v != values[0] for v in values):
            raise _Unsupported  # not a column, or a parameter that differs between versions
        return _literal(values[0])

    def compare(self, op: ast.cmpop, left_node: ast.AST, right_node: ast.AST) -> pl.Expr:
        left, left_kind = self.node(left_node)
        right, right_kind = self.node(right_node)
        if isinstance(op, (ast.In, ast.NotIn)):
            if left_kind != "str" or right_kind != "strs":
                raise _Unsupported
            hit = pl.when(left.is_null()).then(None).otherwise(left.is_in(right.implode()))
            return hit if isinstance(op, ast.In) else ~hit
        kind = _COMPARE.get(type(op))
        if kind is None or left_kind != right_kind or left_kind == "strs":
            raise _Unsupported
        if left_kind != "date" and kind not in ("eq", "ne"):
            raise _Unsupported  # texts and true/false are only compared for (in)equality here
        return getattr(left, kind)(right)

    def call(self, name: str, args: list[ast.AST]) -> tuple[pl.Expr, str]:
        if name == "coalesce" and args:
            parts = [self.node(a) for a in args]
            kinds = {k for _e, k in parts}
            if len(kinds) != 1 or kinds == {"strs"}:
                raise _Unsupported
            return pl.coalesce([e for e, _k in parts]), kinds.pop()
        if name == "add_days" and len(args) == 2:
            day, kind = self.node(args[0])
            days = self.whole_number(args[1])
            if kind != "date":
                raise _Unsupported
            return day + pl.duration(days=days), "date"
        if name == "is_known" and len(args) == 1:
            value, _kind = self.node(args[0])
            return value.is_not_null(), "bool"
        raise _Unsupported  # percentages, min/max and calendar functions: the evaluator's

    def whole_number(self, node: ast.AST) -> int:
        """A constant whole number (a literal or a parameter the same in every version)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name) and node.id not in self.schema:
            values = [c.get(node.id) for c in self.constants]
            first = values[0] if values else None
            if (isinstance(first, (int, Decimal)) and not isinstance(first, bool) and first == int(first)
                    and all(v == first for v in values)):
                return int(first)
        raise _Unsupported


def _literal(value: object) -> tuple[pl.Expr, str]:
    if isinstance(value, bool):
        return pl.lit(value, pl.Boolean), "bool"
    if isinstance(value, str):
        return pl.lit(value, pl.String), "str"
    if isinstance(value, date):
        return pl.lit(value, pl.Date), "date"
    raise _Unsupported  # numbers (exact decimals), None, tables: the evaluator's
