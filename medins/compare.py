"""Analyst views: the same claims under several policies — totals, fee bands, age groups, burden, reform.

Why pure functions on settlement frames: the views are arithmetic on what the one engine settled, so
they are tested on hand-computed claims and rendered as tables, JSON, CSV or XLSX alike. Money stays
in integer fen; shares are ratios here and exact rounded percentages at the edge (medins.report.compare).

Definitions (docs/outputs.md): fund = all fund layers; 政策范围内自付 (in-scope self-pay) =
in-scope amount − fund; 政策范围外自费 (out-of-scope self-pay) = total − in-scope amount; effective
reimbursement rate = fund ÷ total; in-scope rate = fund ÷ in-scope amount (AN-1). Catastrophic
expenditure: a person's out-of-pocket payments in one benefit year above 40 % of that year's disposable
income, strictly (AN-5, A-AN-4) — counted per person and benefit year, since income is yearly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import polars as pl

from medins.claims.readers import read_claims
from medins.engine.settle import OUTPUT_COLUMNS, settle
from medins.money import div_half_up
from medins.policy.compiled import CompiledPolicy

#: Fee bands of a claim total, yuan (seed 004 / seed-policies.md §0.2: (0, 5000], (5000, 10000], … (50000, ∞)).
DEFAULT_BANDS = (5_000, 10_000, 20_000, 50_000)
DEFAULT_AGES = (18, 60, 70)
FACTS = ("birth_date", "age", "admit_date", "income", "visit_type", "hospital_level", "hospital_zone")


@dataclass
class Comparison:
    """Each policy's settlement of the same claims (fen), keyed by policy label, in the order given."""

    labels: list[str]
    settlements: dict[str, pl.DataFrame]
    rows_read: int = 0
    rejects: pl.DataFrame = field(default_factory=pl.DataFrame)
    encoding: str = ""


def settle_under(policies: list[CompiledPolicy], claims: pl.DataFrame, items: pl.DataFrame | None) -> Comparison:
    """Settle the same claims under each policy (one engine run per policy)."""
    labels: list[str] = []
    out: dict[str, pl.DataFrame] = {}
    facts = claims.select(FACTS)
    for policy in policies:
        label = policy.id if policy.id not in labels else f"{policy.id}#{len(labels) + 1}"
        labels.append(label)
        settled = settle(policy, claims, items, keep=("year",))
        # The benefit year as the policy counts it; a policy without a year start counts calendar years.
        year = settled["year"].fill_null(claims["admit_date"].dt.year().cast(pl.Int64)).alias("benefit_year")
        out[label] = pl.concat([settled.select(OUTPUT_COLUMNS), facts, year.to_frame()], how="horizontal")
    return Comparison(labels, out)


def compare_file(policies: list[CompiledPolicy], path, *, encoding: str = "auto", mapping: dict | None = None
                 ) -> Comparison:
    """Read a claims file with batch's reader (the same rejects) and settle it under each policy."""
    read = read_claims(path, encoding=encoding, mapping=mapping)
    comparison = settle_under(policies, read.claims, read.items if read.shape == "items" else None)
    comparison.rows_read, comparison.rejects, comparison.encoding = read.rows_read, read.rejects, read.encoding
    return comparison


def _measures() -> list[pl.Expr]:
    fund, total, inscope = pl.col("fund_pay_sumamt"), pl.col("medfee_sumamt"), pl.col("inscp_scp_amt")
    return [
        pl.len().alias("claims"),
        (pl.col("status") == "rejected").sum().alias("not_paid"),
        total.sum().alias("total"),
        fund.sum().alias("fund"),
        (inscope - fund).sum().alias("inscope_selfpay"),
        (total - inscope).sum().alias("outscope_selfpay"),
        inscope.sum().alias("inscope"),
    ]


def _ratios(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        fund_share=pl.when(pl.col("total") > 0).then(pl.col("fund") / pl.col("total")),
        inscope_rate=pl.when(pl.col("inscope") > 0).then(pl.col("fund") / pl.col("inscope")),
    )


def totals(cmp: Comparison) -> pl.DataFrame:
    """One row per policy: claims, money split fund / 自付 / 自费, fund share and in-scope rate."""
    rows = [s.select(_measures()).with_columns(policy=pl.lit(label)) for label, s in cmp.settlements.items()]
    return _ratios(pl.concat(rows)).select("policy", pl.all().exclude("policy"))


def band_labels(edges: tuple[int, ...]) -> list[str]:
    """Half-open (lo, hi] bands as seed-policies.md §0.2 reads 5000元以下 / 5000-10000元 / 5万元以上."""
    labels = [f"≤ {edges[0]:,}"]
    labels += [f"{lo:,}–{hi:,}" for lo, hi in pairwise(edges)]
    return [*labels, f"> {edges[-1]:,}"]


def by_fee_band(cmp: Comparison, edges: tuple[int, ...] = DEFAULT_BANDS) -> pl.DataFrame:
    """Per policy and band of the claim total, (lo, hi] in yuan."""
    labels = band_labels(edges)
    band = _bucket(pl.col("medfee_sumamt"), [e * 100 + 1 for e in edges], labels)  # total < hi + 1 fen ⇔ ≤ hi
    return _grouped(cmp, band.alias("group"), labels)


def by_age_group(cmp: Comparison, edges: tuple[int, ...] = DEFAULT_AGES) -> pl.DataFrame:
    """Per policy and age group on the service date (completed years; unknown age → "?")."""
    labels = [f"0–{edges[0] - 1}"] + [f"{lo}–{hi - 1}" for lo, hi in pairwise(edges)]
    labels.append(f"{edges[-1]}+")
    before = (pl.col("admit_date").dt.month() < pl.col("birth_date").dt.month()) | (
        (pl.col("admit_date").dt.month() == pl.col("birth_date").dt.month())
        & (pl.col("admit_date").dt.day() < pl.col("birth_date").dt.day()))
    age = pl.coalesce(pl.col("admit_date").dt.year() - pl.col("birth_date").dt.year() - before.cast(pl.Int32),
                      pl.col("age"))  # a stated age where no birth date is given (as the engine reads it)
    group = _bucket(age, list(edges), labels).fill_null("?")
    return _grouped(cmp, group.alias("group"), [*labels, "?"])


def _bucket(value: pl.Expr, edges: list[int], labels: list[str]) -> pl.Expr:
    """labels[i] for edges[i-1] ≤ value < edges[i] (the last label from the last edge up); null stays null."""
    expr: pl.Expr = pl.lit(labels[-1])
    for edge, label in zip(reversed(edges), reversed(labels[:-1]), strict=True):
        expr = pl.when(value < edge).then(pl.lit(label)).otherwise(expr)
    return pl.when(value.is_null()).then(None).otherwise(expr)


def _grouped(cmp: Comparison, key: pl.Expr, order: list[str]) -> pl.DataFrame:
    frames = []
    for label, s in cmp.settlements.items():
        frames.append(s.with_columns(key).group_by("group").agg(_measures()).with_columns(policy=pl.lit(label)))
    rank = {g: i for i, g in enumerate(order)}
    out = _ratios(pl.concat(frames)).with_columns(_o=pl.col("group").replace_strict(rank, default=len(rank)))
    policy_rank = {p: i for i, p in enumerate(cmp.labels)}
    return out.with_columns(_p=pl.col("policy").replace_strict(policy_rank)).sort("_p", "_o").drop("_o", "_p").select(
        "policy", "group", pl.all().exclude("policy", "group"))


def catastrophic(cmp: Comparison, *, income_fen: int | None = None, threshold_pct: int = 40) -> pl.DataFrame:
    """Person-years whose out-of-pocket exceeds ``threshold_pct`` % of income (strictly).

    Why per benefit year: income is a yearly figure (AN-5), so a person's payments are summed within
    one benefit year of the policy, never across years — two ordinary years are not one catastrophe.
    ``persons`` counts people, ``person_years`` (person, benefit year) pairs; ``with_income``,
    ``catastrophic`` and ``incidence`` are person-years.
    """
    rows = []
    for label, s in cmp.settlements.items():
        income = pl.lit(income_fen, pl.Int64) if income_fen is not None else pl.col("income")
        per_year = s.with_columns(_inc=income).group_by("person_id", "benefit_year").agg(
            oop=pl.col("psn_part_amt").sum(), income=pl.col("_inc").drop_nulls().first())
        known = per_year.filter(pl.col("income").is_not_null() & (pl.col("income") > 0))
        hit = known.filter(pl.col("oop") * 100 > pl.col("income") * threshold_pct)
        rows.append({"policy": label, "persons": per_year["person_id"].n_unique(), "person_years": per_year.height,
                     "with_income": known.height, "catastrophic": hit.height,
                     "incidence": hit.height / known.height if known.height else None})
    return pl.DataFrame(rows, schema={"policy": pl.String, "persons": pl.Int64, "person_years": pl.Int64,
                                      "with_income": pl.Int64, "catastrophic": pl.Int64, "incidence": pl.Float64})


def not_paid(cmp: Comparison) -> pl.DataFrame:
    """Claims each policy does not pay, by reason code (cannot-settle cases are reported, never hidden)."""
    frames = [s.filter(pl.col("status") == "rejected").select(pl.col("reasons")).explode("reasons")
              .group_by("reasons").len().rename({"reasons": "reason", "len": "claims"})
              .with_columns(policy=pl.lit(label)) for label, s in cmp.settlements.items()]
    out = pl.concat(frames) if frames else pl.DataFrame()
    return out.select("policy", "reason", "claims").sort("policy", "claims", descending=[False, True])


def reform(cmp: Comparison) -> pl.DataFrame:
    """Two policies, baseline then reform: fund change, who gains or loses (claims and people), by how much."""
    if len(cmp.labels) != 2:
        return pl.DataFrame()
    a, b = (cmp.settlements[label] for label in cmp.labels)
    diff = pl.DataFrame({"person_id": a["person_id"], "delta": b["fund_pay_sumamt"] - a["fund_pay_sumamt"]})
    people = diff.group_by("person_id").agg(pl.col("delta").sum())
    rows = []
    for unit, frame in (("claims", diff), ("people", people)):
        d = frame["delta"]
        gain, loss = d.filter(d > 0), d.filter(d < 0)
        rows.append({
            "unit": unit, "count": frame.height, "gain": gain.len(), "lose": loss.len(),
            "unchanged": int((d == 0).sum()), "fund_change": int(d.sum()),
            "gain_sum": int(gain.sum()), "loss_sum": int(loss.sum()),
            "gain_mean": div_half_up(int(gain.sum()), gain.len()) if gain.len() else 0,
            "loss_mean": div_half_up(int(loss.sum()), loss.len()) if loss.len() else 0,
            "largest_gain": int(gain.max()) if gain.len() else 0, "largest_loss": int(loss.min()) if loss.len() else 0,
        })
    return pl.DataFrame(rows)


def bill_side_by_side(policies: list[CompiledPolicy], bill: dict, *, source: str = "bill") -> list[dict]:
    """One bill under each policy: the §4 fields as yuan text (rejections included, never raised)."""
    from medins.api import settle_bill

    return [settle_bill(policy, bill, source=source) for policy in policies]
