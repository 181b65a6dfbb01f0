"""Year-to-date state as window operations: the clamped cumulative sum.

Why: caps, yearly deductibles, eligible-expense ceilings and account balances all follow one
recurrence over a person's claims in (date, input row) order::

    C[0] = h0                                   # state before the first claim (a bill's history)
    C[i] = max(C[i-1], min(L[i], C[i-1] + x[i]))  # x ≥ 0 added, never beyond the limit L

and the claim's share is ``C[i] - C[i-1]`` (what the cap still allowed, what of the deductible was
still due …). Looping over claims in Python would be far too slow for a year of claims, but when
the limits never decrease within a group the recurrence has a closed form that Polars computes
with window functions::

    L'[i] = max(L[i], h0);   S[i] = x[1] + … + x[i]
    C[i]  = S[i] + min(h0, min_{j ≤ i} (L'[j] − S[j]))

(proof: unroll ``C[i] = min(L'[i], C[i-1] + x[i])``). Groups whose limits do decrease (a cap
lowered mid-year) are rare; they fall back to the exact loop, so the answer is always exact.
A single bill is a group of one row, computed by the same expressions.
"""

from __future__ import annotations

import polars as pl

#: Stands for "no limit" in Int64 fen arithmetic (far above any real amount, far below overflow).
UNLIMITED = 1 << 60


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

    ``frame`` must already be sorted in claim order within each group. ``x`` is a non-negative
    Int64 column; ``limit`` an Int64 column (null = unlimited) or None; ``h0`` the column holding
    the state before the group's first claim (read from that first row) or None for 0.
    """
    lim = pl.col(limit).fill_null(UNLIMITED) if limit else pl.lit(UNLIMITED, pl.Int64)
    first_h0 = (pl.col(h0).fill_null(0) if h0 else pl.lit(0, pl.Int64)).first().over(group)
    work = frame.with_columns(
        _h0=first_h0,
        _s=pl.col(x).cum_sum().over(group),
    ).with_columns(_l=pl.max_horizontal(lim, pl.col("_h0")))
    work = work.with_columns(
        _after=pl.col("_s") + pl.min_horizontal(pl.col("_h0"), (pl.col("_l") - pl.col("_s")).cum_min().over(group)),
        _dec=(pl.col("_l") < pl.col("_l").shift(1).over(group)).fill_null(False).any().over(group),
    )
    if work["_dec"].any():
        work = _exact_fallback(work, x=x, group=group)
    work = work.with_columns(_before=pl.col("_after").shift(1).over(group).fill_null(pl.col("_h0")))
    return work.drop("_s", "_l", "_dec", "_h0").rename({"_after": out_after, "_before": out_before})


def _exact_fallback(work: pl.DataFrame, *, x: str, group: list[str]) -> pl.DataFrame:
    """Recompute ``_after`` with the plain recurrence for groups whose limit decreases somewhere."""
    mask = work["_dec"].to_list()
    xs = work[x].to_list()
    limits = work["_l"].to_list()
    h0s = work["_h0"].to_list()
    keys = work.select(group).rows()
    after = work["_after"].to_list()
    states: dict[tuple, int] = {}
    for i, flagged in enumerate(mask):
        if not flagged:
            continue
        state = states.get(keys[i], h0s[i])
        state = max(state, min(limits[i], state + xs[i]))
        states[keys[i]] = after[i] = state
    return work.with_columns(_after=pl.Series(after, dtype=pl.Int64))
