"""A small, safe expression language for policies — parsed, never ``eval``-ed.

Why: rates, deductibles and admissibility conditions depend on the claim ("the deductible of the
hospital's zone", "registered within 3 days of an emergency admission"). Writing them as short
expressions keeps a policy readable and diff-able; parsing them with :mod:`ast` against a whitelist
keeps a policy file from ever running code. Numbers are exact :class:`~decimal.Decimal` (``55%`` is
``Decimal("0.55")``), and ``None`` means *unknown*: arithmetic and comparisons with it give
unknown, ``and``/``or``/``not`` follow Kleene's three-valued logic, so a rule about a fact the bill
does not give is neither true nor false — it is reported as unchecked.

Grammar: literals (numbers, ``55%``, 'text', True, False, None), names, ``table[key]``,
``+ - * /``, unary ``-``, comparisons (chained, ``in``, ``not in``), ``and or not``,
``a if cond else b``, tuples/lists of literals, and the functions in :data:`FUNCTIONS`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Collection, Mapping
from datetime import date
from decimal import Decimal, localcontext

from medins import dates
from medins.errors import close_names


class ExprError(ValueError):
    """The expression text is not valid (syntax, a forbidden construct, an unknown name or function)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class ExprEvalError(ValueError):
    """The expression cannot be evaluated for these values (unknown table key, division by zero, types)."""


class MissingEntry:
    """A table entry the source does not give (``{missing: true}``): reading it stops the claim.

    ``name`` is the parameter and entry as ``--set`` spells it, e.g. ``rate_by_category.in_service``.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"MissingEntry({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MissingEntry) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class MissingEntryError(ExprEvalError):
    """An expression read a table entry marked missing: the claim needs ``--set <name>=VALUE``."""

    def __init__(self, name: str) -> None:
        super().__init__(f"table entry {name} is missing")
        self.name = name


_OPEN_KEY = re.compile(r"^(\d+)\+$")


def _none_guard(fn: Callable) -> Callable:
    def wrapped(*args):
        if any(a is None for a in args):
            return None
        return fn(*args)

    return wrapped


def _coalesce(*args):
    return next((a for a in args if a is not None), None)


FUNCTIONS: dict[str, Callable] = {
    "min": _none_guard(lambda *a: min(a)),
    "max": _none_guard(lambda *a: max(a)),
    "abs": _none_guard(abs),
    "coalesce": _coalesce,
    "is_known": lambda x: x is not None,
    "add_days": _none_guard(lambda d, n: dates.add_days(d, int(n))),
    "add_months": _none_guard(lambda d, n: dates.add_months(d, int(n))),
    "workday_add": _none_guard(lambda d, n: dates.workday_add(d, int(n))),
    "month_start": _none_guard(dates.month_start),
    "next_month_start": _none_guard(dates.next_month_start),
    "year": _none_guard(lambda d: Decimal(d.year)),
    "age_on": _none_guard(lambda b, on: Decimal(dates.age_on(b, on))),
}

_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*%(?!\s*[\w(.])")
_CMP = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
}
_ARITH = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def _k_and(values: list[object]) -> object:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _k_or(values: list[object]) -> object:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


class Expression:
    """A parsed expression. ``names`` are the free variables it reads (table parameters included)."""

    def __init__(self, text: str, tree: ast.Expression, source: str, names: frozenset[str]) -> None:
        self.text, self._tree, self._source, self.names = text, tree, source, names

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    @classmethod
    def parse(cls, text: str, *, known_names: Collection[str] | None = None) -> Expression:
        source = _PERCENT.sub(lambda m: f"__pct__({m.group(1)!r})", " ".join(text.split()))
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise ExprError(f"syntax error in {text!r}: {exc.msg}", (exc.offset or 1) - 1) from None
        for node in ast.walk(tree):
            _check_node(node, text)
        names = set(_free_names(tree))
        if known_names is not None:
            for name in sorted(names - set(known_names)):
                close = close_names(name, known_names, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ExprError(f"unknown name {name!r}{hint}", text.find(name))
        return cls(text, tree, source, frozenset(names))

    @property
    def tree(self) -> ast.Expression:
        return self._tree

    @property
    def source(self) -> str:
        """The text as parsed (percentages rewritten): numbers are read from it (``engine/native.py`` too)."""
        return self._source

    def part(self, node: ast.AST) -> Expression:
        """A sub-expression of this one (a node of its tree) as an expression of its own."""
        names = frozenset(_free_names(node))
        text = ast.get_source_segment(self._source, node) or ast.unparse(node)
        return Expression(text, ast.Expression(body=node), self._source, names)

    def evaluate(self, env: Mapping[str, object]) -> object:
        with localcontext() as ctx:
            ctx.prec = 60
            return _eval(self._tree.body, env, self._source)


def _free_names(tree: ast.AST) -> set[str]:
    """The names an expression reads: every name except a called function's.

    Why not "every name that is not a function": ``year`` is both a function (``year(service_date)``)
    and a claim fact (the benefit year, as in ``deductible_by_year[year]``); only the call position tells.
    """
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree)
            if isinstance(n, ast.Name) and id(n) not in called and n.id != "__pct__"}


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.BinOp,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
    ast.In, ast.NotIn, ast.IfExp, ast.Call, ast.Name, ast.Load, ast.Constant, ast.Subscript, ast.Tuple,
    ast.List,
)


def _check_node(node: ast.AST, text: str) -> None:
    if not isinstance(node, _ALLOWED):
        raise ExprError(f"{type(node).__name__} is not allowed in a policy expression: {text!r}",
                        getattr(node, "col_offset", None))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or (node.func.id not in FUNCTIONS and node.func.id != "__pct__"):
            name = getattr(node.func, "id", type(node.func).__name__)
            close = close_names(str(name), FUNCTIONS, n=2)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; functions: {', '.join(FUNCTIONS)}"
            raise ExprError(f"unknown function {name!r}{hint}", node.col_offset)
        if node.keywords:
            raise ExprError("keyword arguments are not allowed", node.col_offset)
    if isinstance(node, ast.Name) and node.id.startswith("__") and node.id != "__pct__":
        raise ExprError(f"name {node.id!r} is not allowed", node.col_offset)
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool, type(None))):
        raise ExprError(f"literal {node.value!r} is not allowed", node.col_offset)


def _number(node: ast.Constant, source: str) -> Decimal:
    segment = ast.get_source_segment(source, node) or str(node.value)
    return Decimal(segment.replace("_", ""))


def _eval(node: ast.AST, env: Mapping[str, object], source: str) -> object:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or node.value is None or isinstance(node.value, str):
            return node.value
        return _number(node, source)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ExprEvalError(f"no value for {node.id!r}")
        value = env[node.id]
        if isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value)
        return value
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_eval(e, env, source) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        values = [_truth(_eval(v, env, source)) for v in node.values]
        return _k_and(values) if isinstance(node.op, ast.And) else _k_or(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env, source)
        if isinstance(node.op, ast.Not):
            value = _truth(value)
            return None if value is None else not value
        if value is None:
            return None
        _need_number(value, "-")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env, source), _eval(node.right, env, source)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Div):
            _need_number(left, "/"), _need_number(right, "/")
            if right == 0:
                raise ExprEvalError("division by zero")
            return left / right
        if not (isinstance(left, Decimal) and isinstance(right, Decimal)):
            raise ExprEvalError(f"cannot compute {left!r} {type(node.op).__name__} {right!r}")
        return _ARITH[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        return _compare(node, env, source)
    if isinstance(node, ast.IfExp):
        cond = _truth(_eval(node.test, env, source))
        if cond is None:
            return None
        return _eval(node.body if cond else node.orelse, env, source)
    if isinstance(node, ast.Subscript):
        table = _eval(node.value, env, source)
        key = _eval(node.slice, env, source)
        return _lookup(table, key)
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        args = [_eval(a, env, source) for a in node.args]
        if name == "__pct__":
            return Decimal(str(args[0])) / 100
        try:
            return FUNCTIONS[name](*args)
        except (TypeError, AttributeError) as exc:
            raise ExprEvalError(f"{name}() cannot take {args!r}: {exc}") from None
    raise ExprEvalError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover - checked at parse


def _truth(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ExprEvalError(f"expected true/false, got {value!r}")


def _need_number(value: object, op: str) -> None:
    if not isinstance(value, Decimal):
        raise ExprEvalError(f"{op} needs numbers, got {value!r}")


def _compare(node: ast.Compare, env: Mapping[str, object], source: str) -> object:
    left = _eval(node.left, env, source)
    results: list[object] = []
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _eval(right_node, env, source)
        if isinstance(op, (ast.In, ast.NotIn)):
            if left is None or right is None:
                results.append(None)
            else:
                container = right if isinstance(right, (list, dict)) else None
                if container is None:
                    raise ExprEvalError(f"'in' needs a list or table, got {right!r}")
                hit = _member(left, container)
                results.append(hit if isinstance(op, ast.In) else not hit)
        elif left is None or right is None:
            results.append(None)
        else:
            if isinstance(left, date) != isinstance(right, date) and not isinstance(op, (ast.Eq, ast.NotEq)):
                raise ExprEvalError(f"cannot compare {left!r} with {right!r}")
            try:
                results.append(_CMP[type(op)](left, right))
            except TypeError:
                raise ExprEvalError(f"cannot compare {left!r} with {right!r}") from None
        left = right
    return _k_and(results)


def _member(item: object, container: list | dict) -> bool:
    keys = container.keys() if isinstance(container, dict) else container
    return any(item == k or str(item) == str(k) for k in keys)


def _entry(value: object) -> object:
    if isinstance(value, MissingEntry):
        raise MissingEntryError(value.name)
    return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _lookup(table: object, key: object) -> object:
    if key is None or table is None:
        return None
    if not isinstance(table, dict):
        raise ExprEvalError(f"{table!r} is not a table")
    candidates = [key]
    if isinstance(key, Decimal) and key == key.to_integral_value():
        candidates += [int(key), str(int(key))]
    candidates.append(str(key))
    for candidate in candidates:
        if candidate in table:
            return _entry(table[candidate])
    if isinstance(key, Decimal) and key == key.to_integral_value():
        # an open last key "N+" holds N and every later whole number (第三次及以后)
        opens = [(int(m.group(1)), k) for k in table if (m := _OPEN_KEY.match(str(k)))]
        below = [(n, k) for n, k in opens if n <= key]
        if below:
            return _entry(table[max(below)[1]])
    known = ", ".join(str(k) for k in table)
    raise ExprEvalError(f"no entry {key!s} in the table (entries: {known})")
