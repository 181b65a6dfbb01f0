"""The settlement run: the claims frame, the compiled policy, and expression evaluation over rows.

Why: every stage asks the same question — "what does this policy expression give for these claims?"
— and must get an exact answer per row, per policy version, fast on a million rows, without one odd
claim (a zone the policy has no deductible for) stopping the whole run. ``Run.ev`` answers it with
the expression's native Polars form where one exists (``engine/native.py``: column speed, exact),
and otherwise — and on the rows that form hands back — once per distinct combination of the values
the expression reads, turning failures into a reason on the claims concerned instead of an exception.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import polars as pl

from medins.claims.fields import MONEY_COLUMNS
from medins.engine.codes import Codes, positions, replace_columns
from medins.engine.fused import repeat
from medins.engine.native import Native, compile_expression
from medins.policy.expr import Expression, ExprEvalError, MissingEntryError
from medins.policy.plan import PAYER_NAMES, CompiledPolicy

_MISSING = object()

#: Defaults the engine took for absent facts, as ``name=value`` codes joined by ";" (null: none).
ASSUMED = "_assumed"

#: Money columns the engine adds; they enter expressions as yuan like the claim's own amounts.
ENGINE_MONEY = frozenset({"inscope", "eligible", "class_b_inscope", "total_items"}) | PAYER_NAMES

_DTYPES = {"money": pl.Int64, "rate": pl.Int64, "int": pl.Int64, "bool": pl.Boolean, "date": pl.Date, "str": pl.String}


@lru_cache(maxsize=4096)
def parse(text: str) -> Expression:
    """Parse once per distinct text (policies repeat the same expressions)."""
    return Expression.parse(text)


def _convert(value: object, returns: str) -> object:
    if value is None:
        return None
    if returns == "money":
        if not isinstance(value, Decimal):
            raise ExprEvalError(f"expected an amount, got {value!r}")
        if value < 0:  # an amount below 0 is a policy mistake: refused, never clipped (issue 12)
            raise ExprEvalError(f"gives a negative amount {value}")
        return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if returns == "rate":
        if not isinstance(value, Decimal):
            raise ExprEvalError(f"expected a rate, got {value!r}")
        if not 0 <= value <= 1:
            raise ExprEvalError(f"gives a rate of {(value * 100).normalize():f}% outside 0-100%")
        return int((value * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if returns == "int":
        return int(value)  # type: ignore[call-overload]
    if returns == "bool":
        if not isinstance(value, bool):
            raise ExprEvalError(f"expected true/false, got {value!r}")
        return value
    return value


def _is_money(name: str) -> bool:
    """Whether a column holds fen that expressions read as yuan (the claim's amounts and the engine's)."""
    return name in MONEY_COLUMNS or name in ENGINE_MONEY or name.startswith("cat_")


def _to_env(name: str, value: object) -> object:
    if value is None:
        return None
    if _is_money(name):
        return Decimal(int(value)).scaleb(-2)  # type: ignore[call-overload]
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


class Run:
    """One settlement of a claims frame under one compiled policy.

    ``frame`` carries a ``_i`` row index (0..n-1, fixed for the whole run) and a ``_v`` version
    index column. ``problems`` collects per-row reasons raised while evaluating (``_i`` → codes).
    ``groupings``: state groupings (``state.group_order``) by bucket column, shared by the state columns of a
    stage. ``trace``: ``settle(..., keep_trace=True)``: stages keep the few temporaries ``--explain`` reads
    (:meth:`drop`). ``pending``: codes being added to ``;``-joined columns (``_reasons``, ``_assumed``) as bits
    (``engine/codes.py``).

    A plain class, not a dataclass: a run is never compared, copied or printed, and a dataclass's generated
    methods cost every ``medins calc``'s import ~0.5 ms.
    """

    def __init__(self, policy: CompiledPolicy, frame: pl.DataFrame, problems: dict[int, list[str]] | None = None,
                 groupings: dict[str, tuple] | None = None, trace: bool = False,
                 pending: dict[str, Codes] | None = None) -> None:
        self.policy, self.frame, self.trace = policy, frame, trace
        self.problems: dict[int, list[str]] = {} if problems is None else problems
        self.groupings: dict[str, tuple] = {} if groupings is None else groupings
        self.pending: dict[str, Codes] = {} if pending is None else pending

    def codes(self, column: str) -> Codes:
        """The codes being added to ``column`` (joined into it by :meth:`finish_codes`)."""
        return self.pending.setdefault(column, Codes(column))

    def add_code(self, column: str, code: str | pl.Expr, flag: pl.Expr, *, prefix: str = "") -> None:
        """Add ``code`` to ``column`` where ``flag`` holds, in one eager step (a stage's query: :meth:`Lazy.code`)."""
        self.frame = self.frame.with_columns(self.codes(column).add(code, flag, prefix=prefix))

    def finish_codes(self, column: str) -> None:
        """Join the codes added to ``column`` into its text (null: none), once, from their bit patterns."""
        self.frame = self.codes(column).finish(self.frame)

    def lazy(self, *, defer: bool = False) -> Lazy:
        """A stage's new columns built as expressions on one query, materialised by one collect.

        Why: an eager ``with_columns`` per rule is a pass (and a collect) per rule; the same expressions on one
        lazy query are evaluated together, their common parts once (common-subexpression elimination).
        ``defer``: see :meth:`deferred`.
        """
        return Lazy(self, defer=defer)

    def deferred(self, step: Callable[[Run, bool], None]) -> None:
        """Run the stage ``step(run, defer=True)``; should a row need the exact evaluator, run it again unfused.

        Why: a date condition (``add_months``, ``workday_add``) has a native form that hands back the rare
        rows it cannot give exactly (a date outside the calendar). Deferred, such a form is fused into the
        stage's query like any other, and its troubled rows are only counted; when there are none (the usual
        case) the result is exactly :meth:`ev`'s. When there are, the stage starts again from the same frame,
        reasons and problems with ``defer=False``, every such expression going through :meth:`ev`.
        """
        frame, problems = self.frame, {i: list(codes) for i, codes in self.problems.items()}
        sizes = {column: len(codes.entries) for column, codes in self.pending.items()}
        try:
            step(self, True)
        except Troubled:
            self.frame, self.problems = frame, problems
            for column, codes in self.pending.items():
                codes.truncate(sizes.get(column, 0))
            step(self, False)

    def drop(self, frame: pl.DataFrame, keep: dict[str, str], *columns: str) -> pl.DataFrame:
        """``frame`` without the temporaries ``columns``; with ``trace``, those named in ``keep`` stay under
        their trace names (``keep``: temporary -> trace name). Trace-only: the batch path drops them as before."""
        if self.trace:
            frame = frame.with_columns(pl.col(old).alias(new) for old, new in keep.items())
        return replace_columns(frame, list(columns))  # rearranges the columns: no query of its own

    def constants(self, version: int) -> dict[str, object]:
        return self.policy.versions[version].params.constants

    def ev(
        self,
        text: str | None,
        returns: str,
        *,
        mask: pl.Series | None = None,
        extra: dict[str, object] | None = None,
        frame: pl.DataFrame | None = None,
        on_error: str = "reject",
        required: bool = False,
        shared: dict | None = None,
    ) -> pl.Series:
        """Evaluate ``text`` on the rows where ``mask`` holds; null elsewhere (and where unknown).

        A row whose evaluation fails gets a reason (``on_error="reject"``) and a null result. With
        ``required``, a row whose result is unknown (a fact the expression reads is absent) is rejected
        ``missing_fact:<names>`` — the engine never replaces an unknown amount or rate by a guess.

        The expression's native form (:meth:`native`) gives the rows it can; the rows it marks as
        troubled, or every row when there is none, are evaluated by the exact evaluator.

        ``shared``: a dict the caller passes to every evaluation on the same frame and ``mask`` (the rates of a
        rule's bands): the rows the mask selects and their distinct combinations of the columns read are worked
        out once for all of them (a filter and a hashing pass each), not once per expression.
        """
        base = self.frame if frame is None else frame
        n = base.height
        dtype = _DTYPES[returns]
        if text is None:
            return repeat(None, n, dtype)
        expr = parse(text)
        names = set(base.columns)
        cols = sorted(c for c in expr.names if c in names)
        # The types of the columns read, not the frame's schema: a wide frame's costs half a millisecond per call.
        schema = {c: base[c].dtype for c in cols}
        native = self.native(text, returns, extra=extra, schema=schema) if _native_pays(returns, schema, cols) else None
        if native is not None and native.trouble is None and not required:
            value = native.value if mask is None else pl.when(pl.lit(mask)).then(native.value)
            return base.with_columns(value.cast(dtype).alias("_native"))["_native"]  # a constant too
        rows = None if shared is None else shared.get(("rows", *cols))
        if rows is None:
            narrow = base[["_i", "_v", *cols]]  # filter only the columns the expression reads
            # a mask that holds on every row (a bill of one claim, one rule) filters nothing: no query for it
            rows = narrow if mask is None or (not mask.null_count() and mask.all()) else narrow.filter(mask)
            if shared is not None:
                shared[("rows", *cols)] = rows
        if rows.height == 0:
            return repeat(None, n, dtype)
        failed_rows: list[tuple[int, str]] = []
        if native is not None:
            done = rows.with_columns(_val=native.value.cast(dtype),  # with_columns: a constant fills every row
                                     _bad=native.trouble if native.trouble is not None else pl.lit(False))
            values = done["_val"]
            troubled = done["_bad"]
            if troubled.any():
                at = troubled.arg_true()
                slow, failed_rows = self._evaluate(expr, rows.filter(troubled), cols, returns, extra, dtype, None)
                values = values.scatter(at, slow)
        else:
            values, failed_rows = self._evaluate(expr, rows, cols, returns, extra, dtype, shared)
        placed = None
        if isinstance(values, _Compact):
            # Values by distinct combination (``shared``): put on run.frame's rows by one gather of the mask's
            # row → combination index, shared by the mask's evaluations (not a gather to the rows and a scatter
            # to the frame each); the values of the rows themselves only where they are read.
            if frame is None and mask is not None and rows.height != n:
                placed = values.placed(rows, mask, shared)
                shared["table"] = values.table  # the values ``placed`` has, each once or more (``table_of``)
            values = values.rows(rows.height) if placed is None or (required and values.table.null_count()) else None
        if failed_rows and on_error == "reject":
            for i, reason in failed_rows:
                self.problems.setdefault(i, []).append(reason)
        if required and values is not None and values.null_count() > len(failed_rows):  # unknown, not a failure
            failed = pl.Series([i for i, _r in failed_rows], dtype=rows.schema["_i"])
            unknown = rows.with_columns(_val=values).filter(pl.col("_val").is_null() & ~pl.col("_i").is_in(failed.implode()))
            for row in unknown.iter_rows(named=True):
                absent = [c for c in cols if row[c] is None] or [expr.text]
                self.problems.setdefault(row["_i"], []).append("missing_fact:" + ",".join(absent))
        if placed is not None:
            return placed
        if frame is None and (mask is None or rows.height == n):
            return values  # every row, in frame order (``_i`` numbers the rows of ``run.frame``)
        full = repeat(None, n, dtype)
        return full.scatter(rows["_i"], values)

    def native(self, text: str, returns: str, *, extra: dict[str, object] | None = None,
               frame: pl.DataFrame | None = None, schema: Mapping[str, pl.DataType] | None = None) -> Native | None:
        """The compiled Polars form of ``text`` (``engine/native.py``) for ``frame``'s columns, or None.

        For a stage that wants to fuse an expression into its own ``with_columns``: ``value`` is in
        ``ev``'s units (fen, millionths, …) and exact where ``trouble`` (None: never) is false; rows
        where it is true must go through :meth:`ev`, which alone gives their value and reason. Compiled
        once per policy, expression, kind, parameters and column types (kept in the policy's memo).
        """
        if schema is None:  # ``schema``: a stage's pending query's (no frame built just to hold it)
            schema = (self.frame if frame is None else frame).schema
        expr = parse(text)
        cols = tuple(sorted((c, str(schema[c])) for c in expr.names if c in schema))
        key = ("native", text, returns, cols, tuple(sorted((extra or {}).items(), key=lambda kv: kv[0])))
        memo = self.policy.memo
        try:
            found = memo.get(key, _MISSING)
        except TypeError:  # an extra value that cannot be hashed: compile afresh
            found, key = _MISSING, None
        if found is _MISSING:
            constants = [{**self.constants(v), **(extra or {})} for v in range(len(self.policy.versions))]
            found = compile_expression(expr, returns, schema, constants, _is_money)
            if key is not None:
                memo[key] = found
        return found  # type: ignore[return-value]

    def _evaluate(self, expr: Expression, rows: pl.DataFrame, cols: list[str], returns: str,
                  extra: dict | None, dtype: pl.DataType,
                  shared: dict | None) -> tuple[pl.Series | _Compact, list[tuple[int, str]]]:
        """The exact evaluator on ``rows``: their values, and ``(_i, reason)`` for each row that failed
        (``shared``: :meth:`ev`'s, where ``rows`` are its rows; the values then as a :class:`_Compact`, but for a
        condition evaluated part by part)."""
        if not cols and len(self.policy.versions) == 1:
            # A constant (parameters only): evaluate once and place it on every row.
            try:
                value = _convert(expr.evaluate({**self.constants(0), **(extra or {})}), returns)
            except (ExprEvalError, ArithmeticError, TypeError, ValueError):
                value = _MISSING
            if value is not _MISSING:
                if shared is not None:
                    return _Compact(repeat(value, 1, dtype), None, ()), []
                return repeat(value, rows.height, dtype), []
        keys = ["_v", *cols] if len(self.policy.versions) > 1 else cols
        found = None if shared is None else shared.get(("distinct", *keys))
        index, distinct = found if found is not None else _distinct(rows, keys)
        if shared is not None:
            shared[("distinct", *keys)] = (index, distinct)
        failed: dict[int, str] = {}
        split = None
        if returns == "bool" and distinct.height > SPLIT_FROM:
            split = _Parts(self, expr, rows, extra).evaluate()
        if split is not None:
            values = split
        else:
            results: list[object] = []
            for u, value in enumerate(self._each(expr, distinct, cols, extra)):
                if isinstance(value, _Failed):
                    results.append(None)
                    failed[u] = value.reason
                else:
                    try:
                        results.append(_convert(value, returns))
                    except (ExprEvalError, ArithmeticError, TypeError, ValueError) as exc:
                        results.append(None)
                        failed[u] = f"policy_error:{_short(f'{expr.text!r} {exc}')}"  # names the expression
            table = pl.Series(results, dtype=dtype)
            # a gather by indexing: native, not a query (with ``shared``, left to the caller: see ``_Compact``)
            values = _Compact(table, index, tuple(keys)) if shared is not None else table[index]
        failed_rows: list[tuple[int, str]] = []
        if failed:
            bad = rows.select("_i", _u=index).filter(pl.col("_u").is_in(list(failed)))
            failed_rows = [(i, failed[u]) for i, u in bad.rows()]
        return values, failed_rows

    def _each(self, expr: Expression, distinct: pl.DataFrame, cols: list[str], extra: dict | None):
        """The value of ``expr`` for each row of ``distinct`` (a :class:`_Failed` where it cannot be evaluated)."""
        lists = {c for c in cols if isinstance(distinct.schema[c], pl.List)}
        memo = self.policy.memo
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        what = (expr.text, tuple(cols), tuple(sorted((extra or {}).items())))
        for version, *values in distinct[["_v", *cols]].rows():
            key = (what, version, tuple(tuple(v) if isinstance(v, list) else v for v in values))
            value = memo.get(key, _MISSING)
            if value is _MISSING:
                env = {**self.constants(int(version)), **(extra or {})}
                for c, val in zip(cols, values, strict=True):
                    env[c] = _to_env(c, list(val) if c in lists and val is not None else val)
                try:
                    value = expr.evaluate(env)
                except MissingEntryError as exc:  # stops the claim like a missing parameter, naming the entry
                    value = _Failed(_short(exc), f"missing_parameter:{exc.name}")
                except (ExprEvalError, ArithmeticError, TypeError, ValueError) as exc:
                    value = _Failed(_short(f"{expr.text!r} {exc}"))  # the reason names the expression
                memo[key] = value
            yield value


class _Compact:
    """:meth:`Run._evaluate`'s values for a caller sharing its rows (``shared``): one per distinct combination
    (``table``) and each row's combination (``index``; None: every row the table's one value)."""

    __slots__ = ("index", "keys", "table")

    def __init__(self, table: pl.Series, index: pl.Series | None, keys: tuple) -> None:
        self.table, self.index, self.keys = table, index, keys

    def rows(self, height: int) -> pl.Series:
        """The values of the rows, in their order (as the evaluation without ``shared`` gives them)."""
        return self.table.new_from_index(0, height) if self.index is None else self.table[self.index]

    def placed(self, rows: pl.DataFrame, mask: pl.Series, shared: dict) -> pl.Series:
        """The values on the rows of ``run.frame`` that ``mask`` selects (``rows``), null elsewhere: the table
        gathered by the frame's row → combination index (0 outside the rows; worked out once per mask and keys),
        then nulls put where the mask does not hold. Why not null indices: a gather with nulls costs ten times one
        without, and setting the nulls from the mask costs as little."""
        n = mask.len()
        if self.index is None:
            values = self.table.new_from_index(0, n)
        else:
            key = ("placed", *self.keys)
            full = shared.get(key)
            if full is None:
                full = shared[key] = repeat(0, n, pl.UInt32).scatter(rows["_i"], self.index)
            values = self.table[full]
        where = mask.fill_null(False) if mask.null_count() else mask
        return values.zip_with(where, repeat(None, n, values.dtype)).alias("literal")


def table_of(values: pl.Series, shared: dict) -> pl.Series:
    """The values of :meth:`Run.ev`'s result ``values`` with ``shared``, each once or more: the distinct combinations'
    table when the values were placed from it (null outside the mask aside, the same values: every combination is
    some row's), else ``values`` itself. Why: the least and largest of a few values, not of a frame-long column."""
    table = shared.pop("table", None)
    return values if table is None else table


class Troubled(Exception):
    """A deferred native form met rows only the exact evaluator gives (:meth:`Run.deferred`)."""


class Lazy:
    """The pending query of one stage over ``run.frame`` (:meth:`Run.lazy`); :meth:`collect` materialises it.

    Expressions that need the exact evaluator (no native form, or rows it hands back) cannot be part of
    the query: :meth:`ev` then materialises what is pending (a collect) and evaluates on the frame, so
    the stage costs one collect per such expression at most, and one in all when every one is native.
    """

    def __init__(self, run: Run, *, defer: bool = False) -> None:
        self.run, self.defer = run, defer
        self.troubles: list[str] = []  # deferred native forms' troubled-row columns (``Run.deferred``)
        self._query = run.frame.lazy()
        self.dirty = False
        self._schema: pl.Schema | None = run.frame.schema  # one object for both (built anew on every read)
        # The frame's schema and the names the pending query added, replaced or dropped since (``types``);
        # ``_known`` None: a step whose names are not known (a join), the query's own schema decides.
        self._known: pl.Schema | None = self._schema
        self._stale: set[str] = set()

    @property
    def query(self) -> pl.LazyFrame:
        return self._query

    @query.setter
    def query(self, query: pl.LazyFrame) -> None:
        """A step made on the query outside :meth:`with_columns` and :meth:`drop`: its columns are not known."""
        self._query, self.dirty, self._schema, self._known = query, True, None, None

    @property
    def schema(self) -> pl.Schema:
        if self._schema is None:
            self._schema = self._query.collect_schema()
        return self._schema

    def types(self, names: frozenset[str] | set[str]) -> Mapping[str, pl.DataType]:
        """The types of those of ``names`` that are columns of the query as it is so far (the others are not).

        Why: resolving the whole pending query's schema (``collect_schema``) costs a quarter of a millisecond on a
        stage's hundred-odd columns, and a stage asks before each expression; the expression's own columns are
        mostly the frame's, untouched by the pending steps, whose types are known without asking.
        """
        if self._schema is None and self._known is not None and not (self._stale & names):
            return {name: self._known[name] for name in names if name in self._known}
        schema = self.schema
        return {name: schema[name] for name in names if name in schema}

    def with_columns(self, *exprs: pl.Expr | list[pl.Expr], **named: pl.Expr | pl.Series) -> Lazy:
        self._query = self._query.with_columns(*exprs, **named)
        self.dirty, self._schema = True, None
        if self._known is not None:
            try:
                self._stale.update(named, (e.meta.output_name() for group in exprs
                                           for e in (group if isinstance(group, list) else [group])))
            except Exception:  # a name Polars cannot tell before resolving (a wildcard): the query's schema decides
                self._known = None
        return self

    def drop(self, *columns: str) -> Lazy:
        self._query = self._query.drop(*columns)
        self.dirty, self._schema = True, None
        self._stale.update(columns)
        return self

    def code(self, column: str, code: str | pl.Expr, flag: pl.Expr, *, prefix: str = "") -> Lazy:
        """Add ``code`` (a value code: ``prefix`` and the row's value) to the ``;``-joined ``column`` where ``flag``
        holds (as a bit: ``engine/codes.py``)."""
        return self.with_columns(self.run.codes(column).add(code, flag, prefix=prefix))

    def series(self, expr: pl.Expr) -> pl.Series:
        """The value of ``expr`` on the frame as it is so far (materialises what is pending)."""
        return self.collect().frame.select(expr).to_series()

    def ev(self, text: str | None, returns: str, *, mask: pl.Expr | None = None, on_error: str = "reject",
           required: bool = False) -> pl.Expr:
        """``Run.ev`` as an expression on the query: the native form itself where it is exact on every row;
        otherwise the evaluator's column (``mask`` and the frame materialised first)."""
        dtype = _DTYPES[returns]
        if text is None:
            return pl.lit(None, dtype)
        schema = self.types(parse(text).names)  # the expression's own columns: all that is looked up
        cols = sorted(schema)
        # a constant (parameters only) is a literal natively: fused rather than evaluated on its own; the schema
        # alone is handed on (an empty frame of a wide schema costs a Series per column, per expression)
        native = self.run.native(text, returns, schema=schema) if not cols or _native_pays(returns, schema, cols) else None
        if native is not None and (native.trouble is None or self.defer) and (not required or self.defer):
            value = native.value if mask is None else pl.when(mask).then(native.value)
            # The rows ``ev`` would hand to the evaluator, and (``required``) those it would reject as unknown:
            # there must be none (``Run.deferred`` settles the stage again through ``ev`` otherwise).
            trouble = native.trouble
            if required:
                unknown = native.value.cast(dtype).is_null()
                trouble = unknown if trouble is None else trouble.fill_null(False) | unknown
            if trouble is not None:
                name = f"_trouble{len(self.troubles)}"
                self.troubles.append(name)
                where = trouble.fill_null(False)
                self.with_columns((where if mask is None else mask.fill_null(False) & where).alias(name))
            return value.cast(dtype)
        where = None if mask is None else self.series(mask)
        return pl.lit(self.run.ev(text, returns, mask=where, on_error=on_error, required=required))

    def collect(self) -> Run:
        """Materialise the pending query into ``run.frame`` (one collect, Polars' in-memory engine: cheaper
        than the streaming one for these shapes), columns in one chunk each (``fused.collected``)."""
        if self.dirty:
            frame = self.query.collect(engine="in-memory").rechunk()
            if self.troubles:
                if any(frame[name].any() for name in self.troubles):
                    raise Troubled
                frame = replace_columns(frame, self.troubles)
                self.troubles = []
            self.run.frame = frame
            self._query, self.dirty, self._schema = self.run.frame.lazy(), False, self.run.frame.schema
            self._known, self._stale = self._schema, set()
        return self.run


def _native_pays(returns: str, schema: Mapping[str, pl.DataType], cols: list[str]) -> bool:
    """Whether the native form is the faster one: a condition, or a value read from dates or numbers.

    Why not always: an amount or rate looked up by codes alone (``deductible[hospital_zone]``) reads a
    handful of distinct values, and the memoised path (one hash, a memo hit and a gather) costs a
    fraction of per-row look-ups and guards; dates and amounts have too many distinct values for it.
    """
    return returns == "bool" or any(schema[c] not in (pl.String, pl.Boolean) for c in cols)


#: Memoised expression values kept per policy before the memo starts afresh (bounds its memory).
MEMO_LIMIT = 200_000


class _Failed:
    """An expression that could not be evaluated for one combination of values (a plain slotted class: never
    compared or hashed, only told apart from a value by ``isinstance``)."""

    __slots__ = ("code", "message")

    def __init__(self, message: str, code: str | None = None) -> None:
        self.message, self.code = message, code

    @property
    def reason(self) -> str:
        """The claim's reason code: ``missing_parameter:<table.entry>`` or ``policy_error:<message>``."""
        return self.code or f"policy_error:{self.message}"


#: Distinct value combinations above which a condition is evaluated part by part (``_Parts``).
SPLIT_FROM = 2000


class _NoSplit(Exception):
    """The condition cannot be evaluated part by part exactly as a whole: evaluate it whole."""


class _Parts:
    """A true/false condition evaluated part by part, each part over the distinct values of its own facts.

    Why: ``service_date < add_months(enrolled_date, …)`` reads two dates that vary independently, so a
    year of claims has hundreds of thousands of (service date, enrolment date) pairs — seconds of
    evaluation one by one — but only a few hundred of each. Comparisons, ``and``, ``or`` and ``not``
    at the top of a condition are therefore done on columns (Polars compares dates, texts and exact
    decimals, and follows the same three-valued logic for unknowns), and only their operands are
    evaluated one distinct value at a time. Any part that fails, mixes types or compares values of
    different kinds gives up (``_NoSplit``): the condition is then evaluated whole, as before.
    """

    def __init__(self, run: Run, expr: Expression, rows: pl.DataFrame, extra: dict | None) -> None:
        self.run, self.expr, self.rows, self.extra = run, expr, rows, extra

    def evaluate(self) -> pl.Series | None:
        try:
            out = self._part(self.expr.tree.body)
        except _NoSplit:
            return None
        return _as_bool(out)

    def _part(self, node: ast.AST) -> pl.Series:
        if isinstance(node, ast.BoolOp):
            parts = [_as_bool(self._part(v)) for v in node.values]
            out = parts[0]
            for part in parts[1:]:
                out = (out & part) if isinstance(node.op, ast.And) else (out | part)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~_as_bool(self._part(node.operand))
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            return _compare(node.ops[0], self._part(node.left), self._part(node.comparators[0]))
        return self._leaf(node)

    def _leaf(self, node: ast.AST) -> pl.Series:
        expr = self.expr.part(node)
        cols = sorted(c for c in expr.names if c in self.rows.columns)
        keys = ["_v", *cols] if len(self.run.policy.versions) > 1 else cols
        index, distinct = _distinct(self.rows, keys)
        values = list(self.run._each(expr, distinct, cols, self.extra))
        return _typed(values).gather(index)


_COMPARE = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}


def _typed(values: list[object]) -> pl.Series:
    """Python values of one kind (true/false, date, text, exact number) as a column; else ``_NoSplit``."""
    known = [v for v in values if v is not None]
    if any(isinstance(v, _Failed) for v in known):
        raise _NoSplit
    if not known:
        return pl.Series(values, dtype=pl.Null)
    if all(isinstance(v, bool) for v in known):
        return pl.Series(values, dtype=pl.Boolean)
    if all(isinstance(v, date) for v in known):
        return pl.Series(values, dtype=pl.Date)
    if all(isinstance(v, str) for v in known):
        return pl.Series(values, dtype=pl.String)
    if all(isinstance(v, Decimal) and v.is_finite() for v in known):
        scale = max(0, *(-v.as_tuple().exponent for v in known))  # type: ignore[operator]
        digits = max(len(v.as_tuple().digits) + max(0, v.as_tuple().exponent) for v in known)  # type: ignore[arg-type]
        if scale > 18 or digits - min(0, *(v.as_tuple().exponent for v in known)) > 36:  # type: ignore[operator]
            raise _NoSplit
        return pl.Series(values, dtype=pl.Decimal(38, scale))
    raise _NoSplit


def _as_bool(series: pl.Series) -> pl.Series:
    if series.dtype == pl.Null:
        return series.cast(pl.Boolean)
    if series.dtype != pl.Boolean:
        raise _NoSplit  # ``and``/``or``/``not`` of something that is not true/false: an error, said whole
    return series


def _compare(op: ast.cmpop, left: pl.Series, right: pl.Series) -> pl.Series:
    """``left op right`` row by row; unknown when either side is (as the expression language says)."""
    kind = _COMPARE[type(op)]
    if pl.Null in (left.dtype, right.dtype):
        return pl.repeat(None, left.len(), dtype=pl.Boolean, eager=True)
    if isinstance(left.dtype, pl.Decimal) and isinstance(right.dtype, pl.Decimal):
        scale = max(left.dtype.scale or 0, right.dtype.scale or 0)
        left, right = left.cast(pl.Decimal(38, scale)), right.cast(pl.Decimal(38, scale))
    elif left.dtype != right.dtype or (left.dtype == pl.Boolean and kind not in ("eq", "ne")):
        raise _NoSplit
    return getattr(left, kind)(right)


def _distinct(rows: pl.DataFrame, keys: list[str], *, exact: bool = False) -> tuple[pl.Series, pl.DataFrame]:
    """For each row the number of its combination of ``keys`` values, and those combinations (first rows).

    Why hashing: a ``unique`` and a join back on a million rows cost ~80 ms per expression; hashing
    the key columns, taking the first row of each hash and numbering the hashes costs a fraction.
    Should two different combinations share a hash (astronomically rare), the comparison of every
    row with its combination's first row fails and the exact path (``exact``: unique and join) is used.
    """
    if rows.height <= 1:  # one combination at most (a bill: one claim)
        return pl.Series([0] * rows.height, dtype=pl.UInt32), rows.head(1)
    if not keys:
        return pl.repeat(0, rows.height, dtype=pl.UInt32, eager=True), rows.head(1)
    if not exact:
        hashed = rows.select(_h=pl.reduce(lambda a, b: a ^ b, [pl.col(c).hash(seed=97 + 31 * i)
                                                              for i, c in enumerate(keys)]))["_h"]
        first = hashed.arg_unique()
        index = positions(hashed, hashed.gather(first))
        distinct = rows[first]
        same = rows.select(pl.all_horizontal(pl.col(c).eq_missing(pl.lit(distinct[c]).gather(index))
                                             for c in keys).all()).item()
        if same:
            return index, distinct
    flat = [pl.col(c).list.join("\x1f") if isinstance(rows.schema[c], pl.List) else pl.col(c) for c in keys]
    keyed = rows.with_row_index("_r").with_columns(flat)  # list cells as text: join keys must be scalars
    firsts = keyed.unique(keys, keep="first", maintain_order=True)
    uniq = firsts.select(keys).with_row_index("_u")
    mapped = keyed.join(uniq, on=keys, how="left", nulls_equal=True, maintain_order="left")
    return mapped["_u"].cast(pl.UInt32), rows[firsts["_r"]]


def _short(exc: object) -> str:
    text = str(exc).replace("\n", " ")
    return text[:120]
