"""Columns added through Polars' lazy engine, so that parts shared by several expressions are computed once.

Why: an eager ``DataFrame.with_columns`` evaluates every expression tree as written — a term used in
eight places (the class-B offset per euro of in-scope expense, in each band's share) is computed eight
times. The same expressions collected lazily go through common-subexpression elimination, and the
frame's columns are only referenced, not copied. The result is the same column for column (the same
expressions, only evaluated once); stages whose expressions repeat parts use :func:`with_columns`.
"""

from __future__ import annotations

import polars as pl


def with_columns(frame: pl.DataFrame, *exprs: pl.Expr | pl.Series, **named: pl.Expr | pl.Series) -> pl.DataFrame:
    """``frame.with_columns(*exprs, **named)`` with shared sub-expressions computed once."""
    return frame.lazy().with_columns(*exprs, **named).collect()
