"""``replace_columns``: the frame less some columns, with new ones in place of their namesakes (else last).

Why tested: every stage puts its columns in place with it (a dozen times a bill); it changes a copy of the frame in
place, so it must give exactly the frame the plain definition gives (names, order, values, types, chunks) and never
change the frame it was given, which a stage may still hold (``settle`` keeps the frame before benefits).
"""

from __future__ import annotations

import polars as pl
import pytest

from medins.engine.codes import replace_columns


def _plain(frame: pl.DataFrame, drop: list[str], *add: pl.Series) -> pl.DataFrame:
    """The definition: the kept columns in order, each replaced by its namesake among ``add``, then the others."""
    new = {s.name: s for s in add}
    kept = [new.pop(c.name, c) for c in frame.get_columns() if c.name not in drop]
    return pl.DataFrame([*kept, *new.values()])


FRAME = pl.DataFrame({"a": [1, 2], "b": ["x", None], "c": [True, False], "d": [None, 1.5]})


@pytest.mark.parametrize("drop, add", [
    ([], []),
    (["b"], []),
    (["b", "b", "nothere"], []),
    ([], [pl.Series("b", [3, 4])]),  # in place, another type
    ([], [pl.Series("z", [0, 0]), pl.Series("a", ["p", "q"]), pl.Series("y", [None, None])]),
    (["a"], [pl.Series("a", [7, 8])]),  # dropped and added: last, as the definition puts it
    (["a", "b", "c", "d"], [pl.Series("e", [1, 2])]),
    ([], [pl.Series("a", [5, 6]), pl.Series("a", [9, 9])]),  # the last of namesakes
    (["c"], [pl.concat([pl.Series("n", [1]), pl.Series("n", [2])], rechunk=False)]),  # two chunks stay two
])
def test_replace_columns_is_the_plain_definition(drop, add) -> None:
    before = FRAME.clone()
    out = replace_columns(FRAME, drop, *add)
    expected = _plain(FRAME, drop, *add)
    assert out.columns == expected.columns and out.schema == expected.schema and out.equals(expected)
    assert [s.n_chunks() for s in out.get_columns()] == [s.n_chunks() for s in expected.get_columns()]
    assert FRAME.equals(before) and FRAME.columns == before.columns and FRAME.schema == before.schema
