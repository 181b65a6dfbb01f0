"""Fund and patient share as a function of the bill total, for several policies.

Why one-row bills on a grid: a curve answers "what does a bill of N yuan cost the patient here and
there" — the same bill at each total, each with its own person so no year-to-date state carries
over, settled as one claims table per policy by the one engine.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from medins.api import bills_to_tables
from medins.engine.settle import settle
from medins.money import to_fen


def grid(start: Decimal, stop: Decimal, points: int) -> list[int]:
    """``points`` totals in fen from start to stop (inclusive), evenly spaced, each a whole fen."""
    lo, hi = to_fen(start), to_fen(stop)
    if points < 2 or hi <= lo:
        return [hi]
    return [lo + (hi - lo) * i // (points - 1) for i in range(points)]


def curve(policies, totals: list[int], *, visit_type: str = "inpatient", zone: str | None = None,
          level: int | None = None, category: str | None = None, day: str = "2009-06-01",
          birth_date: str | None = None) -> pl.DataFrame:
    """Rows (policy, total, fund, patient, fund_share, status) for each policy and grid total (money in fen)."""
    hospital: dict[str, object] = {}
    if zone:
        hospital["zone"] = zone
    if level is not None:
        hospital["level"] = level
    bills = []
    for i, fen in enumerate(totals):
        person: dict[str, object] = {"id": f"curve-{i}"}
        if category:
            person["category"] = category
        if birth_date:
            person["birth_date"] = birth_date
        bills.append({"id": f"curve-{i}", "person": person,
                      "visit": {"type": visit_type, "admit_date": day, "hospital": hospital, "preapproved": True,
                                "referral": True, "diagnosis": ["dialysis"]},
                      "amounts": {"total": f"{fen // 100}.{fen % 100:02d}"}})
    claims, items = bills_to_tables(bills, source="curve")
    frames = []
    for policy in policies:
        out = settle(policy, claims, items)
        frames.append(out.select(
            pl.lit(policy.id).alias("policy"), pl.col("medfee_sumamt").alias("total"),
            pl.col("fund_pay_sumamt").alias("fund"), pl.col("psn_part_amt").alias("patient"),
            pl.when(pl.col("medfee_sumamt") > 0).then(pl.col("fund_pay_sumamt") / pl.col("medfee_sumamt"))
            .alias("fund_share"), "status", pl.col("reasons").list.join(";").alias("reasons")))
    return pl.concat(frames)
