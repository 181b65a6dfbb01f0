"""Stage 6 — the individual account (个人帐户) pays part of the patient's share.

Why a clamped sum again: the account is credited each benefit year and its balance carries over
(SQ-10), so what it can still pay for a claim is the credits up to that year minus what it paid
before. The credits only ever grow, which is exactly the case ``clamped_cumsum`` solves in closed
form. A bill's ``history.account_balance`` is the balance before it; without one, the year's credit.
"""

from __future__ import annotations

import polars as pl

from medins.engine.context import Lazy, Run
from medins.engine.state import clamped_cumsum, first_in_group, group_order
from medins.policy.plan import PAYER_FIELDS


def settle_account(run: Run, q: Lazy | None = None) -> Lazy:
    """Add ``acct_pay`` (fen): min(balance, patient share) on claims the account ``pays`` for.

    One query before the year-to-date scan (``q``, the caller's pending steps, else ``Run.lazy``): the patient's
    part, the rows paid for and the credit. Returns the query after the scan, pending: the totals continue it (one
    collect for both).
    """
    account = run.policy.model.account
    q = (run.lazy() if q is None else q).with_columns(pl.min_horizontal("hifp_pay", "total").alias("hifp_pay"))
    q.with_columns(_part=pl.col("total") - pl.sum_horizontal("hifp_pay", *PAYER_FIELDS))
    if account is None:
        return q.with_columns(acct_pay=pl.lit(0, pl.Int64))
    q.with_columns(_pays=q.ev(account.pays, "bool", mask=pl.col("_ok")).fill_null(False),
                   _credit=q.ev(account.credit, "money").fill_null(0))
    f = q.collect().frame
    person = ["_pk"]  # the person, numbered in claim order (settle.py)
    # the person's claims in the order state flows in (settle.py hands the claim order over)
    grouping = run.groupings.get("_pk") or group_order(f, person)
    f = first_in_group(f, {"_first_year": pl.col("year"),
                           "_opening": pl.coalesce(pl.col("hist_account_balance"), pl.col("_credit"))}, grouping)
    f = f.with_columns(
        # Credits available up to this claim's year: the opening balance, then one credit a year.
        _limit=pl.col("_opening") + pl.col("_credit") * (pl.col("year") - pl.col("_first_year")).fill_null(0),
        _ax=pl.when(pl.col("_pays")).then(pl.col("_part")).otherwise(0),
    )
    f = clamped_cumsum(f, x="_ax", limit="_limit", h0=None, group=person, out_before="_a0", out_after="_a1",
                       grouping=grouping)
    run.frame = f
    q = run.lazy().with_columns(acct_pay=pl.col("_a1") - pl.col("_a0"))
    if run.trace:  # trace: balance
        q.with_columns(_tr_acct_pays=pl.col("_pays"), _tr_acct_limit=pl.col("_limit"), _tr_acct0=pl.col("_a0"))
    return q.drop("_pays", "_credit", "_first_year", "_opening", "_limit", "_ax", "_a0", "_a1")
