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
of a second. Groups whose limits do decrease (a cap lowered mid-year) are rare; they fall back to
the exact loop, so the answer is always exact. A single bill is a group of one row.
"""

from __future__ import annotations

import polars as pl

#: Stands for "no limit" in Int64 fen arithmetic (far above any real amount, far below overflow).
UNLIMITED = 1 << 60
_SEGMENT = 1 << 63  # segment offset for the segmented running minimum (values stay within ±2^62)


def clamped_cumsum(
    frame: pl.DataFrame,
    *,
    x: str,
    limit: str | None,
    h0: str | None,
    group: list[str],
    out_before: str,
    out_after: str,
) -> pl.DataFrame:
    """Add columns ``out_before`` = C[i-1] and ``out_after`` = C[i] (Int64) to ``frame``.

    Rows of a group are taken in frame order. ``x`` is a non-negative Int64 column; ``limit`` an
    Int64 column (null = unlimited) or None; ``h0`` the column holding the state before the group's
    first claim (read from that first row) or None for 0.
    """
    cols = [pl.col(x).alias("_x"),
            (pl.col(limit).fill_null(UNLIMITED) if limit else pl.lit(UNLIMITED, pl.Int64)).alias("_l"),
            (pl.col(h0).fill_null(0) if h0 else pl.lit(0, pl.Int64)).alias("_h")]
    work = frame.select(*[pl.col(k).alias(f"_k{i}") for i, k in enumerate(group)], *cols).with_row_index("_pos")
    keys = [f"_k{i}" for i in range(len(group))]
    work = work.sort([*keys, "_pos"], nulls_last=True)
    start = pl.lit(False)
    for k in keys:
        start = start | pl.col(k).ne_missing(pl.col(k).shift(1))
    work = work.with_columns(_start=start.fill_null(True))
    work = work.with_columns(
        _seg=pl.col("_start").cast(pl.Int64).cum_sum(),
        _h0=pl.when("_start").then(pl.col("_h")).forward_fill(),
        _g=pl.col("_x").cum_sum(),
    ).with_columns(
        _s=pl.col("_g") - pl.when("_start").then(pl.col("_g") - pl.col("_x")).forward_fill(),
    ).with_columns(_lp=pl.max_horizontal("_l", "_h0"))
    offset = pl.col("_seg").cast(pl.Int128) * _SEGMENT
    running_min = ((pl.col("_lp") - pl.col("_s")).cast(pl.Int128) - offset).cum_min() + offset
    work = work.with_columns(
        _after=(pl.col("_s") + pl.min_horizontal(pl.col("_h0"), running_min.cast(pl.Int64))),
        _dec=(pl.col("_lp") < pl.col("_lp").shift(1)) & ~pl.col("_start"),
    )
    if work["_dec"].any():
        work = _exact_fallback(work)
    work = work.with_columns(
        _before=pl.when("_start").then(pl.col("_h0")).otherwise(pl.col("_after").shift(1))
    ).sort("_pos")
    return frame.with_columns(work["_before"].alias(out_before), work["_after"].alias(out_after))


def running_max_before(frame: pl.DataFrame, *, x: str, h0: str | None, group: list[str], out: str) -> pl.DataFrame:
    """Add ``out`` = max(h0, the largest ``x`` of the group's earlier rows), in frame order (e.g. the highest
    deductible standard applied earlier this year). Same segment technique as :func:`clamped_cumsum`."""
    work = frame.select(*[pl.col(k).alias(f"_k{i}") for i, k in enumerate(group)], pl.col(x).alias("_x"),
                        (pl.col(h0).fill_null(0) if h0 else pl.lit(0, pl.Int64)).alias("_h")).with_row_index("_pos")
    keys = [f"_k{i}" for i in range(len(group))]
    work = work.sort([*keys, "_pos"], nulls_last=True)
    start = pl.lit(False)
    for k in keys:
        start = start | pl.col(k).ne_missing(pl.col(k).shift(1))
    work = work.with_columns(_start=start.fill_null(True)).with_columns(
        _seg=pl.col("_start").cast(pl.Int64).cum_sum(),
        _h0=pl.when("_start").then(pl.col("_h")).forward_fill(),
    )
    offset = pl.col("_seg").cast(pl.Int128) * _SEGMENT  # later segments above every earlier one
    running = ((pl.col("_x").cast(pl.Int128) + offset).cum_max() - offset).cast(pl.Int64)
    work = work.with_columns(_run=running).with_columns(
        _before=pl.max_horizontal(pl.col("_h0"), pl.when("_start").then(None).otherwise(pl.col("_run").shift(1)))
    ).sort("_pos")
    return frame.with_columns(work["_before"].alias(out))


def _exact_fallback(work: pl.DataFrame) -> pl.DataFrame:
    """Recompute ``_after`` with the plain recurrence in segments whose limit decreases somewhere."""
    bad = work.filter(pl.col("_dec"))["_seg"].unique().to_list()
    rows = work.with_row_index("_r").filter(pl.col("_seg").is_in(bad)).select("_r", "_seg", "_x", "_lp", "_h0").rows()
    after = work["_after"].to_list()
    states: dict[int, int] = {}
    for r, seg, xi, lim, h in rows:
        state = states.get(seg, h)
        state = max(state, min(lim, state + xi))
        states[seg] = after[r] = state
    return work.with_columns(_after=pl.Series(after, dtype=pl.Int64))
