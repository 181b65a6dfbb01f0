"""The settlement run: the claims frame, the compiled policy, and expression evaluation over rows.

Why: every stage asks the same question — "what does this policy expression give for these claims?"
— and must get an exact answer per row, per policy version, fast on a million rows, without one odd
claim (a zone the policy has no deductible for) stopping the whole run. ``Run.ev`` answers it once
per distinct combination of the values the expression reads, and turns failures into a reason on
the claims concerned instead of an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import polars as pl

from medins.claims.fields import MONEY_COLUMNS
from medins.policy.compiled import CompiledPolicy
from medins.policy.expr import Expression, ExprEvalError

_MISSING = object()

#: Money columns the engine adds; they enter expressions as yuan like the claim's own amounts.
ENGINE_MONEY = frozenset({"inscope", "eligible", "class_b_inscope", "total_items"})

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
        return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if returns == "rate":
        if not isinstance(value, Decimal):
            raise ExprEvalError(f"expected a rate, got {value!r}")
        return int((value * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if returns == "int":
        return int(value)  # type: ignore[call-overload]
    if returns == "bool":
        if not isinstance(value, bool):
            raise ExprEvalError(f"expected true/false, got {value!r}")
        return value
    return value


def _to_env(name: str, value: object) -> object:
    if value is None:
        return None
    if name in MONEY_COLUMNS or name in ENGINE_MONEY or name.startswith("cat_"):
        return Decimal(int(value)).scaleb(-2)  # type: ignore[call-overload]
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


@dataclass
class Run:
    """One settlement of a claims frame under one compiled policy.

    ``frame`` carries a ``_i`` row index (0..n-1, fixed for the whole run) and a ``_v`` version
    index column. ``problems`` collects per-row reasons raised while evaluating (``_i`` → codes).
    """

    policy: CompiledPolicy
    frame: pl.DataFrame
    problems: dict[int, list[str]] = field(default_factory=dict)

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
    ) -> pl.Series:
        """Evaluate ``text`` on the rows where ``mask`` holds; null elsewhere (and where unknown).

        A row whose evaluation fails gets a reason (``on_error="reject"``) and a null result. With
        ``required``, a row whose result is unknown (a fact the expression reads is absent) is rejected
        ``missing_fact:<names>`` — the engine never replaces an unknown amount or rate by a guess.
        """
        base = self.frame if frame is None else frame
        n = base.height
        dtype = _DTYPES[returns]
        if text is None:
            return pl.repeat(None, n, dtype=dtype, eager=True)
        expr = parse(text)
        cols = sorted(c for c in expr.names if c in base.columns)
        narrow = base.select("_i", "_v", *cols)  # filter only the columns the expression reads
        rows = narrow if mask is None else narrow.filter(mask)
        if rows.height == 0:
            return pl.repeat(None, n, dtype=dtype, eager=True)
        if not cols and len(self.policy.versions) == 1:
            # A constant (parameters only): evaluate once and place it on the masked rows.
            try:
                value = _convert(expr.evaluate({**self.constants(0), **(extra or {})}), returns)
            except (ExprEvalError, ArithmeticError, TypeError, ValueError):
                value = _MISSING
            if value is not _MISSING and not (value is None and required):
                constant = pl.repeat(value, n, dtype=dtype, eager=True)
                if mask is None:
                    return constant
                return pl.select(pl.when(pl.lit(mask)).then(pl.lit(constant)).otherwise(None)).to_series().cast(dtype)
        lists = [c for c in cols if isinstance(rows.schema[c], pl.List)]
        keyed = rows.select(
            "_i", "_v", *[pl.col(c).list.join("\x1f").alias(c) if c in lists else pl.col(c) for c in cols]
        )
        uniq = keyed.select("_v", *cols).unique(maintain_order=True).with_row_index("_u")
        results: list[object] = []
        failed: dict[int, str] = {}
        for u, (version, *values) in enumerate(uniq.select("_v", *cols).rows()):
            env = {**self.constants(int(version)), **(extra or {})}
            for c, val in zip(cols, values, strict=True):
                if c in lists and val is not None:
                    val = val.split("\x1f") if val else []
                env[c] = _to_env(c, val)
            try:
                results.append(_convert(expr.evaluate(env), returns))
            except (ExprEvalError, ArithmeticError, TypeError, ValueError) as exc:
                results.append(None)
                failed[u] = _short(exc)
        mapped = keyed.join(uniq, on=["_v", *cols], how="left", nulls_equal=True, maintain_order="left")
        positions = mapped["_i"]
        values = pl.Series(results, dtype=dtype).gather(mapped["_u"])
        if failed and on_error == "reject":
            bad = mapped.filter(pl.col("_u").is_in(list(failed)))
            for i, u in bad.select("_i", "_u").rows():
                self.problems.setdefault(i, []).append(f"policy_error:{failed[u]}")
        if required:
            unknown = mapped.with_columns(_val=values).filter(pl.col("_val").is_null() & ~pl.col("_u").is_in(list(failed)))
            for row in unknown.iter_rows(named=True):
                absent = [c for c in cols if row[c] is None] or [expr.text]
                self.problems.setdefault(row["_i"], []).append("missing_fact:" + ",".join(absent))
        full = pl.repeat(None, n, dtype=dtype, eager=True)
        return full.scatter(positions, values)


def _short(exc: Exception) -> str:
    text = str(exc).replace("\n", " ")
    return text[:120]
