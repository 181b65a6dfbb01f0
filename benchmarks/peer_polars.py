"""A hand-written vectorised Polars settlement of the generated Suqian claims — a peer for ``medins batch``.

    python benchmarks/peer_polars.py CLAIMS.csv OUT.csv     # writes OUT.csv and OUT.rejects.csv

Why: issue #14 item 4 — medins, which reads any policy as data, is measured against code written by hand for
this one policy (``suqian-2007``), in the same run (``benchmarks/batch.py``), and must agree with it to the
fen (``benchmarks/batch.py --check``). Every rule the generated claims exercise is here, cited by rule id:
malformed rows rejected, designated hospitals (SQ-17), the waiting period (SQ-24/25), pre-approval (SQ-18),
the claim deadline in working days (SQ-20), the per-admission deductible (SQ-12), bands with zone offsets
(SQ-13/14) and class B pro rata (SQ-22, A-SQ-4), 门诊大病 with a yearly deductible and cumulative bands
(SQ-23, A-SQ-6), the yearly cap shared by both (SQ-15, A-SQ-5) and the carried-over 50-yuan account (SQ-10).
The state of a person's year is running sums over claims sorted by (person, admission date, input row); the
one recurrence without a closed form (a yearly deductible whose standard changes with the zone) is scanned
level by level: all groups' first claims at once, then all second claims, and so on.
"""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_common import (
    ACCOUNT_CREDIT_FEN,
    BANDS,
    CLASS_B_OFFSET_PPM,
    COLUMNS,
    DATE_COLUMNS,
    DEDUCTIBLE_FEN,
    FALSE_WORDS,
    FIELD_NAMES,
    HOSPITAL_ZONES,
    MONEY_COLUMNS,
    MONEY_OUTPUTS,
    NOT_CHECKABLE,
    OUTPUT_COLUMNS,
    POLICY_LABEL,
    REQUIRED,
    TRANSITION,
    TRUE_WORDS,
    VISIT_TYPES,
    YEAR_CAP_FEN,
    ZONE_OFFSET_PPM,
    deadline_table,
)

#: Settlement fields no rule of this policy ever pays or charges (no other payers, no limits, no deposits).
ZERO_OUTPUTS = ("overlmt_selfpay", "preselfpay_amt", "hifob_pay", "hifmi_pay", "maf_pay", "hifes_pay", "cvlserv_pay",
                "oth_pay", "deposit_amt", "refund_amt")
_DIAGNOSIS = r"(^|[;；|]\s*)(dialysis|transplant_antirejection)(\s*[;；|]|$)"


def read(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid claims, typed; rejects: row, claim_id, reason) — a malformed cell rejects its row, with medins'
    codes in column order, then the cross-field checks."""
    raw = pl.read_csv(path, infer_schema=False).rename(COLUMNS).with_row_index("row", offset=1)
    raw = raw.with_columns(pl.col(c).replace("", None) for c in COLUMNS.values())
    typed = raw.with_columns(
        *(pl.col(c).str.to_date("%Y-%m-%d", strict=False).alias(f"{c}_d") for c in DATE_COLUMNS),
        *(_fen(c).alias(f"{c}_f") for c in MONEY_COLUMNS),
        pre=pl.col("preapproved").str.to_lowercase().replace_strict(
            {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}, default=None,
            return_dtype=pl.Boolean),
    )
    codes: list[pl.Expr] = []
    for c, name in FIELD_NAMES.items():
        cell = pl.col(c)
        if c in REQUIRED:
            codes.append(pl.when(cell.is_null()).then(pl.lit(f"missing_field:{name}")))
        if c == "kind":
            codes.append(pl.when(cell.is_not_null() & ~cell.is_in(list(VISIT_TYPES))).then(pl.lit(f"unknown_code:{name}")))
        elif c in DATE_COLUMNS:
            codes.append(pl.when(cell.is_not_null() & pl.col(f"{c}_d").is_null()).then(pl.lit(f"bad_date:{name}")))
        elif c == "preapproved":
            codes.append(pl.when(cell.is_not_null() & pl.col("pre").is_null()).then(pl.lit(f"not_a_bool:{name}")))
        elif c in MONEY_COLUMNS:
            decimals = cell.str.extract(r"\.(\d*)$").fill_null("").str.strip_chars_end("0").str.len_chars()
            codes.append(pl.when(cell.is_null()).then(None)
                         .when(~cell.str.contains(r"^-?\d+(\.\d+)?$")).then(pl.lit(f"not_a_number:{name}"))
                         .when(decimals > 2).then(pl.lit(f"sub_fen:{name}"))
                         .when(cell.str.starts_with("-")).then(pl.lit(f"negative_amount:{name}")))
    in_scope = pl.col("total_f") - pl.col("self_pay_f")
    cross = [pl.when((pl.col("discharge_d") < pl.col("admit_d")).fill_null(False)),
             pl.when((pl.col("self_pay_f") > pl.col("total_f")).fill_null(False)),
             pl.when(((in_scope >= 0) & (pl.col("class_b_f") > in_scope)).fill_null(False))]
    codes += [flag.then(pl.lit(code)) for flag, code in zip(
        cross, ("discharge_before_admit", "self_pay_above_total", "class_b_above_in_scope"), strict=True)]
    # The codes are built only for the rows a cheap test finds wrong (a bad cell has no typed value).
    fine = [pl.col(c).is_not_null() for c in REQUIRED] + [
        pl.col("kind").is_null() | pl.col("kind").is_in(list(VISIT_TYPES)),
        pl.col("preapproved").is_null() | pl.col("pre").is_not_null(),
        *(pl.col(c).is_null() | pl.col(f"{c}_d").is_not_null() for c in DATE_COLUMNS),
        *(pl.col(c).is_null() | pl.col(f"{c}_f").is_not_null() for c in MONEY_COLUMNS),
    ] + [flag.then(False).otherwise(True) for flag in cross]
    typed = typed.with_columns(_fine=pl.all_horizontal(fine))
    rejects = typed.filter(~pl.col("_fine")).select(
        "row", "claim_id", reason=pl.concat_str(codes, separator=";", ignore_nulls=True))
    good = typed.filter(pl.col("_fine")).select(
        "row", "claim_id", "person_id", "hospital", "pre", "diagnosis",
        *(pl.col(f"{c}_d").alias(c) for c in DATE_COLUMNS),
        *(pl.col(f"{c}_f").fill_null(0).alias(c) for c in MONEY_COLUMNS),
        visit=pl.col("kind").replace_strict(VISIT_TYPES, default=None),
        visit_assumed=pl.col("kind").is_null(),
    )
    return good, rejects


def _fen(c: str) -> pl.Expr:
    """Yuan text → Int64 fen (null unless the cell is a plain non-negative amount of at most two decimals, less
    trailing zeros)."""
    parts = pl.col(c).str.split_exact(".", 1)
    fraction = parts.struct.field("field_1").fill_null("")
    return (pl.when(pl.col(c).str.contains(r"^\d+(\.\d+)?$") & (fraction.str.strip_chars_end("0").str.len_chars() <= 2))
            .then(parts.struct.field("field_0").cast(pl.Int64, strict=False) * 100
                  + (fraction + "00").str.slice(0, 2).cast(pl.Int64, strict=False)))


def settle(claims: pl.DataFrame) -> pl.DataFrame:
    """One settled row per claim, in input order, with medins' output columns (money as fen, Int64)."""
    inpatient, special = pl.col("visit") == "inpatient", pl.col("visit") == "outpatient_special"
    bound = inpatient | special  # SQ-17, SQ-23: stays and 门诊大病 only at designated hospitals
    trans = (pl.col("enrolled") >= TRANSITION[0]) & (pl.col("enrolled") <= TRANSITION[1])
    day = pl.col("discharge").fill_null(pl.col("admit"))
    lo_d, hi_d = claims.select(day.min().alias("lo"), day.max().alias("hi")).row(0)
    calendar = deadline_table(lo_d or date(2008, 1, 1), hi_d or date(2008, 1, 1))
    f = (claims.lazy()
         .with_columns(visit=pl.col("visit").fill_null("inpatient"),
                       discharge_assumed=pl.col("discharge").is_null() & (pl.col("visit").fill_null("inpatient")
                                                                          == "inpatient"),
                       discharge=pl.col("discharge").fill_null(pl.col("admit")),
                       zone=pl.col("hospital").replace_strict(HOSPITAL_ZONES, default=None))
         .join(calendar.lazy(), left_on="discharge", right_on="d", how="left", maintain_order="left")
         .with_columns(
             not_designated=bound & pl.col("hospital").is_not_null() & pl.col("zone").is_null(),
             # SQ-24/25: benefits from the payment date + 1 month (paid in the transition) or + 6 months
             waiting=pl.col("admit") < pl.when(trans).then(pl.col("enrolled").dt.offset_by("1mo"))
             .otherwise(pl.col("enrolled").dt.offset_by("6mo")),
             no_pre=pl.when(bound).then(~pl.col("pre")).otherwise(False),  # SQ-18 (blank: unchecked)
             late=pl.when(bound).then(pl.col("claimed") > pl.col("deadline")).otherwise(False),  # SQ-20
             rule=pl.when(inpatient).then(0)
             .when(special & pl.col("diagnosis").fill_null("").str.contains(_DIAGNOSIS)).then(1)
             .when(pl.col("visit").is_in(["outpatient", "emergency"])).then(2),
         )
         .with_columns(
             reasons=_codes([("not_designated", pl.col("not_designated")), ("waiting_period", pl.col("waiting")),
                             ("no_preapproval", pl.col("no_pre")), ("late_claim", pl.col("late")),
                             ("no_rule", pl.col("rule").is_null())]),
             unchecked=_codes([("not_designated", bound & pl.col("hospital").is_null()),
                               ("waiting_period", pl.col("waiting").is_null()),
                               ("no_preapproval", pl.col("no_pre").is_null()),
                               ("late_claim", pl.col("late").is_null()), (NOT_CHECKABLE, pl.lit(True))]),
             assumed=_assumed(),
             inscope=pl.col("total") - pl.col("self_pay"),
             year=pl.col("admit").dt.year(),
             std=pl.col("zone").replace_strict(DEDUCTIBLE_FEN, default=0, return_dtype=pl.Int64),
             zoff=pl.col("zone").replace_strict(ZONE_OFFSET_PPM, default=0, return_dtype=pl.Int64),
         )
         .with_columns(ok=pl.col("reasons") == "")
         .with_columns(e=pl.when(pl.col("ok")).then(pl.col("inscope")).otherwise(0),
                       account_pays=pl.col("visit").is_in(["outpatient", "emergency"]))
         .collect())
    # The year-to-date state on a narrow copy sorted by (person, date, row); its results return in row order.
    state = f.select(_state_key(claims).alias("_k"), "admit", "row", "year", "rule", "e", "std", "zoff", "class_b",
                     "ok", "total", "account_pays").sort("_k", "admit", "row")
    state = state.with_columns(_p=pl.col("_k").ne_missing(pl.col("_k").shift(1)).fill_null(True)).with_columns(
        # runs of a person, and of a person's benefit year (SQ-9: calendar years)
        _py=pl.col("_p") | pl.col("year").ne_missing(pl.col("year").shift(1)).fill_null(True),
    ).with_columns(
        # A-SQ-6: the year's earlier 门诊大病 in-scope amounts (the cumulative axis) …
        c0=_run_sum(pl.when(pl.col("rule") == 1).then(pl.col("e")).otherwise(0), "_py", before=True),
    )
    state = state.with_columns(special_ded=_yearly_deductible(state))  # … and the one deductible of the year
    ded = (pl.when(~pl.col("ok")).then(0)
           .when(pl.col("rule") == 0).then(pl.min_horizontal("e", "std"))  # SQ-12, A-SQ-2: per admission
           .when(pl.col("rule") == 1).then(pl.col("special_ded"))
           .otherwise(0))
    g = state.lazy().with_columns(ded=ded).with_columns(
        lo=pl.when(pl.col("rule") == 1).then(pl.col("c0") + pl.col("ded")).otherwise(pl.col("ded")),
        hi=pl.when(pl.col("rule") == 1).then(pl.col("c0") + pl.col("e")).otherwise(pl.col("e")),
    )
    # SQ-13/14/22, A-SQ-4: band k pays A_k × max(0, r_k − 10% × B/E), Σ over bands rounded half up once (fen).
    e = pl.col("e").cast(pl.Int128)
    cut = pl.lit(CLASS_B_OFFSET_PPM, pl.Int128) * pl.col("class_b").clip(lower_bound=0).cast(pl.Int128)
    num = pl.lit(0, pl.Int128)
    edges = [lo for lo, _rate in BANDS[1:]] + [None]
    for (lo, rate), hi in zip(BANDS, edges, strict=True):
        upper = pl.col("hi") if hi is None else pl.min_horizontal("hi", pl.lit(hi))
        part = (upper - pl.max_horizontal("lo", pl.lit(lo))).clip(lower_bound=0).cast(pl.Int128)
        r = (pl.lit(rate) - pl.col("zoff")).clip(lower_bound=0).cast(pl.Int128)
        num = num + part * (r * e - cut).clip(lower_bound=0)
    raw = pl.when(pl.col("ok") & (pl.col("e") > 0) & pl.col("rule").is_in([0, 1])) \
        .then(((num * 2 + e * 1_000_000) // (e * 2_000_000)).cast(pl.Int64)).otherwise(0)
    g = g.with_columns(raw=raw).with_columns(
        # SQ-15, A-SQ-5: what the year's cap still allows (inpatient and 门诊大病 share it)
        capped=_run_sum(pl.col("raw"), "_py"),
    ).with_columns(
        hifp=pl.min_horizontal(
            pl.min_horizontal("capped", pl.lit(YEAR_CAP_FEN)) - pl.min_horizontal(pl.col("capped") - pl.col("raw"),
                                                                                  pl.lit(YEAR_CAP_FEN)),
            "total"),
    ).with_columns(part=pl.col("total") - pl.col("hifp"))
    # SQ-10: 50 a year from the person's first year, carried over; it pays ordinary outpatient shares only.
    x = pl.when(pl.col("ok") & pl.col("account_pays")).then(pl.col("part")).otherwise(0)
    first_year = pl.when(pl.col("_p")).then(pl.col("year")).forward_fill()
    g = g.with_columns(_x=x, _limit=ACCOUNT_CREDIT_FEN * (1 + pl.col("year") - first_year),
                       _pn=pl.col("_p").cum_sum())
    # C[i] = S[i] + min(0, min_{j ≤ i, x_j > 0} (limit_j − S[j])): the clamped running sum, closed form for the
    # never-decreasing limit (credits only accumulate).
    g = g.with_columns(_s=_run_sum(pl.col("_x"), "_p")).with_columns(
        _m=pl.when(pl.col("_x") > 0).then(pl.col("_limit") - pl.col("_s")).otherwise(1 << 60).cum_min().over("_pn"))
    g = g.with_columns(_c=pl.col("_s") + pl.min_horizontal(pl.lit(0), "_m")).with_columns(
        acct=pl.col("_c") - pl.when(pl.col("_p")).then(0).otherwise(pl.col("_c").shift(1)))
    results = g.select("row", "ded", "hifp", "part", "acct").sort("row").drop("row").collect()
    zero = pl.lit(0, pl.Int64)
    out = f.lazy().with_columns(results.get_columns()).select(
        "claim_id", "person_id",
        medfee_sumamt="total", fulamt_ownpay_amt="self_pay", overlmt_selfpay=zero, preselfpay_amt=zero,
        inscp_scp_amt="inscope", act_pay_dedc="ded", hifp_pay="hifp", hifob_pay=zero, hifmi_pay=zero,
        maf_pay=zero, hifes_pay=zero, cvlserv_pay=zero, oth_pay=zero, fund_pay_sumamt="hifp",
        psn_part_amt="part", acct_pay="acct", psn_cash_pay=pl.col("part") - pl.col("acct"), deposit_amt=zero,
        refund_amt=zero, due_amt=pl.col("part") - pl.col("acct"), policy=pl.lit(POLICY_LABEL),
        status=pl.when(pl.col("ok")).then(pl.lit("settled")).otherwise(pl.lit("rejected")),
        reasons="reasons", unchecked="unchecked", assumed="assumed",
    )
    return out.collect()


def _state_key(claims: pl.DataFrame) -> pl.Expr:
    """A key equal exactly on one person's claims: a 64-bit hash of the id (sorting a million strings costs a second
    more), or the id itself should two persons of the file share a hash."""
    hashed = pl.col("person_id").hash(seed=2007)
    unique = claims.select(hashed.n_unique().alias("h"), pl.col("person_id").n_unique().alias("p")).row(0)
    return hashed if unique[0] == unique[1] else pl.col("person_id")


def _codes(flags: list[tuple[str, pl.Expr]]) -> pl.Expr:
    """The codes whose flag holds (null: not), joined by ";" in the given order — as a bit pattern per row looked
    up among the 2^k strings (building a string per row costs more than the whole rule)."""
    bits = pl.sum_horizontal(flag.fill_null(False).cast(pl.Int64) * (1 << k) for k, (_code, flag) in enumerate(flags))
    patterns = range(1 << len(flags))
    texts = [";".join(code for k, (code, _flag) in enumerate(flags) if p >> k & 1) for p in patterns]
    return bits.replace_strict(list(patterns), texts, return_dtype=pl.String)


def _assumed() -> pl.Expr:
    """What medins says it assumed: the cause, the zone of a listed hospital, the category (and an absent visit type
    or discharge date)."""
    zones = [None, *dict.fromkeys(HOSPITAL_ZONES.values())]
    code = (pl.col("zone").replace_strict(zones[1:], list(range(1, len(zones))), default=0, return_dtype=pl.Int64) * 4
            + pl.col("visit_assumed").cast(pl.Int64) * 2 + pl.col("discharge_assumed").cast(pl.Int64))
    keys, texts = [], []
    for z, zone in enumerate(zones):
        for bits in range(4):
            keys.append(z * 4 + bits)
            texts.append(";".join([*(["visit_type=inpatient"] if bits & 2 else []), "cause=illness",
                                   *(["discharge_date=admit_date"] if bits & 1 else []),
                                   *([f"hospital_zone={zone}"] if zone else []), "person_category=resident"]))
    return code.replace_strict(keys, texts, return_dtype=pl.String)


def _run_sum(x: pl.Expr, start: str, *, before: bool = False) -> pl.Expr:
    """Running sum of ``x`` (≥ 0) within runs beginning where ``start`` holds (the sum up to and including the row,
    or ``before`` it): one global cumulative sum less its value where the run began."""
    total = x.cum_sum()
    upto = total - pl.when(pl.col(start)).then(total - x).forward_fill()
    return upto - x if before else upto


def _yearly_deductible(f: pl.DataFrame) -> pl.Series:
    """A-SQ-6: the deductible each 门诊大病 claim pays, C[i] − C[i−1] with C[i] = max(C[i−1], min(std[i], C[i−1] + e[i]))
    over the person-year's 门诊大病 claims in order (a higher zone later tops up the difference; a lower one adds
    nothing). Scanned level by level: every group's n-th claim in one vectorised step."""
    special = f.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("i"), "rule", "_k", "year", "e", "std") \
        .filter(pl.col("rule") == 1)
    special = special.with_columns(g=pl.struct("_k", "year").rank("dense").cast(pl.Int64) - 1) \
        .with_columns(level=pl.int_range(pl.len()).over("g"))
    paid = np.zeros(f.height, dtype=np.int64)
    if special.height:
        state = np.zeros(int(special["g"].max()) + 1, dtype=np.int64)
        for _level, rows in special.sort("level").group_by("level", maintain_order=True):
            g, e, std = rows["g"].to_numpy(), rows["e"].to_numpy(), rows["std"].to_numpy()
            before = state[g]
            after = np.maximum(before, np.minimum(std, before + e))
            state[g] = after
            paid[rows["i"].to_numpy()] = after - before
    return pl.Series("special_ded", paid)


def money_text(c: str) -> pl.Expr:
    """Fen as yuan with two decimals (the settlement file's form): an exact Decimal, fen × 0.01."""
    return (pl.col(c).cast(pl.Decimal(18, 0)) * pl.lit(Decimal("0.01"), pl.Decimal(3, 2))).alias(c)


def main(argv: list[str]) -> int:
    src, out = Path(argv[0]), Path(argv[1])
    claims, rejects = read(src)
    settled = settle(claims)
    zero = [c for c in MONEY_OUTPUTS if c in ZERO_OUTPUTS]
    settled.with_columns(*(money_text(c) for c in MONEY_OUTPUTS if c not in zero),
                         *(pl.lit("0.00").alias(c) for c in zero)).select(OUTPUT_COLUMNS).write_csv(out)
    rejects.write_csv(out.with_name(out.stem + ".rejects.csv"))
    return 1 if rejects.height or settled.select((pl.col("status") == "rejected").any()).item() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
