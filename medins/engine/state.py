"""Year-to-date state as column operations: the clamped cumulative sum.

Why: caps, yearly deductibles, eligible-expense ceilings and account balances all follow one
recurrence over a person's claims in (date, input row) order::

    C[0] = h0                                   # state before the first claim (a bill's history)
    C[i] = max(C[i-1], min(L[i], C[i-1] + x[i]))  # x ≥ 0 added, never beyond the limit L

and the claim's share is ``C[i] - C[i-1]`` (what the cap still allowed, what of the deductible was
still due …). Looping over claims in Python would be far too slow for a year of claims, but when
the limits never decrease within a group the recurrence has a closed form::

    L'[i] = max(L[i], h0);   S[i] = x[1] + … + x[i]
    C[i]  = S[i] + min(h0, min_{j ≤ i} (L'[j] − S[j]))

(proof: unroll ``C[i] = min(L'[i], C[i-1] + x[i])``). It is computed on contiguous segments — the
rows sorted by group — with plain running sums, and the segmented running minimum is a single
global ``cum_min`` after pushing each later segment below every earlier one (an Int128 offset), so
no per-group window is needed: a million claims of hundreds of thousands of persons take a fraction
of a second. A row that adds nothing (x = 0) leaves the state as it is whatever its limit, so its
limit is left out of the minimum (a rejected claim without a cap between two capped ones does not
break the closed form). Every row's state is then checked against the recurrence from the previous
row's; a group where it does not hold (possible only where limits decrease among the rows that add
something, a cap lowered mid-year: rare) is recomputed by the exact loop, so the answer is always
exact. Without a limit (and sums far below ``UNLIMITED``) the state is the history plus the running
sum, with no minimum at all. A single bill is a group of one row.

Rows are grouped through one Int64 key (the group columns' dense codes by place value) and one
stable sort by it, within a group by the frame's ``SEQUENCE`` column when it has one (settle keeps
claims in input order and says there which order state flows in) — skipped when the groups already
are runs of the frame in that order; :func:`group_order` can be computed once and passed to every
state column of the same grouping, which also puts each result back in frame order with one gather.

Frames of at least ``NUMPY_ROWS`` rows (a batch's partitions) are scanned over NumPy arrays instead
(``scan.py``: the same closed form, check and exact loop, with Int64 segment offsets; the grouping's
permutation and segments worked out once): the Polars expressions below remain for small frames (a bill,
so ``calc`` never imports NumPy) and for values too large for the Int64 offsets. Both give the same
values (tests/engine/test_scan.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from medins.engine.codes import replace_columns
from medins.engine.fused import repeat

if TYPE_CHECKING:
    import numpy as np

    from medins.engine.scan import Segments

#: Stands for "no limit" in Int64 fen arithmetic (far above any real amount, far below overflow).
UNLIMITED = 1 << 60
_SEGMENT = 1 << 63  # segment offset for the segmented running minimum (values stay within ±2^62)

#: Frames of at least this many rows keep their state by NumPy scans (``scan.py``); smaller ones (a bill, a
#: test's few claims) by Polars expressions, so that ``medins calc`` never imports NumPy. Both give the same
#: values (tests/engine/test_scan.py): below this size the Polars path costs well under a millisecond.
NUMPY_ROWS = 4096


#: A frame's column giving the order its rows' state flows in (the claims' place in (person, date, row)
#: order, settle.py); without it, frame order.
SEQUENCE = "_seq"

class Grouping(tuple):
    """A grouping computed by :func:`group_order`: (permutation or None, key in frame order).

    Why a class: every state column of a grouping puts its values back in frame order; the inverse
    permutation is computed once (a scatter) and then each column is one gather instead of a scatter.
    """

    def __new__(cls, order: pl.Series | None, key: pl.Series) -> Grouping:
        return super().__new__(cls, (order, key))

    def unorder(self, values: pl.Series) -> pl.Series:
        """Values computed in the grouping's order back to frame order."""
        order = self[0]
        if order is None:
            return values
        inverse = self.__dict__.get("inverse")
        if inverse is None:
            inverse = self.__dict__["inverse"] = _unorder(pl.int_range(0, order.len(), dtype=pl.UInt32, eager=True),
                                                          order)
        return values.gather(inverse)

    def segments(self) -> tuple[np.ndarray | None, Segments]:
        """The permutation as a NumPy array (None: frame order) and the segments of the sorted rows.

        Why cached: every state column of the grouping sorts its few columns by the same permutation and
        scans the same segments; both are worked out once per grouping (``scan.py``).
        """
        cached = self.__dict__.get("_segments")
        if cached is None:
            import numpy as np

            order, key = self
            positions = None if order is None else order.to_numpy().astype(np.intp)
            codes = key.to_numpy()
            if positions is not None:
                codes = codes[positions]
            cached = self.__dict__["_segments"] = (positions, _segments_of(codes))
        return cached

    def sorted_values(self, column: pl.Series, out: np.ndarray) -> np.ndarray:
        """An Int64 column (no nulls) as a NumPy array in the grouping's order (written into ``out`` when the
        rows move; frame order is the column's own buffer, read only)."""
        import numpy as np

        positions = self.segments()[0]
        values = column.to_numpy()
        return values if positions is None else np.take(values, positions, out=out)

    def first_values(self, column: pl.Series) -> np.ndarray | None:
        """An integer column (nulls as 0) on each segment's first row, as a NumPy Int64 array (one value per
        segment); None when the column is not of integers."""
        if not (column.dtype.is_integer() or column.dtype == pl.Null):
            return None
        positions, segments = self.segments()
        low, high = column.min(), column.max()  # Series reductions: a column of one value (no history) needs no gather
        if column.null_count() in (0, column.len()) and low == high:
            import numpy as np

            return np.full(len(segments.first), int(low or 0), dtype=np.int64)
        rows = segments.first if positions is None else positions[segments.first]
        return column.gather(rows).fill_null(0).cast(pl.Int64).to_numpy()

    def first_rows(self) -> pl.Series:
        """For each row (frame order), the frame position of its group's first row in the grouping's order, of Polars'
        index type (a gather by an Int64 column converts it to that type first, checking every row, each time)."""
        import numpy as np

        positions, segments = self.segments()
        if positions is None:
            return _index_series(segments.first[segments.seg])
        rows = np.empty(segments.n, dtype=np.int64)
        rows[positions] = positions[segments.first][segments.seg]
        return _index_series(rows)

    def unsorted(self, name: str, values: np.ndarray) -> pl.Series:
        """Values in the grouping's order (a view of a scan's workspace) back to frame order, as a new Int64
        series: scattered to their rows by the permutation the scan sorted by (no inverse permutation to work
        out, and a NumPy scatter costs less than a Polars gather); in frame order they are copied."""
        import numpy as np

        positions = self.segments()[0]
        if positions is None:
            out = values.copy()
        else:
            out = np.empty(len(values), dtype=np.int64)
            out[positions] = values
        return pl.Series(name, out, dtype=pl.Int64)


def _index_series(positions: np.ndarray) -> pl.Series:
    """Row positions (a NumPy integer array, each in 0 … n−1) as a Series of Polars' index type, cast by NumPy.

    Why: Polars' own cast of an Int64 array to UInt32 checks each value (~11 instructions a row, callgrind); NumPy's
    cast of values known to fit is a plain pass, and the UInt32 array is taken over as it is."""
    import numpy as np

    index = pl.get_index_type()
    return pl.Series(positions.astype(np.uint32 if index == pl.UInt32 else np.uint64, copy=False), dtype=index)


def _segments_of(codes: np.ndarray) -> Segments:
    """The segments of keys in a grouping's order (a segment: a run of one key)."""
    import numpy as np

    from medins.engine.scan import Segments

    starts = np.empty(len(codes), dtype=bool)
    starts[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=starts[1:])
    return Segments(starts)


def _grouping_of(grouping: tuple | None, frame: pl.DataFrame, group: list[str]) -> Grouping:
    if grouping is None:
        return group_order(frame, group)
    return grouping if isinstance(grouping, Grouping) else Grouping(*grouping)


def clamped_cumsum(
    frame: pl.DataFrame,
    *,
    x: str,
    limit: str | None,
    h0: str | None,
    group: list[str],
    out_before: str,
    out_after: str,
    grouping: Grouping | None = None,
) -> pl.DataFrame:
    """Add columns ``out_before`` = C[i-1] and ``out_after`` = C[i] (Int64) to ``frame``.

    Rows of a group are taken in frame order. ``x`` is a non-negative Int64 column; ``limit`` an
    Int64 column (null = unlimited) or None; ``h0`` the column holding the state before the group's
    first claim (read from that first row) or None for 0. ``grouping``: ``group_order(frame, group)``
    when the caller already has it.
    """
    grouping = _grouping_of(grouping, frame, group)
    if limit is not None and frame[limit].null_count() == frame.height and _not_negative(frame[x]):
        # No row has a limit and nothing is taken away: exactly the unlimited sum (the closed form with every
        # limit at UNLIMITED gives h0 + S while the sums stay below it, and is taken as is otherwise).
        limit = None
    if frame.height >= NUMPY_ROWS:
        scanned = _clamped_numpy(frame, x, limit, h0, grouping)
        if scanned is not None:
            return replace_columns(frame, [], grouping.unsorted(out_before, scanned[0]),
                                   grouping.unsorted(out_after, scanned[1]))
    order, key = grouping
    # One query from here to the result (the grouping's order a gather in it), but where the closed form is checked.
    work = frame.lazy().select(pl.col(x).alias("_x"),
                               (pl.col(limit).fill_null(UNLIMITED) if limit else pl.lit(UNLIMITED, pl.Int64)).alias("_l"),
                               (pl.col(h0).fill_null(0) if h0 else pl.lit(0, pl.Int64)).alias("_h"),
                               pl.lit(key).alias("_key"))
    if order is not None:
        work = work.select(pl.all().gather(order))
    start = pl.col("_key").ne_missing(pl.col("_key").shift(1)).fill_null(True)
    g = pl.col("_x").cum_sum()
    work = work.with_columns(_start=start).with_columns(
        _h0=pl.when("_start").then(pl.col("_h")).forward_fill(),
        _s=g - pl.when("_start").then(g - pl.col("_x")).forward_fill(),  # the running sum within the segment
    )
    before = pl.when("_start").then(pl.col("_h0")).otherwise(pl.col("_after").shift(1))
    if limit is None and _running_total_fits(frame, x, h0):
        # No limit and the sums stay below it: the state is the history plus the running sum.
        work = work.select(_before=(pl.col("_h0") + pl.col("_s") - pl.col("_x")),
                           _after=pl.col("_h0") + pl.col("_s")).collect()
    else:
        # a row adding nothing keeps the state whatever its limit: leave it out of the minimum
        work = work.with_columns(_lp=pl.when(pl.col("_x") > 0).then(pl.max_horizontal("_l", "_h0")).otherwise(UNLIMITED),
                                 _seg=pl.col("_start").cast(pl.Int64).cum_sum())
        offset = pl.col("_seg").cast(pl.Int128) * _SEGMENT
        running_min = ((pl.col("_lp") - pl.col("_s")).cast(pl.Int128) - offset).cum_min() + offset
        work = work.with_columns(_after=pl.col("_s") + pl.min_horizontal(pl.col("_h0"), running_min.cast(pl.Int64)))
        # The closed form holds while the limits of a segment's adding rows never decrease. Rather than look for
        # a decrease, check the recurrence itself on every row: where the closed form's state follows from its
        # previous state, it is the recurrence's state (by induction from the history); a segment where it does
        # not is recomputed by the loop.
        work = work.with_columns(_before=before).with_columns(
            _bad=pl.col("_after")
            != pl.max_horizontal("_before", pl.min_horizontal("_lp", pl.col("_before") + pl.col("_x"))))
        work = work.collect()
        if work["_bad"].any():
            work = _exact_fallback(work).with_columns(_before=before)
    # one chunk each: see fused.collected
    before_col, after_col = grouping.unorder(work["_before"].rechunk()), grouping.unorder(work["_after"].rechunk())
    return replace_columns(frame, [], before_col.alias(out_before), after_col.alias(out_after))


def _not_negative(column: pl.Series) -> bool:
    return column.null_count() == 0 and (column.min() or 0) >= 0  # type: ignore[operator]


def _int64(frame: pl.DataFrame, name: str, default: int) -> pl.Series | None:
    """Column ``name`` with nulls as ``default``, as Int64 (None: not an integer column)."""
    column = frame[name]
    if not (column.dtype.is_integer() or column.dtype == pl.Null):
        return None
    if column.dtype == pl.Int64 and not column.null_count():
        return column
    return column.fill_null(default).cast(pl.Int64)


def _clamped_numpy(frame: pl.DataFrame, x: str, limit: str | None, h0: str | None,
                   grouping: Grouping) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`clamped_cumsum`'s (before, after) by ``scan.clamped``, in the grouping's order; None when the
    columns or their range are not for it (then the Polars path, which gives the same values, is taken)."""
    import numpy as np

    from medins.engine import scan

    xs = frame[x]
    limits = None if limit is None else _int64(frame, limit, UNLIMITED)
    segments = grouping.segments()[1]
    h = np.zeros(len(segments.first), dtype=np.int64) if h0 is None else grouping.first_values(frame[h0])
    if xs.dtype != pl.Int64 or xs.null_count() or (limit and limits is None) or h is None:
        return None
    space = scan.Workspace.of(frame.height)
    x_sorted = grouping.sorted_values(xs, space[scan.X])
    unlimited = limit is None and _sums_fit(x_sorted, h)
    return scan.clamped(x_sorted, None if limits is None else grouping.sorted_values(limits, space[scan.LIMIT]), h,
                        segments, space, unlimited=unlimited, unlimited_value=UNLIMITED)


def _sums_fit(x: np.ndarray, h: np.ndarray) -> bool:
    """:func:`_running_total_fits` on NumPy arrays: the largest history plus Σ|x| below ``UNLIMITED``."""
    top = max(int(h.max()), 0) if len(h) else 0
    if not len(x):
        return top < UNLIMITED
    low, high = int(x.min()), int(x.max())
    if max(-low, high) * len(x) < 1 << 62:  # the Int64 sum is then exact
        return top + (int(x.sum()) if low >= 0 else int(abs(x).sum())) < UNLIMITED
    return top + sum(abs(v) for v in x.tolist()) < UNLIMITED


def _running_total_fits(frame: pl.DataFrame, x: str, h0: str | None) -> bool:
    """Whether every history plus every running sum of ``x`` stays below ``UNLIMITED`` (any real claims):
    then a sum without a limit is never clipped and needs no running minimum."""
    if frame.height == 0:
        return True
    # Series reductions, not a query: the largest history (nulls as 0, at least 0) and Σ|x| in Int128.
    top = max(int(frame[h0].max() or 0), 0) if h0 else 0
    column = frame[x]
    if column.dtype == pl.Int64 and _not_negative(column) and int(column.max() or 0) * column.len() < 1 << 62:
        return top + int(column.sum() or 0) < UNLIMITED  # the sum in the column's own type is exact: no Int128 copy
    xs = column.cast(pl.Int128)
    spread = xs.sum() if _not_negative(column) else xs.abs().sum()
    return top + int(spread or 0) < UNLIMITED


def group_order(frame: pl.DataFrame, group: list[str], *, positions: np.ndarray | None = None) -> Grouping:
    """The stable permutation that makes each group contiguous, its rows in ``SEQUENCE`` order when the
    frame has that column (None when the groups already are runs of the frame in that order), and a
    key, in frame order, equal exactly on rows of the same group.

    Why one integer key: sorting a million rows by several columns (strings among them) costs ten
    times a sort by one Int64; the key is the group columns' dense codes combined by place value.

    ``positions``: :func:`sequence_positions` of the frame's ``SEQUENCE``, when the caller has it (groupings of
    one frame share it: a scatter of every row each otherwise).
    """
    key = _dense_key(frame, group)
    seq = frame[SEQUENCE] if SEQUENCE in frame.columns else None
    if key is None:  # the codes would not fit in an Int64: sort by the columns themselves
        by = [*group, SEQUENCE] if seq is not None else group
        order = frame.select(pl.arg_sort_by(by, nulls_last=True, maintain_order=True)).to_series()
        start = pl.lit(False)
        for k in group:
            start = start | pl.col(k).ne_missing(pl.col(k).shift(1))
        seg = frame.select(group)[order].select(start.fill_null(True).cast(pl.Int64).cum_sum()).to_series()
        return Grouping(order, _unorder(seg, order))
    if seq is not None and frame.height >= NUMPY_ROWS:
        by_sequence = _order_by_sequence(key, seq, positions)
        if by_sequence is not None:
            return by_sequence
    sort_key = key
    if seq is not None and frame.height:
        # Within a group, rows go in ``_seq`` order: key × n + seq orders by both in one Int64 (else two keys).
        n = frame.height
        if (key.max() or 0) * n + n < 1 << 62:  # type: ignore[operator]
            sort_key = key * n + seq
        else:
            if _runs_are_groups(key) and _runs_are_groups(seq):
                return Grouping(None, key)
            order = pl.DataFrame({"_key": key, "_seq": seq}).select(
                pl.arg_sort_by("_key", "_seq", maintain_order=True)).to_series()
            return Grouping(order, key)
    if frame.height < 2 or _runs_are_groups(sort_key):
        return Grouping(None, key)
    return Grouping(sort_key.to_frame("_key").select(pl.arg_sort_by("_key", maintain_order=True)).to_series(), key)


def sequence_positions(seq: pl.Series) -> np.ndarray | None:
    """The frame positions of the rows in ``SEQUENCE`` order (row j of that order is row ``positions[j]`` of the
    frame), when ``seq`` numbers its rows 0 … n−1; None when it does not."""
    import numpy as np

    n = len(seq)
    order = seq.to_numpy()
    if order.dtype.kind not in "iu" or order.min() != 0 or order.max() != n - 1:
        return None
    by_sequence = np.full(n, -1, dtype=np.int64)
    by_sequence[order] = np.arange(n, dtype=np.int64)
    if by_sequence.min() < 0:  # n numbers in 0 … n−1 fill every place unless one is used twice
        return None
    return by_sequence


def _order_by_sequence(key: pl.Series, seq: pl.Series, positions: np.ndarray | None = None) -> Grouping | None:
    """:func:`group_order` of a large frame whose ``SEQUENCE`` numbers its rows 0 … n−1 (None when it does not).

    Why: sorting a million rows by key × n + seq is a full sort of scattered values. Taken in sequence order
    (settle.py numbers the claims in (person, date, row) order, and a key starts with the person), the keys are
    nearly sorted already — out of order only where a person's claims of the year fall in different buckets —
    and a stable sort of nearly sorted keys is a few passes; within a key, the stable sort keeps sequence order.
    The permutation is the same: the rows ordered by (key, seq).

    The sort gives the keys in the grouping's order too: the grouping's segments (``Grouping.segments``) are
    worked out from them here, instead of gathering the keys again by the permutation.
    """
    import numpy as np

    n = len(seq)
    by_sequence = sequence_positions(seq) if positions is None else positions
    if by_sequence is None:
        return None
    codes = key.to_numpy()[by_sequence]
    if n and bool(np.less_equal(codes[:-1], codes[1:]).all()):
        # Already in key order (a grouping a person's claims never leave, e.g. (person, year), or the claims' buckets
        # in date order): the stable sort is the identity, so the permutation is the sequence order itself.
        permutation = by_sequence
    else:
        sort = np.argsort(codes, kind="stable")
        permutation, codes = by_sequence[sort], codes[sort]
    if np.array_equal(permutation, np.arange(n)):
        return Grouping(None, key)  # the groups already are runs of the frame, in sequence order
    grouping = Grouping(_index_series(permutation), key)
    grouping.__dict__["_segments"] = (permutation.astype(np.intp, copy=False), _segments_of(codes))
    return grouping


def _dense_key(frame: pl.DataFrame, group: list[str]) -> pl.Series | None:
    """One Int64 per row, equal iff all the ``group`` values are (null = its own value), or None."""
    key: pl.Series | None = None  # the first column's codes are the key so far (no column of zeros to start from)
    span = 1
    for name in group:
        column = frame[name]
        if column.dtype.is_integer() or column.dtype in (pl.Boolean, pl.Date):
            values = column.cast(pl.Int64)
            low, high = values.min(), values.max()
            if low is None:
                code, size = repeat(0, frame.height, pl.Int64), 1
            elif int(high) - int(low) > 1 << 40:  # type: ignore[arg-type]
                return None
            else:
                code, size = values - low + 1, int(high) - int(low) + 2  # type: ignore[arg-type, operator]
                if code.null_count():  # a query of its own: only where there are nulls
                    code = code.fill_null(0)
        else:
            distinct = (column.drop_nulls() if column.null_count() else column).unique()
            code = column.replace_strict(distinct, pl.int_range(1, distinct.len() + 1, dtype=pl.Int64, eager=True),
                                         default=0, return_dtype=pl.Int64)
            size = distinct.len() + 1
        if span * size >= 1 << 62:
            return None
        key = code if key is None else key * size + code
        span *= size
    return repeat(0, frame.height, pl.Int64) if key is None else key


def _runs_are_groups(key: pl.Series) -> bool:
    """Whether the key never decreases: then every group is one run and frame order is group order."""
    return bool(key.to_frame("_key").select((pl.col("_key").diff().fill_null(0) >= 0).all()).item())


def _unorder(values: pl.Series, order: pl.Series | None) -> pl.Series:
    """Values computed in ``order`` back to frame order."""
    if order is None:
        return values
    return repeat(None, values.len(), values.dtype).scatter(order, values)


def running_max_before(frame: pl.DataFrame, *, x: str, h0: str | None, group: list[str], out: str,
                       grouping: Grouping | None = None) -> pl.DataFrame:
    """Add ``out`` = max(h0, the largest ``x`` of the group's earlier rows), in frame order (e.g. the highest
    deductible standard applied earlier this year). Same segment technique as :func:`clamped_cumsum`."""
    grouping = _grouping_of(grouping, frame, group)
    if frame.height >= NUMPY_ROWS:
        import numpy as np

        from medins.engine import scan

        xs, segments = frame[x], grouping.segments()[1]
        h = np.zeros(len(segments.first), dtype=np.int64) if h0 is None else grouping.first_values(frame[h0])
        if xs.dtype == pl.Int64 and not xs.null_count() and h is not None:
            space = scan.Workspace.of(frame.height)
            before = scan.running_max_before(grouping.sorted_values(xs, space[scan.X]), h, segments, space)
            if before is not None:
                return replace_columns(frame, [], grouping.unsorted(out, before))
    order, key = grouping
    work = frame.lazy().select(pl.col(x).alias("_x"), (pl.col(h0).fill_null(0) if h0 else pl.lit(0, pl.Int64)).alias("_h"),
                               pl.lit(key).alias("_key"))
    if order is not None:
        work = work.select(pl.all().gather(order))
    work = work.with_columns(_start=pl.col("_key").ne_missing(pl.col("_key").shift(1)).fill_null(True)).with_columns(
        _seg=pl.col("_start").cast(pl.Int64).cum_sum(),
        _h0=pl.when("_start").then(pl.col("_h")).forward_fill(),
    )
    offset = pl.col("_seg").cast(pl.Int128) * _SEGMENT  # later segments above every earlier one
    running = ((pl.col("_x").cast(pl.Int128) + offset).cum_max() - offset).cast(pl.Int64)
    work = work.with_columns(_run=running).select(
        _before=pl.max_horizontal(pl.col("_h0"), pl.when("_start").then(None).otherwise(pl.col("_run").shift(1)))
    ).collect()
    return replace_columns(frame, [], grouping.unorder(work["_before"]).alias(out))


def _exact_fallback(work: pl.DataFrame) -> pl.DataFrame:
    """Recompute ``_after`` with the plain recurrence in segments where the closed form broke it (``_bad``)."""
    bad = work.filter(pl.col("_bad"))["_seg"].unique()
    rows = (work.with_row_index("_r").filter(pl.col("_seg").is_in(bad.to_list()))
            .select("_r", "_seg", "_x", "_lp", "_h0"))
    positions, values = [], []
    states: dict[int, int] = {}
    for r, seg, xi, lim, h in rows.rows():
        state = states.get(seg, h)
        state = max(state, min(lim, state + xi))
        states[seg] = state
        positions.append(r)
        values.append(state)
    after = work["_after"].clone().scatter(pl.Series(positions, dtype=pl.UInt32), pl.Series(values, dtype=pl.Int64))
    return work.with_columns(_after=after)


def first_in_group(frame: pl.DataFrame, values: dict[str, pl.Expr], grouping: Grouping) -> pl.DataFrame:
    """Add each of ``values`` as it is on the first row of the row's group (in the grouping's order), in frame order.

    Why not ``first().over(group)``: that is the first row in frame order, and a window over a million rows
    costs as much as ten passes; on rows sorted by the grouping it is one take per group.
    """
    grouping = _grouping_of(grouping, frame, [])
    if frame.height >= NUMPY_ROWS:
        # The grouping's segments (worked out once for its state columns) say, for each row, where its group's
        # first row is: one gather a value, instead of sorting the values, picking the firsts and unsorting.
        rows = grouping.first_rows()
        return frame.with_columns(value.gather(rows).alias(name) for name, value in values.items())
    order, key = grouping
    work = frame.select(**values).with_columns(_key=key)
    if order is not None:
        work = work[order]
    start = pl.col("_key").ne_missing(pl.col("_key").shift(1)).fill_null(True)
    seg = start.cast(pl.Int64).cum_sum() - 1
    work = work.select(pl.col(name).filter(start).gather(seg) for name in values)
    return frame.with_columns(grouping.unorder(work[name]).alias(name) for name in values)
