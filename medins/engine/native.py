"""Policy expressions compiled to native Polars expressions, when that is exactly the same.

Why: ``Run.ev`` evaluates an expression in Python (exact ``Decimal`` arithmetic) once per distinct
combination of the values it reads, then gathers the results back onto the rows: a hash, a gather
and a Python call per combination. Compiled to a Polars expression, the same expression costs one
pass at column speed, and a calendar condition over two independent dates (hundreds of thousands of
combinations in a year of claims) no longer costs seconds.

Exactness, and how it is kept:

* Numbers are integers with a fixed scale (``1.25`` is 125 at scale 2): money columns enter as
  fen at scale 2, other whole-number columns at scale 0, literals and parameters at the scale of
  their digits. ``+ - *``, ``min``/``max``/``abs``, comparisons and table look-ups are exact on
  such integers; a division is exact only where it leaves no remainder at scale
  :data:`DIV_SCALE`, and half-up rounding to fen or millionths is done on the integers, at the
  same point as ``context._convert``.
* Unknowns follow the language: arithmetic, comparisons and functions of an unknown give unknown
  (Polars' nulls do, and ``min``/``max``/``if`` are guarded explicitly), ``and``/``or``/``not``
  are Kleene's, as in Polars.
* Every row where the native form could differ from the evaluator, or where the evaluator raises,
  is *troubled* (:attr:`Native.trouble`): a division with a remainder, a number that could
  overflow 64 bits, a negative amount, a rate outside 0–100 %, a table key with no entry or a
  missing entry, a date outside the calendar. Those rows are handed to the evaluator, which gives
  the value or the exact reason it always gave. Native values are thus only ever used where they
  equal the evaluator's.
* Anything outside the whitelist (kinds that the evaluator would refuse or compare differently,
  ``in`` a table, functions of two unknown dates' calendars …) returns None, and the expression is
  evaluated as before, so no expression is ever given a second meaning.

``tests/engine/test_native.py`` checks on random values that both agree, unknowns, negative and
boundary values included.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal, localcontext
from functools import lru_cache, reduce

import polars as pl

from medins.policy.expr import Expression, MissingEntry

_KINDS = {pl.String: "str", pl.Boolean: "bool", pl.Date: "date"}
_INTS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)
_COMPARE = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}
_OPEN_KEY = re.compile(r"^(\d+)\+$")
_DIGITS = re.compile(r"^-?\d+$")

#: Largest magnitude a scaled integer may reach before a row is handed to the evaluator (< 2**63).
LIMIT = 10**18
#: Scale of a quotient: a division exact at this many decimals is done natively, otherwise by the evaluator.
DIV_SCALE = 8  # an amount of up to 10**9 fen divided by a two-decimal number stays below LIMIT
#: Largest scale kept natively (10**18 fits 64 bits).
MAX_SCALE = 18
#: Scale of each result kind ``Run.ev`` returns as integers (fen, millionths, whole numbers).
OUT_SCALE = {"money": 2, "rate": 6, "int": 0}


#: Up to this many texts, ``text in (...)`` is that many comparisons: a hashed ``is_in`` of texts cost 2.2 ms on
#: 250k claims whatever the list's length, a comparison 0.5 ms.
COMPARED_TEXTS = 4


def is_one_of(text: pl.Expr, texts: Sequence[str]) -> pl.Expr:
    """``text.is_in(texts)`` (null where ``text`` is: each comparison is), by comparisons up to
    :data:`COMPARED_TEXTS` distinct texts."""
    distinct = list(dict.fromkeys(texts))
    if not 0 < len(distinct) <= COMPARED_TEXTS:
        return text.is_in(distinct)
    return reduce(lambda a, b: a | b, [text == value for value in distinct])


class _Unsupported(Exception):
    """The node is outside the whitelist: the expression is evaluated the usual way."""


class Native:
    """A compiled expression: ``value`` in ``Run.ev``'s units, and the rows the evaluator must do.

    ``trouble`` (None: no row ever) is true on rows where the evaluator must give the value or the
    reason; ``value`` is meaningless there. Elsewhere ``value`` equals the evaluator's, null included.

    A plain slotted class, not a dataclass: its fields are Polars expressions (``==`` on them builds an
    expression, so a dataclass's generated ``__eq__``/``__hash__`` mean nothing here), and generating a frozen
    dataclass's six methods at import cost every ``medins calc`` ~0.7 ms (~1.5 ms for this class and ``_N``).
    """

    __slots__ = ("trouble", "value")

    def __init__(self, value: pl.Expr, trouble: pl.Expr | None) -> None:
        self.value, self.trouble = value, trouble


class _N:
    """A compiled node: expression, kind, scale (numbers), bound on |value| (None: unknown), trouble.

    ``kind``: str, bool, date, num, strs (literal list of texts), table (a parameter's entries), list.
    ``choices``: the scaled values a number can take, when a handful known in advance (constants, if/else of them).
    ``texts``: a literal list of texts' own texts (``strs``).
    A plain slotted class for the reason :class:`Native` is one.
    """

    __slots__ = ("bad", "bound", "choices", "expr", "kind", "scale", "table", "texts")

    def __init__(self, expr: pl.Expr, kind: str, scale: int = 0, bound: int | None = 0, bad: pl.Expr | None = None,
                 table: Mapping | None = None, choices: frozenset[int] | None = None,
                 texts: tuple[str, ...] | None = None) -> None:
        self.expr, self.kind, self.scale, self.bound, self.bad, self.table, self.choices, self.texts = (
            expr, kind, scale, bound, bad, table, choices, texts)


def compile_expression(expr: Expression, returns: str, schema: Mapping[str, pl.DataType],
                       constants: list[Mapping[str, object]], money: Callable[[str], bool]) -> Native | None:
    """The native form of ``expr`` as ``Run.ev`` returns it (fen, millionths, …), or None when there is none.

    ``schema``: the frame's columns; ``constants``: the parameters of each policy version (a parameter
    the expression reads must be the same in all of them); ``money``: whether a column holds fen.
    """
    try:
        node = _Compiler(schema, constants, money, expr.source).node(expr.tree.body)
        out = _output(node, returns)
    except _Unsupported:
        return None
    trouble = None if out.trouble is None else out.trouble.fill_null(True)  # an undecided row: the evaluator's
    return Native(out.value, trouble)


def compile_condition(expr: Expression, schema: Mapping[str, pl.DataType],
                      constants: list[Mapping[str, object]],
                      money: Callable[[str], bool] = lambda _name: False) -> pl.Expr | None:
    """A Polars Boolean expression equal to ``expr`` on every row, or None when there is none (or some
    row could need the evaluator)."""
    native = compile_expression(expr, "bool", schema, constants, money)
    if native is None or native.trouble is not None:
        return None
    return native.value


def _output(node: _N, returns: str) -> Native:
    """The node converted as ``context._convert`` converts an evaluated value."""
    if returns in OUT_SCALE:
        if node.kind != "num":
            raise _Unsupported  # the evaluator says "expected an amount"
        bad = node.bad
        if returns == "money":
            bad = _or(bad, (node.expr < 0).fill_null(False))  # refused with the evaluator's message
        elif returns == "rate":
            bad = _or(bad, ((node.expr < 0) | (node.expr > 10**node.scale)).fill_null(False))
        out = _to_scale(node, OUT_SCALE[returns], truncate=returns == "int")
        return Native(out.expr.cast(pl.Int64), _or(bad, out.bad))
    if node.kind != returns:
        raise _Unsupported
    return Native(node.expr, node.bad)


def _or(*parts: pl.Expr | None) -> pl.Expr | None:
    known = [p for p in parts if p is not None]
    return reduce(lambda a, b: a | b, known) if known else None


def _big(node: _N, limit: int) -> pl.Expr | None:
    """Rows where ``node`` may exceed ``limit`` in magnitude (None when its bound says never)."""
    if node.bound is not None and node.bound <= limit:
        return None
    return (node.expr.cast(pl.Float64).abs() > float(limit)).fill_null(False)


def _rescale(node: _N, scale: int) -> _N:
    """The same number at a larger scale."""
    k = scale - node.scale
    if k == 0:
        return node
    if k < 0 or scale > MAX_SCALE:
        raise _Unsupported
    factor = 10**k
    bound = None if node.bound is None else node.bound * factor
    choices = None if node.choices is None else frozenset(c * factor for c in node.choices)
    return _N(node.expr * factor, "num", scale, bound, _or(node.bad, _big(node, LIMIT // factor)), choices=choices)


def _to_scale(node: _N, scale: int, *, truncate: bool) -> _N:
    """``node`` at ``scale``: exact when larger, else rounded half-up (or truncated toward zero, as ``int()``)."""
    if node.scale <= scale:
        return _rescale(node, scale)
    d = 10 ** (node.scale - scale)
    x = node.expr
    if truncate:
        out = pl.when(x >= 0).then(x // d).otherwise(-((-x) // d))
    else:  # half-up, away from zero at the half (negative amounts and rates are troubled before)
        out = pl.when(x >= 0).then((x + d // 2) // d).otherwise(-((-x + d // 2) // d))
    bound = None if node.bound is None else node.bound // d + 1
    choices = None
    if node.choices is not None:
        if truncate:
            choices = frozenset(c // d if c >= 0 else -((-c) // d) for c in node.choices)
        else:
            choices = frozenset((c + d // 2) // d if c >= 0 else -((-c + d // 2) // d) for c in node.choices)
    return _N(out, "num", scale, bound, _or(node.bad, _big(node, LIMIT)), choices=choices)


def _align(nodes: list[_N]) -> list[_N]:
    scale = max(n.scale for n in nodes)
    return [_rescale(n, scale) for n in nodes]


def _number(value: Decimal) -> _N:
    if not value.is_finite():
        raise _Unsupported
    exponent = value.as_tuple().exponent
    scale = max(0, -exponent)  # type: ignore[operator]
    if scale > MAX_SCALE:
        raise _Unsupported
    scaled = int(value.scaleb(scale))
    if abs(scaled) > LIMIT:
        raise _Unsupported
    return _N(pl.lit(scaled, pl.Int64), "num", scale, abs(scaled), choices=frozenset([scaled]))


def _literal(value: object) -> _N:
    if isinstance(value, bool):
        return _N(pl.lit(value, pl.Boolean), "bool")
    if isinstance(value, str):
        return _N(pl.lit(value, pl.String), "str")
    if isinstance(value, date):
        return _N(pl.lit(value, pl.Date), "date")
    if isinstance(value, int):
        return _number(Decimal(value))
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, dict):
        return _N(pl.lit(None), "table", table=value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return _N(pl.lit(pl.Series(value, dtype=pl.String)), "strs", texts=tuple(value))
    raise _Unsupported  # None, missing entries, other values: the evaluator's


def _null_if_any(nodes: list[_N], out: pl.Expr) -> pl.Expr:
    """``out``, unknown where any of ``nodes`` is (``min``/``max``/calendar functions of an unknown)."""
    return pl.when(pl.any_horizontal([n.expr.is_null() for n in nodes])).then(None).otherwise(out)


class _Compiler:
    def __init__(self, schema: Mapping[str, pl.DataType], constants: list[Mapping[str, object]],
                 money: Callable[[str], bool], source: str) -> None:
        self.schema, self.constants, self.money, self.source = schema, constants, money, source

    def node(self, node: ast.AST) -> _N:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
                segment = ast.get_source_segment(self.source, node) or str(node.value)
                return _number(Decimal(segment.replace("_", "")))  # read from its text, as the evaluator does
            return _literal(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BoolOp):
            parts = [self.boolean(v) for v in node.values]
            out = reduce((lambda a, b: a & b) if isinstance(node.op, ast.And) else (lambda a, b: a | b),
                         [p.expr for p in parts])
            return _N(out, "bool", bad=_or(*(p.bad for p in parts)))
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            return self.if_else(node)
        if isinstance(node, ast.Subscript):
            return self.lookup(self.node(node.value), self.node(node.slice))
        if isinstance(node, (ast.Tuple, ast.List)):
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(values) != len(node.elts) or not all(isinstance(v, str) for v in values):
                raise _Unsupported
            return _literal(values)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.call(node.func.id, node.args)
        raise _Unsupported

    def boolean(self, node: ast.AST) -> _N:
        out = self.node(node)
        if out.kind != "bool":
            raise _Unsupported  # the evaluator reports "expected true/false"
        return out

    def number(self, node: ast.AST) -> _N:
        out = self.node(node)
        if out.kind != "num":
            raise _Unsupported  # the evaluator reports "needs numbers"
        return out

    def name(self, name: str) -> _N:
        if name in self.schema:
            dtype = self.schema[name]
            base = dtype if isinstance(dtype, type) else type(dtype)
            if base in _INTS:
                return _N(pl.col(name).cast(pl.Int64), "num", 2 if self.money(name) else 0, None)
            if base is pl.List and dtype.inner == pl.String:  # type: ignore[union-attr]
                return _N(pl.col(name), "list")  # codes given as a list (diagnoses): only ``in`` reads it
            kind = _KINDS.get(base)
            if kind is None:
                raise _Unsupported
            return _N(pl.col(name), kind)
        values = [c.get(name, _Unsupported) for c in self.constants]
        if not values or any(v is _Unsupported or v != values[0] or type(v) is not type(values[0]) for v in values):
            raise _Unsupported  # not a column, or a parameter that differs between versions
        return _literal(values[0])

    def unary(self, node: ast.UnaryOp) -> _N:
        if isinstance(node.op, ast.Not):
            operand = self.boolean(node.operand)
            return _N(~operand.expr, "bool", bad=operand.bad)
        operand = self.number(node.operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        return _N(-operand.expr, "num", operand.scale, operand.bound, _or(operand.bad, _big(operand, LIMIT)))

    def binary(self, node: ast.BinOp) -> _N:
        left, right = self.number(node.left), self.number(node.right)
        guard = _or(left.bad, right.bad)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            left, right = _align([left, right])
            guard = _or(left.bad, right.bad, _big(left, LIMIT), _big(right, LIMIT))
            bound = None if left.bound is None or right.bound is None else left.bound + right.bound
            out = left.expr + right.expr if isinstance(node.op, ast.Add) else left.expr - right.expr
            return _N(out, "num", left.scale, bound, guard)
        if isinstance(node.op, ast.Mult):
            scale = left.scale + right.scale
            if scale > MAX_SCALE:
                raise _Unsupported
            bound = None if left.bound is None or right.bound is None else left.bound * right.bound
            if bound is None or bound > LIMIT:
                estimate = left.expr.cast(pl.Float64).abs() * right.expr.cast(pl.Float64).abs()
                guard = _or(guard, (estimate > float(LIMIT)).fill_null(False))
            return _N(left.expr * right.expr, "num", scale, bound, guard)
        if isinstance(node.op, ast.Div):
            # q = left / right at DIV_SCALE: numerator left * 10**(DIV_SCALE - left.scale + right.scale)
            shift = DIV_SCALE - left.scale + right.scale
            if shift < 0 or shift > MAX_SCALE:
                raise _Unsupported
            top = _rescale(_N(left.expr, "num", 0, left.bound, left.bad), shift)
            q = top.expr // right.expr
            rest = top.expr % right.expr
            inexact = (right.expr.eq(0) | rest.ne(0)).fill_null(False)  # division by zero, or a remainder: the evaluator's
            guard = _or(guard, top.bad, inexact)
            return _N(pl.when(right.expr.eq(0)).then(None).otherwise(q), "num", DIV_SCALE,
                      top.bound, guard)
        raise _Unsupported

    def compare(self, node: ast.Compare) -> _N:
        left = self.node(node.left)
        parts: list[_N] = []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.node(comparator)
            parts.append(self.compare_one(op, left, right))
            left = right
        return _N(reduce(lambda a, b: a & b, [p.expr for p in parts]), "bool", bad=_or(*(p.bad for p in parts)))

    def compare_one(self, op: ast.cmpop, left: _N, right: _N) -> _N:
        bad = _or(left.bad, right.bad)
        if isinstance(op, (ast.In, ast.NotIn)):
            if left.kind == "str" and right.kind == "strs" and right.texts:
                hit = is_one_of(left.expr, right.texts)
            elif left.kind == "str" and right.kind == "strs":
                hit = pl.when(left.expr.is_null()).then(None).otherwise(left.expr.is_in(right.expr.implode()))
            elif left.kind == "str" and right.kind == "list":
                hit = pl.when(left.expr.is_null()).then(None).otherwise(right.expr.list.contains(left.expr))
                # the evaluator also finds the text 'None' where the list has an unknown code: its own
                bad = _or(bad, left.expr.eq("None").fill_null(False))
            else:
                raise _Unsupported
            return _N(hit if isinstance(op, ast.In) else ~hit, "bool", bad=bad)
        kind = _COMPARE.get(type(op))
        if kind is None or left.kind != right.kind or left.kind not in ("num", "str", "date", "bool"):
            raise _Unsupported
        if left.kind in ("str", "bool") and kind not in ("eq", "ne"):
            raise _Unsupported  # texts and true/false are only compared for (in)equality here
        if left.kind == "num":
            left, right = _align([left, right])
            bad = _or(left.bad, right.bad)
        return _N(getattr(left.expr, kind)(right.expr), "bool", bad=bad)

    def if_else(self, node: ast.IfExp) -> _N:
        test = self.boolean(node.test)
        body, orelse = self.same_kind([self.node(node.body), self.node(node.orelse)])
        out = pl.when(test.expr.is_null()).then(None).when(test.expr).then(body.expr).otherwise(orelse.expr)
        bad = None
        if body.bad is not None or orelse.bad is not None:  # only the branch taken is evaluated
            bad = (pl.when(test.expr.is_null()).then(False).when(test.expr)
                   .then(body.bad if body.bad is not None else False)
                   .otherwise(orelse.bad if orelse.bad is not None else False)).fill_null(False)
        bound = None if body.bound is None or orelse.bound is None else max(body.bound, orelse.bound)
        choices = None if body.choices is None or orelse.choices is None else body.choices | orelse.choices
        return _N(out, body.kind, body.scale, bound, _or(test.bad, bad), choices=choices)

    def same_kind(self, nodes: list[_N]) -> list[_N]:
        kinds = {n.kind for n in nodes}
        if len(kinds) != 1 or kinds & {"strs", "table", "list"}:
            raise _Unsupported
        return _align(nodes) if kinds == {"num"} else nodes

    def lookup(self, table: _N, key: _N) -> _N:
        """``table[key]``: the entry, an open ``N+`` key for later whole numbers; no entry: the evaluator's."""
        if table.kind != "table" or table.table is None:
            raise _Unsupported
        entries = table.table
        if key.kind == "str":
            order = [(k, v) for k, v in entries.items() if isinstance(k, str)]  # a text is found by text only
            return self.entry(key.expr, order, key)
        if key.kind != "num":
            raise _Unsupported
        exact: dict[int, object] = {}
        opens: list[tuple[int, object]] = []
        for k, v in entries.items():
            if isinstance(k, int) and not isinstance(k, bool):
                exact[k] = v
            elif isinstance(k, str) and (m := _OPEN_KEY.match(k)):
                opens.append((int(m.group(1)), v))
            elif not (isinstance(k, str) and _DIGITS.match(k) and str(int(k)) == k):
                raise _Unsupported  # keys the evaluator would match by text: its own
        for k, v in entries.items():  # "5" is found after 5, as the evaluator tries int before text
            if isinstance(k, str) and _DIGITS.match(k):
                exact.setdefault(int(k), v)
        d = 10**key.scale
        whole = key.expr // d
        integral = key.expr % d == 0
        order = [*exact.items(), *sorted(opens, key=lambda kv: -kv[0])]
        chain = None
        for i, (k, _v) in enumerate(order):
            cond = whole.eq(k) if i < len(exact) else whole >= k
            chain = pl.when(cond).then(pl.lit(i, pl.Int64)) if chain is None else chain.when(cond).then(pl.lit(i, pl.Int64))
        index = pl.lit(None, pl.Int64) if chain is None else chain.otherwise(None)
        index = pl.when(integral).then(index).otherwise(None)
        return self.entry(index, list(enumerate(v for _k, v in order)), key)

    def entry(self, index: pl.Expr, entries: list[tuple[object, object]], key: _N) -> _N:
        """The value of the entry whose name ``index`` gives (unknown key: unknown; no entry or a missing
        one: troubled, for the evaluator to name)."""
        usable = [(k, v) for k, v in entries if not isinstance(v, MissingEntry)]
        nodes = [_literal(v) for _k, v in usable]
        if not nodes:
            raise _Unsupported
        nodes = self.same_kind(nodes)
        kind = nodes[0].kind
        if kind not in ("num", "str", "bool", "date"):
            raise _Unsupported
        dtype = {"num": pl.Int64, "str": pl.String, "bool": pl.Boolean, "date": pl.Date}[kind]
        raw = [_raw(n, v) for n, (_k, v) in zip(nodes, usable, strict=True)]
        names = [k for k, _v in usable]
        out = index.replace_strict(names, pl.Series(raw, dtype=dtype), default=None, return_dtype=dtype)
        missing = (key.expr.is_not_null() & ~index.is_in(names).fill_null(False))  # no entry / missing
        bound = max(n.bound or 0 for n in nodes) if kind == "num" else 0
        return _N(out, kind, nodes[0].scale, bound, _or(key.bad, missing))

    def call(self, name: str, args: list[ast.AST]) -> _N:
        if name == "__pct__" and len(args) == 1 and isinstance(args[0], ast.Constant):
            with localcontext() as ctx:
                ctx.prec = 60
                return _number(Decimal(str(args[0].value)) / 100)
        if name == "coalesce" and args:
            parts = self.same_kind([self.node(a) for a in args])
            bounds = [p.bound for p in parts]
            bound = None if any(b is None for b in bounds) else max(bounds)  # type: ignore[type-var]
            return _N(pl.coalesce([p.expr for p in parts]), parts[0].kind, parts[0].scale, bound,
                      _or(*(p.bad for p in parts)))
        if name == "is_known" and len(args) == 1:
            value = self.node(args[0])
            if value.kind in ("strs", "table"):  # a list column is known when given, even empty
                raise _Unsupported
            return _N(value.expr.is_not_null(), "bool", bad=value.bad)
        if name in ("min", "max") and len(args) >= 2:
            parts = self.same_kind([self.node(a) for a in args])
            if parts[0].kind not in ("num", "date"):
                raise _Unsupported
            pick = pl.min_horizontal if name == "min" else pl.max_horizontal
            bounds = [p.bound for p in parts]
            bound = None if any(b is None for b in bounds) else max(bounds)  # type: ignore[type-var]
            return _N(_null_if_any(parts, pick([p.expr for p in parts])), parts[0].kind, parts[0].scale, bound,
                      _or(*(p.bad for p in parts)))
        if name == "abs" and len(args) == 1:
            value = self.number(args[0])
            return _N(value.expr.abs(), "num", value.scale, value.bound, _or(value.bad, _big(value, LIMIT)))
        if name in ("year", "month_start", "next_month_start") and len(args) == 1:
            day = self.date(args[0])
            if name == "year":
                return _N(day.expr.dt.year().cast(pl.Int64), "num", 0, 9999, day.bad)
            if name == "month_start":
                return _N(day.expr.dt.month_start(), "date", bad=day.bad)
            return _add_months(_N(day.expr.dt.month_start(), "date", bad=day.bad), _N(pl.lit(1), "num", 0, 1))
        if name == "age_on" and len(args) == 2:
            birth, on = self.date(args[0]), self.date(args[1])
            later = (on.expr.dt.month().cast(pl.Int64) * 100 + on.expr.dt.day()) < (
                birth.expr.dt.month().cast(pl.Int64) * 100 + birth.expr.dt.day())
            years = on.expr.dt.year().cast(pl.Int64) - birth.expr.dt.year().cast(pl.Int64) - later.cast(pl.Int64)
            return _N(years, "num", 0, 10**4, _or(birth.bad, on.bad))
        if name == "add_days" and len(args) == 2:
            day, n = self.date(args[0]), self.whole_number(args[1])
            if abs(n) > 31 * MAX_MONTHS:
                raise _Unsupported  # certainly beyond Python's years: the evaluator says so
            if not n:
                return day
            # On day numbers (a date's Polars value): the same dates as adding a duration, which converts every
            # row through the calendar (~2.5 ms on 250k claims, the sum of day numbers ~0.4 ms). A day within
            # Python's years plus ``n`` stays far inside 32 bits; a sum that wraps starts from a day beyond them,
            # and lands beyond them too (handed back either way).
            number = day.expr.cast(pl.Int32) + pl.lit(n, pl.Int32)
            return _N(number.cast(pl.Date), "date", bad=_or(day.bad, _outside_day_numbers(number).fill_null(False)))
        if name == "add_months" and len(args) == 2:
            return _add_months(self.date(args[0]), self.number(args[1]))
        if name == "workday_add" and len(args) == 2:
            return _workday_add(self.date(args[0]), self.whole_number(args[1]))
        raise _Unsupported

    def date(self, node: ast.AST) -> _N:
        out = self.node(node)
        if out.kind != "date":
            raise _Unsupported
        return out

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


def _raw(node: _N, value: object) -> object:
    """The scaled integer (numbers) or the value itself, for a look-up column."""
    if node.kind != "num":
        return value
    with localcontext() as ctx:
        ctx.prec = 60
        return int(Decimal(value).scaleb(node.scale))  # type: ignore[arg-type]


def _outside_calendar_years(day: pl.Expr) -> pl.Expr:
    """Rows whose date lies beyond Python's calendar (years 1–9999): the evaluator raises there.

    Compared as day numbers (dates are in order of their day numbers, so a year outside 1–9999 is a day before
    0001-01-01 or after 9999-12-31): the same rows as ``dt.year()`` outside 1–9999 for a tenth of its cost (a
    calendar conversion a row, ~3 ms on 250k claims).
    """
    return _outside_day_numbers(day.cast(pl.Int32))


def _outside_day_numbers(number: pl.Expr) -> pl.Expr:
    """:func:`_outside_calendar_years` of dates given by their day numbers (Int32)."""
    return (number < _day_number(date(1, 1, 1))) | (number > _day_number(date(9999, 12, 31)))


def _add_months(day: _N, months: _N) -> _N:
    """``add_months``: the same day ``int(months)`` months later, or that month's last day.

    A handful of constant offsets (the usual case: parameters, ``if``/``else`` of them) are read from a
    day-by-day table (:func:`_shifted`), one gather per offset; otherwise Polars' calendar offset
    ``"<n>mo"``, which clamps to the month's last day exactly so, is used row by row.
    """
    if months.kind != "num":
        raise _Unsupported
    n = _to_scale(months, 0, truncate=True)
    if n.choices is not None and len(n.choices) <= 8:
        chain, bad = None, None
        for k in sorted(n.choices):
            shifted, outside = _read_table(day.expr, "months", k)
            chain = pl.when(n.expr == k).then(shifted) if chain is None else chain.when(n.expr == k).then(shifted)
            bad = _or(bad, (n.expr == k).fill_null(False) & outside)
        out = chain.otherwise(None)  # type: ignore[union-attr]
        return _N(out, "date", bad=_or(day.bad, n.bad, bad))
    far = (n.expr.cast(pl.Float64).abs() > MAX_MONTHS).fill_null(False)  # beyond years 1-9999: the evaluator's
    out = day.expr.dt.offset_by(pl.format("{}mo", pl.when(far).then(0).otherwise(n.expr)))
    return _N(out, "date", bad=_or(day.bad, n.bad, far, _outside_calendar_years(out).fill_null(False)))


#: Months beyond which ``add_months`` certainly leaves Python's years 1–9999 (kept from Polars' offsets).
MAX_MONTHS = 12 * 10_000


#: Days the calendar tables cover (``add_months`` by a constant); a date outside goes to the evaluator.
TABLE_FROM, TABLE_TO = date(1950, 1, 1), date(2100, 12, 31)


def _read_table(day: pl.Expr, kind: str, k: int) -> tuple[pl.Expr, pl.Expr]:
    """The table's entry for each date (``table[day - first]``), and the known dates it has none for.

    The table (:func:`_shifted`) is built in the query for the days from the frame's first to its last
    date within the covered ones (:func:`_table_span`), not for the whole span: a bill's one date costs
    one entry instead of 55,000 (~3 ms a table), a year of claims 365. A date outside the covered days
    has no entry, as before: the evaluator gives it.
    """
    first, last = _table_span(kind)
    number = day.cast(pl.Int32)  # days since 1970-01-01
    inside = (number >= _day_number(first)) & (number <= _day_number(last))  # null for an unknown date
    covered = pl.when(inside).then(number)
    low = covered.min().fill_null(_day_number(first))  # no covered date: a table of one day, never read
    high = covered.max().fill_null(_day_number(first))
    table = _shifted(kind, k, pl.int_range(low, high + 1, dtype=pl.Int32).cast(pl.Date))
    value = pl.when(inside).then(table.gather(pl.when(inside).then(number - low).otherwise(0)))
    # The rows of covered days without an entry, said by a comparison of the day where the table's empty entries
    # are known in advance (not by reading ``value`` again: the query's common parts do not share the table's
    # look-up, and that doubled the condition's cost).
    empty = _empty_from(kind, k)
    if empty is None:
        missing = value.is_null()
    elif empty is _NEVER:
        missing = pl.lit(False)
    else:
        missing = number >= empty
    return value, (day.is_not_null() & (~inside | missing)).fill_null(False)


#: :func:`_empty_from`'s answer for a table without an empty entry.
_NEVER = object()


def _empty_from(kind: str, k: int) -> object:
    """The first day number from which every covered day's entry of the table is empty (null), :data:`_NEVER` when
    no covered day's is, None when not known in advance (read the entry).

    ``add_months`` by an offset within :data:`_MONTHS_IN_YEARS` never leaves Python's years (no empty entry).
    ``workday_add`` by ``k`` > 0 has an entry while the k-th working day after the day is in the calendar: up to the
    day before the k-th working day from the calendar's end (a working day count only grows with the day).
    """
    if kind == "months":
        return _NEVER if _MONTHS_IN_YEARS[0] <= k <= _MONTHS_IN_YEARS[1] else None
    workdays = _workdays()
    if k <= 0:
        return None
    if k > workdays.len():
        return _day_number(_table_span(kind)[0])  # no day has k working days after it in the calendar
    return _day_number(workdays[workdays.len() - k])


def _table_span(kind: str) -> tuple[date, date]:
    """The first and last day a calendar table covers: :data:`TABLE_FROM`–:data:`TABLE_TO` for months,
    the official calendar's years (from the last day before them) for working days."""
    if kind == "months":
        return TABLE_FROM, TABLE_TO
    workdays = _workdays()
    return date(workdays[0].year, 1, 1) - timedelta(days=1), date(workdays[-1].year, 12, 31)


def _day_number(day: date) -> int:
    """Polars' physical value of a date: days since 1970-01-01."""
    return day.toordinal() - _EPOCH


def _shifted(kind: str, k: int, days: pl.Expr) -> pl.Expr:
    """``add_months(day, k)`` or ``workday_add(day, k)`` of each of ``days`` (dates in order, within
    :func:`_table_span`), or null where the result leaves Python's years (``add_months``) or the
    official calendar (``workday_add``): troubled.

    Why a table of days: Polars' calendar offsets and sorted searches cost 100+ ns a row; one gather from
    a table of the days costs a few (and the table is as long as the frame's span of dates, not its rows).
    """
    if kind == "months":
        shifted = days.dt.offset_by(f"{k}mo")
        if _MONTHS_IN_YEARS[0] <= k <= _MONTHS_IN_YEARS[1]:
            return shifted  # every result within years 1-9999: nothing to blank (saves two passes)
        year = shifted.dt.year()
        return pl.when((year <= 9999) & (year >= 1)).then(shifted)
    workdays = pl.lit(_workdays())
    position = workdays.search_sorted(days, side="right").cast(pl.Int64) + (k - 1)  # working days up to the day
    inside = position < _workdays().len()
    return pl.when(inside).then(workdays.gather(pl.when(inside).then(position).otherwise(0)))


def _shift_table(kind: str, k: int) -> tuple[date, pl.Series]:
    """The whole table of :func:`_shifted` over :func:`_table_span`, from its first day (for the tests)."""
    first, last = _table_span(kind)
    days = _days(first, last)
    return first, pl.select(_shifted(kind, k, pl.lit(days)).alias("table")).to_series()


#: Offsets in months that keep every day of the tables within Python's years 1-9999.
_MONTHS_IN_YEARS = (-(TABLE_FROM.year - 1) * 12, (9999 - TABLE_TO.year) * 12)


def _days(first: date, last: date) -> pl.Series:
    """Every day from ``first`` to ``last``: ``pl.date_range``'s values, built as day numbers cast to dates.

    Why: a date range is built by Polars' calendar code, whose first use in a process costs ~1.5 ms (``calc``
    builds two or three); days since 1970-01-01 counted by ``int_range`` are the same dates for a fraction.
    """
    return pl.int_range(first.toordinal() - _EPOCH, last.toordinal() - _EPOCH + 1, dtype=pl.Int32,
                        eager=True).cast(pl.Date)


#: ``date.toordinal()`` of 1970-01-01, day 0 of Polars' dates.
_EPOCH = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=1)
def _workdays() -> pl.Series:
    """Every official working day of the years the calendar covers, in order (``dates.workday_add``'s).

    Made from the calendar's tables (:func:`_calendar_workdays`) once per calendar: kept in the cache folder
    (``medins.policy.cache.load_table``) under the calendar's data file (its path, size and modification time) and
    medins' own code, so that a ``calc`` whose policy counts working days neither imports the calendar's tables
    nor walks them (~5 ms) — the same day numbers, read back as they were written.
    """
    from array import array

    from medins.policy import cache

    key = None if cache.cache_dir() is None else _calendar_key()  # no cache: no key to work out
    stored = None if key is None else cache.load_table("workdays", key)
    if stored is not None and len(stored) % 4 == 0:
        days = array("i")
        days.frombytes(stored)
        return pl.Series(days, dtype=pl.Int32).cast(pl.Date)
    days = array("i", _calendar_workdays())
    if key is not None:
        cache.store_table("workdays", key, days.tobytes())
    return pl.Series(days, dtype=pl.Int32).cast(pl.Date)


def _calendar_key() -> bytes | None:
    """What the working days depend on: the calendar's data file (path, size, modification time), medins' code and
    the machine's byte order; None when the calendar is not to be found (it is then imported, and says so)."""
    import hashlib
    import os
    import sys
    from importlib.util import find_spec

    from medins.policy.cache import code_fingerprint

    try:
        spec = find_spec("chinese_calendar")
        folder = os.path.dirname(spec.origin) if spec and spec.origin else None
        if folder is None:
            return None
        path = os.path.join(folder, "constants.py")
        info = os.stat(path)
    except (ImportError, ValueError, OSError):
        return None
    return hashlib.sha256(b"%s\0%s\0%d\0%d\0%s" % (code_fingerprint(), os.fsencode(path), info.st_size,
                                                     info.st_mtime_ns, sys.byteorder.encode())).digest()


def _calendar_workdays() -> list[int]:
    """The working days of :func:`_workdays` as day numbers, from the calendar's own tables.

    Built from them (weekdays less holidays, plus make-up days) as ``chinese_calendar.is_workday`` decides one day, on
    day numbers: ~8,000 days in a loop of integers (~1 ms) instead of the Python dates turned into Series and Polars'
    weekday and ``is_in`` kernels run for the first time in the process (~10 ms of a ``calc``); asking the calendar
    day by day takes seconds.
    """
    from chinese_calendar.constants import holidays, workdays

    if not holidays:
        return []
    first, last = min(holidays).year, max(holidays).year
    rest = {_day_number(d) for d in holidays}
    extra = {_day_number(d) for d in workdays}
    # day 0, 1970-01-01, was a Thursday: (n + 3) % 7 counts from Monday = 0 (Python's % is never negative)
    return [n for n in range(_day_number(date(first, 1, 1)), _day_number(date(last, 12, 31)) + 1)
            if n in extra or ((n + 3) % 7 < 5 and n not in rest)]


def _workday_add(day: _N, n: int) -> _N:
    """``workday_add``: the n-th working day after the date, read from a day-by-day table.

    A date whose count would step outside the covered years has no entry: the evaluator reports it.
    """
    if n <= 0:
        return day
    if _workdays().len() == 0:
        raise _Unsupported
    value, outside = _read_table(day.expr, "workdays", n)
    return _N(value, "date", bad=_or(day.bad, outside))
