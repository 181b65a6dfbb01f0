"""``Lazy.types``: the types of an expression's columns without resolving the pending query's schema.

Why tested: a stage compiles each expression's native form for the types ``types`` gives; should it give a
column's type as the frame had it after a pending step replaced or dropped that column (or miss a column a step
added), the form would be compiled for the wrong columns. Every answer must be the pending query's own schema.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from medins.engine.context import Run
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[2]


def _lazy():
    policy = load_policy(ROOT / "policies" / "suqian-2007.yaml")
    frame = pl.DataFrame({"_i": [0, 1], "_v": [0, 0], "a": [1, 2], "b": ["x", "y"], "d": [None, None]})
    return Run(policy, frame).lazy()


def _expected(q, names: set[str]) -> dict[str, pl.DataType]:
    schema = q.query.collect_schema()
    return {n: schema[n] for n in names if n in schema}


NAMES = {"a", "b", "c", "d", "e", "z"}


def test_types_follow_added_replaced_and_dropped_columns() -> None:
    q = _lazy()
    assert q.types(NAMES) == _expected(q, NAMES) == {"a": pl.Int64, "b": pl.String, "d": pl.Null}
    q.with_columns(pl.col("a").cast(pl.String), c=pl.lit(1.5))  # replaced and added
    assert q.types(NAMES) == _expected(q, NAMES)
    assert q.types({"a"}) == {"a": pl.String} and q.types({"c"}) == {"c": pl.Float64}
    q.drop("b")
    assert q.types({"b"}) == {} and q.types(NAMES) == _expected(q, NAMES)
    q.with_columns([pl.col("d").cast(pl.Boolean).alias("e"), pl.lit(True).alias("d")])  # given as a list
    assert q.types(NAMES) == _expected(q, NAMES)
    q.collect()
    assert q.types(NAMES) == _expected(q, NAMES)


def test_types_after_a_step_of_unknown_columns() -> None:
    """A step made on ``query`` itself (a join) or of names Polars cannot tell (a wildcard): the query decides."""
    q = _lazy()
    q.query = q.query.join(pl.LazyFrame({"b": ["x"], "z": [True]}), on="b", how="left")
    assert q.types(NAMES) == _expected(q, NAMES) and "z" in q.types(NAMES)
    q = _lazy()
    q.with_columns(pl.all().exclude("_i", "_v", "b").cast(pl.String))
    assert q.types(NAMES) == _expected(q, NAMES) == {"a": pl.String, "b": pl.String, "d": pl.String}
    q.with_columns(pl.col("b").alias("z"))
    assert q.types(NAMES) == _expected(q, NAMES)
