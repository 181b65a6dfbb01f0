"""The NumPy segmented scans (``scan.py``, frames of ``NUMPY_ROWS`` rows and more) give exactly what the Polars
path of ``state.py`` (smaller frames) and the plain recurrence give: one engine, whatever the frame's size.

Why with NUMPY_ROWS moved: the same few rows go through both paths, so that hypothesis can look for a
difference on small cases — several segments in shuffled rows, single-row segments, limits reached exactly,
zero amounts, decreasing limits (the exact loop), histories above the limit, and values so large that the
NumPy offsets would not fit (then the Polars path is taken).
"""

from __future__ import annotations

from contextlib import contextmanager

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import medins.engine.state as state
from medins.engine.state import SEQUENCE, UNLIMITED, clamped_cumsum, group_order, running_max_before


@contextmanager
def numpy_from(rows: int):
    saved = state.NUMPY_ROWS
    state.NUMPY_ROWS = rows
    try:
        yield
    finally:
        state.NUMPY_ROWS = saved


def reference(frame: pl.DataFrame) -> tuple[list[int], list[int]]:
    """The recurrence, claim by claim in (group, _seq) order, in frame order."""
    before, after = [0] * frame.height, [0] * frame.height
    states: dict[int, int] = {}
    for i, (g, _seq, x, limit, h) in sorted(enumerate(frame.select("g", SEQUENCE, "x", "l", "h").rows()),
                                           key=lambda r: (r[1][0], r[1][1])):
        c = states.get(g, h or 0)
        before[i] = c
        c = max(c, min(UNLIMITED if limit is None else limit, c + x))
        states[g] = after[i] = c
    return before, after


amount = st.one_of(st.just(0), st.integers(0, 500), st.sampled_from([1, 100, 1000]))
rows = st.lists(st.tuples(st.integers(0, 5), amount, st.one_of(st.none(), st.integers(0, 1200)),
                          st.one_of(st.none(), st.integers(0, 900))), min_size=1, max_size=40)


def frame_of(rows: list[tuple], order: list[int]) -> pl.DataFrame:
    """Rows in shuffled frame order; ``_seq`` their place in the order state flows in; a group's history is
    the one on its first row in that order (as settle.py hands it)."""
    first: dict[int, int | None] = {}
    for g, _x, _l, h in rows:
        first.setdefault(g, h)
    frame = pl.DataFrame({"g": [r[0] for r in rows], "x": [r[1] for r in rows], "l": [r[2] for r in rows],
                          "h": [first[r[0]] for r in rows], SEQUENCE: list(range(len(rows)))},
                         schema={"g": pl.Int64, "x": pl.Int64, "l": pl.Int64, "h": pl.Int64, SEQUENCE: pl.Int64})
    return frame[order]


@st.composite
def frames(draw) -> pl.DataFrame:
    drawn = draw(rows)
    if draw(st.booleans()):  # limits reached exactly: a limit equal to the running total
        total: dict[int, int] = {}
        for i, (g, x, _l, h) in enumerate(drawn):
            total[g] = total.get(g, 0) + x
            if draw(st.booleans()):
                drawn[i] = (g, x, total[g], h)
    order = draw(st.permutations(range(len(drawn))))
    return frame_of(drawn, list(order))


def both(frame: pl.DataFrame, **kwargs) -> tuple[pl.DataFrame, pl.DataFrame]:
    with numpy_from(10**9):
        small = clamped_cumsum(frame, group=["g"], out_before="b", out_after="a", **kwargs)
    with numpy_from(1):
        large = clamped_cumsum(frame, group=["g"], out_before="b", out_after="a", **kwargs)
    return small, large


@settings(max_examples=300, deadline=None)
@given(frames())
def test_numpy_scan_equals_polars_path_and_recurrence(frame) -> None:
    small, large = both(frame, x="x", limit="l", h0="h")
    assert large.equals(small)
    want_before, want_after = reference(frame)
    assert large["b"].to_list() == want_before
    assert large["a"].to_list() == want_after


@settings(max_examples=150, deadline=None)
@given(frames())
def test_numpy_scan_without_a_limit_or_history(frame) -> None:
    for limit, h0 in ((None, "h"), (None, None), ("l", None)):
        small, large = both(frame, x="x", limit=limit, h0=h0)
        assert large.equals(small)


@settings(max_examples=100, deadline=None)
@given(frames(), st.integers(0, 3))
def test_numpy_scan_with_a_shared_grouping(frame, repeat) -> None:
    """One grouping (its segments worked out once) serves several state columns, as in settle_benefits."""
    with numpy_from(1):
        grouping = group_order(frame, ["g"])
        outs = [clamped_cumsum(frame, x="x", limit="l", h0="h", group=["g"], out_before="b", out_after="a",
                               grouping=grouping) for _ in range(repeat + 1)]
    small, _ = both(frame, x="x", limit="l", h0="h")
    assert all(out.equals(small) for out in outs)


@settings(max_examples=60, deadline=None)
@given(frames(), st.sampled_from([UNLIMITED - 1, 1 << 61, 1 << 62]))
def test_values_beyond_the_offsets_take_the_polars_path(frame, big) -> None:
    """Histories or limits so large that the Int64 offsets would overflow: still the same values."""
    frame = frame.with_columns(h=pl.when(pl.col("g") == 0).then(big).otherwise(pl.col("h")))
    small, large = both(frame, x="x", limit="l", h0="h")
    assert large.equals(small)


@settings(max_examples=150, deadline=None)
@given(frames())
def test_numpy_running_max_equals_polars_path(frame) -> None:
    kwargs = dict(x="x", h0="h", group=["g"], out="m")
    with numpy_from(10**9):
        small = running_max_before(frame, **kwargs)
    with numpy_from(1):
        large = running_max_before(frame, **kwargs)
    assert large.equals(small)
    # and the plain loop: the largest x of the group's earlier claims, at least the history
    for g in set(frame["g"].to_list()):
        part = frame.filter(pl.col("g") == g).sort(SEQUENCE)
        seen, want = part["h"][0] or 0, []
        for x in part["x"].to_list():
            want.append(seen)
            seen = max(seen, x)
        got = large.filter(pl.col("g") == g).sort(SEQUENCE)["m"].to_list()
        assert got == want


def test_frames_of_a_few_rows_do_not_import_numpy() -> None:
    """Settling a bill (one row) keeps to Polars: ``medins calc`` does not pay for importing NumPy
    (tests/test_startup_imports.py checks the command itself)."""
    import subprocess
    import sys

    code = ("import sys, polars as pl; from medins.engine.state import clamped_cumsum, running_max_before;"
            "f = pl.DataFrame({'g': [1, 1], 'x': [5, 7], 'l': [9, 9], 'h': [1, 1]});"
            "clamped_cumsum(f, x='x', limit='l', h0='h', group=['g'], out_before='b', out_after='a');"
            "running_max_before(f, x='x', h0='h', group=['g'], out='m');"
            "assert 'numpy' not in sys.modules, 'numpy imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["a", "b", None])), min_size=1, max_size=40),
       st.data(), st.booleans())
def test_large_frames_group_by_sequence_as_the_sort_does(groups, data, permutation) -> None:
    """A large frame's grouping (rows taken in ``_seq`` order, then a stable sort of the nearly sorted keys) is the
    permutation the sort by key × n + seq gives — or none, where the frame already is in that order — and a
    ``_seq`` that does not number the rows 0 … n−1 (a number twice) takes the sort."""
    n = len(groups)
    seq = data.draw(st.permutations(range(n))) if permutation else data.draw(st.lists(st.integers(0, n), min_size=n,
                                                                                       max_size=n))
    frame = pl.DataFrame({"p": [g for g, _b in groups], "b": [b for _g, b in groups], SEQUENCE: seq},
                         schema={"p": pl.Int64, "b": pl.String, SEQUENCE: pl.Int64})
    key = state._dense_key(frame, ["p", "b"])
    with numpy_from(1):
        large = state._order_by_sequence(key, frame[SEQUENCE])
    with numpy_from(10**9):
        small = group_order(frame.with_columns(_key=key), ["_key"])
    if large is None:
        assert not permutation
        return
    assert (large[0] is None) == (small[0] is None)
    if large[0] is not None:
        assert large[0].to_list() == small[0].to_list()


def test_a_shorter_frame_scans_in_views_of_the_longest_frames_workspace() -> None:
    """The workspace keeps the longest frame's arrays (a batch's partitions reuse them): a shorter frame gets views
    of their first rows, a longer one fresh arrays, and every scan gives what the recurrence gives."""
    from medins.engine import scan

    long, short = scan.Workspace.of(50), scan.Workspace.of(20)
    assert short[scan.X].base is long.full[scan.X]  # a view of the longer frame's array
    assert len(short[scan.X]) == 20 and len(short.mask) == 20 and scan.Workspace.of(80).size == 80
    for n in (40, 7, 40, 90, 3):
        frame = frame_of([(i % 4, (i * 37) % 500, None if i % 3 else 700, None) for i in range(n)], list(range(n)))
        _small, large = both(frame, x="x", limit="l", h0="h")
        assert (large["b"].to_list(), large["a"].to_list()) == reference(frame)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-50, 500), st.sampled_from([None, 0, 7, UNLIMITED - 100])),
                min_size=1, max_size=30), st.sampled_from([1, 10**9]))
def test_a_sum_never_clipped_gives_each_row_its_amount(drawn, numpy_rows) -> None:
    """``benefits._never_clipped``: where it holds (no negative amount, no history plus running sum near
    ``UNLIMITED``), the state column without a limit gives every row exactly its amount (after − before = x) —
    what settle_benefits takes for ``eligible`` when no rule has a ceiling, without the scan."""
    from medins.engine.benefits import _never_clipped

    frame = frame_of([(g, x, None, h) for g, x, h in drawn], list(range(len(drawn))))
    if not _never_clipped(frame, "x", "h"):
        assert min(x for _g, x, _h in drawn) < 0 or max(h or 0 for _g, _x, h in drawn) > 1 << 59
        return
    with numpy_from(numpy_rows):
        out = clamped_cumsum(frame, x="x", limit="l", h0="h", group=["g"], out_before="b", out_after="a")
    assert (out["a"] - out["b"]).to_list() == frame["x"].to_list()


signed_rows = st.lists(st.tuples(st.integers(0, 4), st.one_of(st.just(0), st.integers(-300, 500)),
                                 st.one_of(st.none(), st.integers(-200, 1200), st.just(UNLIMITED + 5)),
                                 st.none()), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(signed_rows, st.data(), st.one_of(st.none(), st.integers(-50, 900)))
def test_one_history_for_every_group_and_rows_adding_nothing(drawn, data, history) -> None:
    """Every group with the same history (a batch without history: the scan broadcasts the one value instead of
    spreading it), negative amounts and rows adding nothing (their limit set to "none" bit by bit), negative limits
    and limits above ``UNLIMITED``: the Polars path's values, which are the recurrence's."""
    order = data.draw(st.permutations(range(len(drawn))))
    frame = frame_of(drawn, list(order)).with_columns(h=pl.lit(history, pl.Int64))
    small, large = both(frame, x="x", limit="l", h0="h")
    assert large.equals(small)
    want_before, want_after = reference(frame)
    assert large["b"].to_list() == want_before
    assert large["a"].to_list() == want_after
    kwargs = dict(x="x", h0="h", group=["g"], out="m")
    with numpy_from(10**9):
        expected = running_max_before(frame, **kwargs)
    with numpy_from(1):
        assert running_max_before(frame, **kwargs).equals(expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([1, 2, None])), min_size=1, max_size=40),
       st.data())
def test_groupings_of_one_frame_share_its_sequence_positions(groups, data) -> None:
    """``group_order`` given the frame's ``sequence_positions`` (benefits works them out once for every grouping)
    is the grouping it works out alone, its segments (kept from the sort) those of the keys in its order.
    (Integer group columns, as benefits' are: a text column's codes are numbered in no fixed order.)"""
    n = len(groups)
    frame = pl.DataFrame({"p": [g for g, _b in groups], "b": [b for _g, b in groups],
                          SEQUENCE: data.draw(st.permutations(range(n)))},
                         schema={"p": pl.Int64, "b": pl.Int64, SEQUENCE: pl.Int64})
    with numpy_from(1):
        positions = state.sequence_positions(frame[SEQUENCE])
        shared = group_order(frame, ["p", "b"], positions=positions)
        alone = group_order(frame, ["p", "b"])
    assert positions is not None
    assert (shared[0] is None) == (alone[0] is None)
    if alone[0] is not None:
        assert shared[0].to_list() == alone[0].to_list()
    assert shared[1].equals(alone[1])
    kept, worked_out = shared.segments(), state.Grouping(*alone).segments()
    assert (kept[0] is None) == (worked_out[0] is None)
    if kept[0] is not None:
        assert kept[0].tolist() == worked_out[0].tolist()
    assert kept[1].seg.tolist() == worked_out[1].seg.tolist()
    assert kept[1].first.tolist() == worked_out[1].first.tolist()
