"""The clamped cumulative sum (year-to-date state) equals the plain recurrence, whatever the limits."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from medins.engine.state import clamped_cumsum


def reference(xs: list[int], limits: list[int], h0: int) -> list[int]:
    state, out = h0, []
    for x, limit in zip(xs, limits, strict=True):
        state = max(state, min(limit, state + x))
        out.append(state)
    return out


steps = st.lists(st.tuples(st.integers(0, 500), st.integers(0, 1000), st.integers(0, 2)), min_size=1, max_size=12)


@given(steps, st.integers(0, 800), st.booleans())
def test_closed_form_equals_recurrence(rows, h0, sort_limits) -> None:
    """Closed form (non-decreasing limits) and exact fallback (decreasing ones) both match the loop."""
    if sort_limits:
        limits = sorted(r[1] for r in rows)
        rows = [(x, lim, g) for (x, _, g), lim in zip(rows, limits, strict=True)]
    frame = pl.DataFrame({"g": [r[2] for r in rows], "x": [r[0] for r in rows], "l": [r[1] for r in rows],
                          "h": [h0] * len(rows)})
    out = clamped_cumsum(frame, x="x", limit="l", h0="h", group=["g"], out_before="b", out_after="a")
    for g in {r[2] for r in rows}:
        part = out.filter(pl.col("g") == g)
        want = reference(part["x"].to_list(), part["l"].to_list(), h0)
        assert part["a"].to_list() == want
        assert part["b"].to_list() == [h0, *want[:-1]]


def test_unlimited_is_a_plain_running_total() -> None:
    """Without a limit the state is the running total after the history."""
    frame = pl.DataFrame({"g": [1, 1, 1], "x": [5, 7, 9]})
    out = clamped_cumsum(frame, x="x", limit=None, h0=None, group=["g"], out_before="b", out_after="a")
    assert out["a"].to_list() == [5, 12, 21]
    assert out["b"].to_list() == [0, 5, 12]
