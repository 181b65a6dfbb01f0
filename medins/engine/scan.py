"""Segmented scans over NumPy Int64 arrays: the year-to-date state of a large frame in a few vector passes.

Why: the state columns of ``state.py`` (clamped cumulative sums, running maxima) are a handful of scans
per segment (one segment = one person-year bucket, rows in claim order). Written as Polars expressions
they need window-like tricks — forward fills of each segment's first value, an Int128 running minimum
pushed below every earlier segment — and cost most of the benefits stage. Over NumPy arrays the same
closed forms are a few passes each, in Int64: the segment offset of the running minimum fits an Int64
once values that cannot change the result are clipped away (see :func:`clamped`).

Why a workspace: every pass writes into arrays reused from scan to scan (:class:`Workspace`), not fresh
ones. A fresh array of a quarter-million rows is fresh memory the kernel must fault in page by page (the C
allocator hands large blocks back to the system when they are freed); that cost alone made allocating
scans slower than the Polars expressions they replace.

Exactness: integer arithmetic only, the same closed form, the same row-by-row check of the recurrence
and the same exact loop for a segment where the check fails as the Polars path of ``state.py``; a scan
whose values would not fit the Int64 offsets returns None and the caller takes the Polars path. Both
paths are tested to agree (tests/engine/test_scan.py). ``state.py`` uses this module only for frames of
at least ``state.NUMPY_ROWS`` rows, so settling one bill (``medins calc``) never imports NumPy.

All arrays are in segment order (each segment contiguous); ``starts`` marks each segment's first row.
Results are views of the workspace: the caller copies them out before the next scan.
"""

from __future__ import annotations

import threading

import numpy as np

_ROOM = 1 << 62  # segment offsets × segment count stay below this (Int64 with room for the values)
_LOCAL = threading.local()


class Workspace:
    """Int64 (and one Boolean) arrays of one length, reused by every scan of this thread on frames of that length.

    One per thread, its arrays as long as the longest frame so far: a shorter frame (a batch's last partition, the
    next partition of a few rows less) scans in views of their first rows, so the memory the kernel has mapped
    in for one partition serves the next — a fresh array per partition is paid again in page faults."""

    def __init__(self, n: int, capacity: Workspace | None = None) -> None:
        self.n = n
        self.full: list[np.ndarray] = [] if capacity is None else capacity.full
        self.full_mask = np.empty(n, dtype=bool) if capacity is None else capacity.full_mask
        self.size = n if capacity is None else capacity.size
        self.arrays = [array[:n] for array in self.full]
        self.mask = self.full_mask[:n]

    def __getitem__(self, i: int) -> np.ndarray:
        while len(self.arrays) <= i:
            self.full.append(np.empty(self.size, dtype=np.int64))
            self.arrays.append(self.full[-1][:self.n])
        return self.arrays[i]

    @staticmethod
    def of(n: int) -> Workspace:
        space = getattr(_LOCAL, "space", None)
        if space is None or space.size < n:
            space = _LOCAL.space = Workspace(n)
        elif space.n != n:
            space = _LOCAL.space = Workspace(n, capacity=space)
        return space


# Workspace slots: inputs first (filled by the caller), then the scans' own.
X, LIMIT, H0, SUM, LP, VALUES, BEFORE, CHECK = range(8)


class Segments:
    """Where the segments of sorted rows start: each row's segment number and each segment's first row."""

    __slots__ = ("first", "n", "seg")

    def __init__(self, starts: np.ndarray) -> None:
        self.n = len(starts)
        self.seg = np.cumsum(starts, dtype=np.int64)
        self.seg -= 1
        self.first = np.flatnonzero(starts)

    def spread(self, per_segment: np.ndarray, out: np.ndarray) -> np.ndarray:
        """One value per segment on each of the segment's rows."""
        return np.take(per_segment, self.seg, out=out)

    def span_fits(self, span: int) -> bool:
        """Whether ``seg × span`` fits with room for the values on every row."""
        return len(self.first) * span < _ROOM


def per_row(per_segment: np.ndarray, segments: Segments, out: np.ndarray) -> np.ndarray | np.int64:
    """:meth:`Segments.spread`, or the one value itself when every segment has it (a batch without history: NumPy
    broadcasts it in every pass that reads it, and no pass spreads it)."""
    if len(per_segment) and per_segment.min() == per_segment.max():
        return per_segment[0]
    return segments.spread(per_segment, out)


def shift_within(values: np.ndarray, segments: Segments, first_values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Each row's previous row's value in its segment; ``first_values`` (one per segment) on a segment's first row."""
    out[1:] = values[:-1]
    out[segments.first] = first_values
    return out


def running_sum(x: np.ndarray, segments: Segments, space: Workspace) -> np.ndarray:
    """x[first] + … + x[i] within each row's segment (in ``space[SUM]``; uses ``space[VALUES]``)."""
    total = np.cumsum(x, out=space[SUM])
    base = total[segments.first] - x[segments.first]
    return np.subtract(total, segments.spread(base, space[VALUES]), out=total)


def clamped(x: np.ndarray, limit: np.ndarray | None, h: np.ndarray, segments: Segments, space: Workspace, *,
            unlimited: bool, unlimited_value: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(C[i-1], C[i]) of ``C[i] = max(C[i-1], min(L[i], C[i-1] + x[i]))`` from ``h`` (one per segment: its state
    before its first row); ``limit`` None: ``unlimited_value`` on every row.

    ``unlimited``: no limit and the sums provably never reach one (then C = h0 + running sum). Otherwise the
    closed form of ``state.py``: C[i] = S[i] + min(h0, min_{j ≤ i} (L'[j] − S[j])) with L' = max(L, h0) on rows
    adding something and ``unlimited_value`` elsewhere. The segmented running minimum uses Int64 offsets: a
    value above the largest h0 cannot change min(h0, ·) and is clipped to it, so values span [lo, max h0] and
    segment k is pushed down by k × (span + 1). None when that does not fit an Int64.
    """
    s = running_sum(x, segments, space)
    h0 = per_row(h, segments, space[H0])
    if unlimited:
        after = np.add(h0, s, out=space[VALUES])
        return np.subtract(after, x, out=space[BEFORE]), after
    unlimited_row = np.int64(unlimited_value)
    lp = np.maximum(h0, unlimited_row if limit is None else limit, out=space[LP])
    # ``unlimited_value`` on the rows adding nothing: lp ^ ((lp ^ unlimited) & m), m all ones there and 0 elsewhere
    # (bitwise, so exact; a masked copy branches on every row and costs several of these passes)
    ones = np.subtract(0, np.less_equal(x, 0, out=space.mask), dtype=np.int64, out=space[CHECK])
    flip = np.bitwise_xor(lp, unlimited_row, out=space[VALUES])
    np.bitwise_xor(lp, np.bitwise_and(flip, ones, out=flip), out=lp)
    values = np.subtract(lp, s, out=space[VALUES])
    top = int(h.max())
    np.minimum(values, top, out=values)
    low = int(values.min())
    span = top - low + 1
    if not segments.span_fits(span):
        return None
    offset = np.multiply(segments.seg, span, out=space[BEFORE])
    values -= low
    values -= offset
    running_min = np.minimum.accumulate(values, out=values)
    running_min += offset
    running_min += low
    after = np.add(s, np.minimum(h0, running_min, out=running_min), out=running_min)
    before = shift_within(after, segments, h, space[BEFORE])
    # The closed form holds while a segment's limits never decrease; check the recurrence on every row and
    # recompute the segments where it fails with the plain loop (as state.py does).
    check = np.add(before, x, out=space[CHECK])
    np.minimum(lp, check, out=check)
    np.maximum(before, check, out=check)
    bad = np.not_equal(after, check, out=space.mask)
    if bad.any():
        _exact(after, x, lp, np.broadcast_to(h0, x.shape), segments, bad)
        before = shift_within(after, segments, h, space[BEFORE])
    return before, after


def _exact(after: np.ndarray, x: np.ndarray, lp: np.ndarray, h0: np.ndarray, segments: Segments,
           bad: np.ndarray) -> None:
    """Recompute ``after`` in place by the recurrence on every row of a segment with a bad row."""
    broken = np.zeros(len(segments.first), dtype=bool)
    broken[segments.seg[bad]] = True
    rows = np.flatnonzero(broken[segments.seg])
    states: dict[int, int] = {}
    for r, seg, xi, lim, h in zip(rows.tolist(), segments.seg[rows].tolist(), x[rows].tolist(), lp[rows].tolist(),
                                  h0[rows].tolist(), strict=True):
        state = states.get(seg, h)
        state = max(state, min(lim, state + xi))
        states[seg] = state
        after[r] = state


def running_max_before(x: np.ndarray, h: np.ndarray, segments: Segments, space: Workspace) -> np.ndarray | None:
    """max(h0, the largest x of the segment's earlier rows) per row; None when the offsets would not fit.

    A value below the smallest h0 cannot change max(h0, ·): values are clipped up to it, so they span
    [min h0, max] and segment k is pushed up by k × (span + 1).
    """
    low = int(h.min())
    values = np.maximum(x, low, out=space[VALUES])
    span = int(values.max()) - low + 1
    if not segments.span_fits(span):
        return None
    offset = np.multiply(segments.seg, span, out=space[LP])
    values -= low
    values += offset
    running = np.maximum.accumulate(values, out=values)
    running -= offset
    running += low
    before = shift_within(running, segments, h, space[BEFORE])
    return np.maximum(before, per_row(h, segments, space[H0]), out=before)
