"""What the two hand-written peers of ``medins batch`` share: the Suqian numbers, the calendar, the output shape, the diff.

Why peers at all (issue #14 item 4): a policy written as data is only worth its engine if the engine is not
much slower than code written by hand for that one policy. ``peer_polars.py`` (vectorised Polars) and
``peer_duckdb.py`` (DuckDB SQL) settle the claims ``benchmarks/batch.py`` generates under ``suqian-2007``
with every rule those claims exercise, written out by hand from ``policies/suqian-2007.yaml`` and
``../shared/seed-policies.md`` (the SQ-* ids below) — not by calling medins — and must agree with medins to
the fen; :func:`diff` is how that is checked (``benchmarks/batch.py --check``).

The numbers are hard-coded here on purpose: that is what "hand-written for one policy" means. Money is
integer fen throughout (no float anywhere), rounded half up once per claim exactly as the policy says.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

POLICY_LABEL = "suqian-2007@2007"
#: 医疗类别 → visit type (medins' vocabulary for the generated values).
VISIT_TYPES = {"住院": "inpatient", "门诊": "outpatient", "门诊大病": "outpatient_special", "急诊": "emergency"}
#: SQ-17 / A-SQ-7: the designated hospitals and their zones.
HOSPITAL_ZONES = {"宿迁市中医院": "in_district", "珠江医院": "in_district", "工人医院": "in_district",
                  "市人民医院": "in_city", "省人民医院": "out_of_city"}
#: SQ-12: deductible per admission (inpatient) or per year (门诊大病, A-SQ-6), fen, by zone.
DEDUCTIBLE_FEN = {"in_district": 50_000, "in_city": 80_000, "out_of_city": 100_000}
#: SQ-13: bands on the absolute axis (lower edge fen, rate ppm); SQ-14 zone offsets (ppm).
BANDS = ((0, 500_000), (500_000, 550_000), (1_000_000, 600_000), (3_000_000, 700_000))
ZONE_OFFSET_PPM = {"in_district": 0, "in_city": 100_000, "out_of_city": 200_000}
CLASS_B_OFFSET_PPM = 100_000  # SQ-22 / A-SQ-4: class B 10 points lower, pro rata to its share
YEAR_CAP_FEN = 4_000_000  # SQ-15 / A-SQ-5: 40,000 a year, inpatient and 门诊大病 together
ACCOUNT_CREDIT_FEN = 5_000  # SQ-10: 50 a year, the balance carried over
TRANSITION = (date(2007, 7, 1), date(2007, 12, 31))  # SQ-24: enrolled then → 1 month's wait, else 6 (SQ-25)
CLAIM_DEADLINE_WORKDAYS = 10  # SQ-20 / A-SQ-9
NOT_CHECKABLE = "not_covered;premium_unpaid"  # listed on every claim: no bill shows them

#: Input columns (the generator's headers) → the peers' names.
COLUMNS = {"结算单号": "claim_id", "个人编号": "person_id", "医疗类别": "kind", "入院日期": "admit",
           "出院日期": "discharge", "医院名称": "hospital", "参保缴费日期": "enrolled", "是否备案": "preapproved",
           "申报日期": "claimed", "医疗费总额": "total", "全自费金额": "self_pay", "乙类金额": "class_b",
           "诊断名称": "diagnosis"}
DATE_COLUMNS = ("admit", "discharge", "enrolled", "claimed")
#: The peers' column → medins' field name, as the reject codes name it (``bad_date:admit_date`` …).
FIELD_NAMES = {"claim_id": "claim_id", "person_id": "person_id", "kind": "visit_type", "admit": "admit_date",
               "discharge": "discharge_date", "enrolled": "enrolled_date", "preapproved": "preapproved",
               "claimed": "claim_date", "total": "total", "self_pay": "self_pay", "class_b": "class_b"}
REQUIRED = ("claim_id", "person_id", "admit", "total")  # an empty cell rejects the row (missing_field:…)
#: Yes/no cells (case-insensitive), as medins reads them.
TRUE_WORDS = ("是", "有", "y", "yes", "t", "true", "1")
FALSE_WORDS = ("否", "无", "n", "no", "f", "false", "0")
MONEY_COLUMNS = ("total", "self_pay", "class_b")
#: medins' settlement columns (DESIGN.md §4), in its order: the peers write the same table.
MONEY_OUTPUTS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
                 "act_pay_dedc", "hifp_pay", "hifob_pay", "hifmi_pay", "maf_pay", "hifes_pay", "cvlserv_pay",
                 "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "deposit_amt",
                 "refund_amt", "due_amt")
OUTPUT_COLUMNS = ("claim_id", "person_id", *MONEY_OUTPUTS, "policy", "status", "reasons", "unchecked", "assumed")
REJECT_COLUMNS = ("row", "claim_id", "reason")


def workdays(first: date, last: date) -> list[date]:
    """The official working days (Mon–Fri less holidays, plus 调休 make-up days) from ``first`` to ``last``.

    Why chinese_calendar: it is the public calendar medins also reads; the peers only need the list of days.
    """
    import chinese_calendar

    days, d = [], first
    while d <= last:
        if chinese_calendar.is_workday(d):
            days.append(d)
        d += timedelta(days=1)
    return days


def deadline_table(first: date, last: date) -> pl.DataFrame:
    """For every date d in [first, last]: the 10th working day after d (SQ-20: 出院后次日起10个工作日内)."""
    days = workdays(first, last + timedelta(days=60))
    series = pl.Series(days, dtype=pl.Date)
    dates = pl.date_range(first, last, eager=True)
    at = series.search_sorted(dates, side="right") + (CLAIM_DEADLINE_WORKDAYS - 1)
    return pl.DataFrame({"d": dates, "deadline": series.gather(at)})


def diff(ours: Path, theirs: Path) -> tuple[int, dict[str, int]]:
    """Claims whose settlement differs between two settlement files (plus their rejects files), and per field
    how many differ. A claim only one file settles counts as differing (field ``missing``)."""
    def load(path: Path) -> pl.DataFrame:
        frame = pl.read_csv(path, infer_schema=False).select(OUTPUT_COLUMNS)
        return frame.with_columns(pl.all().fill_null(""))

    def load_rejects(path: Path) -> pl.DataFrame:
        rejects = path.with_name(path.stem + ".rejects.csv")
        if not rejects.exists():
            return pl.DataFrame(schema=dict.fromkeys(REJECT_COLUMNS, pl.String))
        return pl.read_csv(rejects, infer_schema=False).select(REJECT_COLUMNS).with_columns(pl.all().fill_null(""))

    a, b = load(ours), load(theirs)
    joined = a.join(b, on="claim_id", how="full", suffix="_b", coalesce=True)
    fields = [c for c in OUTPUT_COLUMNS if c != "claim_id"]
    missing = pl.col("person_id").is_null() | pl.col("person_id_b").is_null()
    counts = {"missing": joined.select(missing.sum()).item()}
    differs = missing
    for c in fields:
        flag = pl.col(c).ne_missing(pl.col(f"{c}_b")) & ~missing
        counts[c] = joined.select(flag.sum()).item()
        differs = differs | flag
    ra, rb = load_rejects(ours), load_rejects(theirs)
    rejects = ra.join(rb, on=list(REJECT_COLUMNS), how="anti").height + rb.join(ra, on=list(REJECT_COLUMNS),
                                                                              how="anti").height
    counts["rejects"] = rejects
    return joined.select(differs.sum()).item() + rejects, counts
