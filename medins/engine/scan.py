"""Segmented scans over NumPy Int64 arrays: the year-to-date state of a large frame in a few vector passes.

Why: the state columns of ``state.py`` (clamped cumulative sums, running maxima) are a handful of scans
per segment (one segment = one person-year bucket, rows in claim order). Written as Polars expressions
they need window-like tricks — forward fills of each segment's first value, an Int128 running minimum
pushed below every earlier segment — and cost most of the benefits stage. Over NumPy arrays the same
closed forms are a few passes each, in Int64: the segment offset of the running minimum fits an Int64
once values that cannot change the result are clipped away (see :func:`clamped`).

Exactness: integer arithmetic only, the same closed form, the same row-by-row check of the recurrence
and the same exact loop for a segment where the check fails as the Polars path of ``state.py``; a scan
whose values would not fit the Int64 offsets returns None and the caller takes the Polars path. Both
paths are tested to agree (tests/engine/test_scan.py). ``state.py`` uses this module only for frames of
at least ``state.NUMPY_ROWS`` rows, so settling one bill (``medins calc``) never imports NumPy.

All arrays are in segment order (each segment contiguous); ``starts`` marks each segment's first row.
"""

from __future__ import annotations

import numpy as np

_ROOM = 1 << 62  # segment offsets × segment count stay below this (Int64 with room for the values)


class Segments:
    """Where the segments of sorted rows start: each row's segment number, each segment's first row and length."""

    __slots__ = ("first", "lengths", "seg")

    def __init__(self, starts: np.ndarray) -> None:
        self.seg = np.cumsum(starts, dtype=np.int64) - 1
        self.first = np.flatnonzero(starts)
        self.lengths = np.diff(self.first, append=len(starts))

    def spread(self, per_segment: np.ndarray) -> np.ndarray:
        """One value per segment repeated over the segment's rows."""
        return np.repeat(per_segment, self.lengths)

    def offsets(self, span: int) -> np.ndarray | None:
        """``seg × span`` per row, or None when the last segment's offset would not fit with room."""
        if len(self.first) * span >= _ROOM:
            return None
        return self.seg * np.int64(span)


def shift_within(values: np.ndarray, segments: Segments, first_values: np.ndarray) -> np.ndarray:
    """Each row's previous row's value in its segment; ``first_values`` (one per segment) on a segment's first row."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[segments.first] = first_values
    return out


def running_sum(x: np.ndarray, segments: Segments) -> np.ndarray:
    """x[first] + … + x[i] within each row's segment."""
    total = np.cumsum(x)
    return total - segments.spread(total[segments.first] - x[segments.first])


def clamped(x: np.ndarray, limit: np.ndarray | None, h: np.ndarray, segments: Segments, *, unlimited: bool,
            unlimited_value: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(C[i-1], C[i]) of ``C[i] = max(C[i-1], min(L[i], C[i-1] + x[i]))`` from ``h`` (one per segment: its state
    before its first row); ``limit`` None: ``unlimited_value`` on every row.

    ``unlimited``: no limit and the sums provably never reach one (then C = h0 + running sum). Otherwise the
    closed form of ``state.py``: C[i] = S[i] + min(h0, min_{j ≤ i} (L'[j] − S[j])) with L' = max(L, h0) on rows
    adding something and ``unlimited_value`` elsewhere. The segmented running minimum uses Int64 offsets: a
    value above the largest h0 cannot change min(h0, ·) and is clipped to it, so values span [lo, max h0] and
    segment k is pushed down by k × (span + 1). None when that does not fit an Int64.
    """
    h0 = segments.spread(h)
    s = running_sum(x, segments)
    if unlimited:
        after = h0 + s
        return after - x, after
    unlimited_row = np.int64(unlimited_value)
    lp = np.where(x > 0, np.maximum(unlimited_row if limit is None else limit, h0), unlimited_row)
    values = np.minimum(lp - s, h.max())
    low = int(values.min())
    span = int(h.max()) - low + 1
    offset = segments.offsets(span)
    if offset is None:
        return None
    values -= low
    values -= offset
    running_min = np.minimum.accumulate(values)
    running_min += offset
    running_min += low
    after = s + np.minimum(h0, running_min)
    before = shift_within(after, segments, h)
    # The closed form holds while a segment's limits never decrease; check the recurrence on every row and
    # recompute the segments where it fails with the plain loop (as state.py does).
    bad = after != np.maximum(before, np.minimum(lp, before + x))
    if bad.any():
        _exact(after, x, lp, h0, segments, bad)
        before = shift_within(after, segments, h)
    return before, after


def _exact(after: np.ndarray, x: np.ndarray, lp: np.ndarray, h0: np.ndarray, segments: Segments,
           bad: np.ndarray) -> None:
    """Recompute ``after`` in place by the recurrence on every row of a segment with a bad row."""
    rows = np.flatnonzero(np.isin(segments.seg, np.unique(segments.seg[bad])))
    states: dict[int, int] = {}
    for r, seg, xi, lim, h in zip(rows.tolist(), segments.seg[rows].tolist(), x[rows].tolist(), lp[rows].tolist(),
                                  h0[rows].tolist(), strict=True):
        state = states.get(seg, h)
        state = max(state, min(lim, state + xi))
        states[seg] = state
        after[r] = state


def running_max_before(x: np.ndarray, h: np.ndarray, segments: Segments) -> np.ndarray | None:
    """max(h0, the largest x of the segment's earlier rows) per row; None when the offsets would not fit.

    A value below the smallest h0 cannot change max(h0, ·): values are clipped up to it, so they span
    [min h0, max] and segment k is pushed up by k × (span + 1).
    """
    low = int(h.min())
    values = np.maximum(x, low)
    span = int(values.max()) - low + 1
    offset = segments.offsets(span)
    if offset is None:
        return None
    values -= low
    values += offset
    running = np.maximum.accumulate(values)
    running -= offset
    running += low
    return np.maximum(segments.spread(h), shift_within(running, segments, h))
