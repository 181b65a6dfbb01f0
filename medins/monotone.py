"""Does the fund (and the patient) pay more for a bigger bill? A grid search for places where it does not.

Why: a policy is a chain of deductibles, bands, caps and further payers; a wrong attachment point or an
edge counted twice shows up as a cliff — one fen more on the bill and the fund pays less, or the
patient pays thousands less. Such a place is hard to see in the YAML and easy to see on a grid. For
every rule the policy has and every zone, hospital level, person category and visit type a bill can
carry, one bill per total on a grid is settled by the one engine (each bill its own person, so no
year-to-date state carries over), and every adjacent pair of settled bills where the bigger one gets
less from the fund — or costs the patient less — is reported.
"""

from __future__ import annotations

import datetime as dt
from itertools import product

import polars as pl

from medins.claims.fields import CLAIM_FIELDS, HOSPITAL_KINDS, VISIT_TYPES, ZONES
from medins.claims.parse import CLAIMS_SCHEMA, ITEMS_SCHEMA, default_of
from medins.engine.settle import settle
from medins.policy.compiled import CompiledPolicy

#: The default grid: 0 to 200,000 yuan, every 100 yuan (2,001 totals per combination).
DEFAULT_TO = 200_000
DEFAULT_POINTS = 2_001
#: The service day when the policy has no dated version (the seeds' era).
DEFAULT_DAY = dt.date(2009, 6, 1)


def service_days(policy: CompiledPolicy) -> list[dt.date]:
    """One day in force for each version: its first day, its last, or the day before the next one starts."""
    starts = sorted(v.valid_from for v in policy.versions if isinstance(v.valid_from, dt.date))
    days: set[dt.date] = set()
    for v in policy.versions:
        if isinstance(v.valid_from, dt.date):
            days.add(v.valid_from)
        elif isinstance(v.valid_to, dt.date):
            days.add(v.valid_to)
        else:
            days.add(starts[0] - dt.timedelta(days=1) if starts else DEFAULT_DAY)
    return sorted(days)


def combinations(policy: CompiledPolicy) -> list[dict[str, object]]:
    """The claim facts that can change the money: visit type × zone × level × category × facility kind.

    Only facts the policy reads vary (a policy without zone tables gets one zone), so the grid stays
    the size of what can differ: a fact no expression, hospital list or exclusion reads cannot move it.
    """
    from medins.engine.settle import _expression_names

    names = _expression_names(policy)
    adm = policy.model.admission
    cats = adm.categories
    categories: list[str | None] = list(cats.known) if cats else [None]
    if "person_category" not in names:
        categories = categories[:1]
    zones = [z for z in ZONES if z not in adm.excluded_zones]
    if "hospital_zone" not in names:
        zones = zones[:1]
    levels = [0, 1, 2, 3] if "hospital_level" in names else [3]
    kinds: list[str | None] = [None, *HOSPITAL_KINDS] if "hospital_kind" in names else [None]
    return [{"visit_type": v, "hospital_zone": z, "hospital_level": lvl, "person_category": c, "hospital_kind": k}
            for v, z, lvl, c, k in product(VISIT_TYPES, zones, levels, categories, kinds)]


def grid_claims(combos: list[dict[str, object]], days: list[dt.date], totals: list[int]) -> pl.DataFrame:
    """One claim per (combination, day, total), each its own person, as the canonical claims table."""
    keys = list(product(range(len(combos)), days, totals))
    n = len(keys)
    columns: dict[str, list] = {"row": list(range(1, n + 1))}
    for f in CLAIM_FIELDS:
        columns[f.name] = [default_of(f)] * n
    columns["claim_id"] = columns["person_id"] = [f"m{i}" for i in range(n)]
    for name in ("visit_type", "hospital_zone", "hospital_level", "person_category", "hospital_kind"):
        columns[name] = [combos[c][name] for c, _d, _t in keys]
    columns["admit_date"] = [d for _c, d, _t in keys]
    columns["total"] = [t for _c, _d, t in keys]
    columns["birth_date"] = [dt.date(1970, 1, 1)] * n
    for flag in ("preapproved", "referral"):  # the bill is admissible on its paperwork: only money varies
        columns[flag] = [True] * n
    columns["diagnosis"] = [["dialysis"]] * n
    columns["has_items"] = [False] * n
    columns["_combo"] = [c for c, _d, _t in keys]
    return pl.DataFrame(columns, schema={**CLAIMS_SCHEMA, "_combo": pl.Int64})


def find_falls(policy: CompiledPolicy, *, to_yuan: int = DEFAULT_TO, points: int = DEFAULT_POINTS) -> dict:
    """Settle the grid; return ``settled`` (claims settled), ``claims`` and ``falls`` (a frame, money in fen).

    A fall is an adjacent pair of settled totals (same facts and day) where the bigger bill gets less
    from the fund (``fund``) or costs the patient less (``patient``).
    """
    totals = [to_yuan * 100 * i // (points - 1) for i in range(points)] if points > 1 else [to_yuan * 100]
    combos = combinations(policy)
    claims = grid_claims(combos, service_days(policy), totals)
    out = settle(policy, claims.drop("_combo"), ITEMS_SCHEMA.to_frame())
    frame = pl.concat([claims.select("_combo", "admit_date"), out.select("medfee_sumamt", "fund_pay_sumamt",
                                                                         "psn_part_amt", "status", "reasons")],
                      how="horizontal")
    key = ["_combo", "admit_date"]
    pairs = frame.with_columns(
        prev_total=pl.col("medfee_sumamt").shift(1).over(key),
        prev_fund=pl.col("fund_pay_sumamt").shift(1).over(key),
        prev_patient=pl.col("psn_part_amt").shift(1).over(key),
        prev_status=pl.col("status").shift(1).over(key),
    ).filter((pl.col("status") == "settled") & (pl.col("prev_status") == "settled"))
    falls = pairs.filter((pl.col("fund_pay_sumamt") < pl.col("prev_fund"))
                         | (pl.col("psn_part_amt") < pl.col("prev_patient")))
    facts = pl.DataFrame(combos).with_row_index("_combo").with_columns(pl.col("_combo").cast(pl.Int64))
    falls = falls.join(facts, on="_combo", how="left").select(
        "visit_type", "hospital_zone", "hospital_level", "person_category", "hospital_kind", "admit_date",
        pl.col("prev_total").alias("total_before"), pl.col("medfee_sumamt").alias("total_after"),
        pl.col("prev_fund").alias("fund_before"), pl.col("fund_pay_sumamt").alias("fund_after"),
        pl.col("prev_patient").alias("patient_before"), pl.col("psn_part_amt").alias("patient_after"))
    reasons = frame.filter(pl.col("status") != "settled")["reasons"].explode().drop_nulls().unique().sort()
    return {"claims": frame.height, "settled": int((frame["status"] == "settled").sum()), "falls": falls,
            "pairs": pairs.height, "reasons": reasons.to_list()}
