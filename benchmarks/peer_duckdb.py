"""A hand-written DuckDB SQL settlement of the generated Suqian claims — a peer for ``medins batch``.

    python benchmarks/peer_duckdb.py CLAIMS.csv OUT.csv     # writes OUT.csv and OUT.rejects.csv

Why: issue #14 item 4 — the same rules as ``peer_polars.py`` (see its docstring for the rule ids), written as
SQL, so medins is measured against the two ways one would settle one policy by hand. Year-to-date state is
window functions over (person, year) ordered by (admission date, input row); the 门诊大病 yearly deductible
whose standard changes with the zone (A-SQ-6) has no closed form and is a recursive CTE over each
person-year's claims. Needs ``pip install duckdb`` (the ``bench`` extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

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
    POLICY_LABEL,
    REQUIRED,
    TRANSITION,
    TRUE_WORDS,
    VISIT_TYPES,
    YEAR_CAP_FEN,
    ZONE_OFFSET_PPM,
    deadline_table,
)


def _case(column: str, mapping: dict, default: str = "NULL") -> str:
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in mapping.items())
    return f"CASE {column} {whens} ELSE {default} END"


def _lit(value) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


def _bands_sum() -> str:
    """SQ-13/14/22, A-SQ-4: Σ_k A_k × max(0, r_k × E − 10% × B) over the common denominator 10^6 × E (HUGEINT)."""
    terms = []
    edges = [lo for lo, _rate in BANDS[1:]] + [None]
    for (lo, rate), hi in zip(BANDS, edges, strict=True):
        upper = "hi" if hi is None else f"least(hi, {hi})"
        part = f"greatest({upper} - greatest(lo, {lo}), 0)::HUGEINT"
        r = f"greatest({rate} - zoff, 0)::HUGEINT"
        terms.append(f"{part} * greatest({r} * e::HUGEINT - {CLASS_B_OFFSET_PPM}::HUGEINT * greatest(class_b, 0), 0)")
    return " + ".join(terms)


def settle(con: duckdb.DuckDBPyConnection, src: Path, out: Path) -> tuple[int, int]:
    """Write the settlement and the rejects; (rejected rows, rejected claims)."""
    renamed = ", ".join(f'nullif("{zh}", \'\') AS {en}' for zh, en in COLUMNS.items())
    con.execute(f"CREATE TEMP TABLE raw AS SELECT {renamed} FROM read_csv(?, all_varchar = true, header = true)",
                [str(src)])
    words = ", ".join(_lit(w) for w in (*TRUE_WORDS, *FALSE_WORDS))
    typed = ", ".join([
        *(f"try_strptime({c}, '%Y-%m-%d')::DATE AS {c}_d" for c in DATE_COLUMNS),
        *(f"CASE WHEN regexp_full_match({c}, '\\d+(\\.\\d+)?') AND length(rtrim(split_part({c}, '.', 2), '0')) <= 2 "
          f"THEN CAST(split_part({c}, '.', 1) AS BIGINT) * 100 + CAST(left(split_part({c}, '.', 2) || '00', 2) AS BIGINT)"
          f" END AS {c}_f" for c in MONEY_COLUMNS),
        f"CASE WHEN lower(preapproved) IN ({', '.join(_lit(w) for w in TRUE_WORDS)}) THEN true "
        f"WHEN lower(preapproved) IN ({', '.join(_lit(w) for w in FALSE_WORDS)}) THEN false END AS pre",
    ])
    codes = []
    for c, name in FIELD_NAMES.items():
        if c in REQUIRED:
            codes.append(f"CASE WHEN {c} IS NULL THEN 'missing_field:{name}' END")
        if c == "kind":
            codes.append(f"CASE WHEN kind NOT IN ({', '.join(_lit(k) for k in VISIT_TYPES)}) THEN 'unknown_code:{name}' END")
        elif c in DATE_COLUMNS:
            codes.append(f"CASE WHEN {c} IS NOT NULL AND {c}_d IS NULL THEN 'bad_date:{name}' END")
        elif c == "preapproved":
            codes.append(f"CASE WHEN lower({c}) NOT IN ({words}) THEN 'not_a_bool:{name}' END")
        elif c in MONEY_COLUMNS:
            codes.append(f"CASE WHEN {c} IS NULL THEN NULL WHEN NOT regexp_full_match({c}, '-?\\d+(\\.\\d+)?') "
                         f"THEN 'not_a_number:{name}' "
                         f"WHEN length(rtrim(regexp_extract({c}, '\\.(\\d*)$', 1), '0')) > 2 THEN 'sub_fen:{name}' "
                         f"WHEN starts_with({c}, '-') THEN 'negative_amount:{name}' END")
    codes += ["CASE WHEN discharge_d < admit_d THEN 'discharge_before_admit' END",
              "CASE WHEN self_pay_f > total_f THEN 'self_pay_above_total' END",
              "CASE WHEN total_f - self_pay_f >= 0 AND class_b_f > total_f - self_pay_f THEN 'class_b_above_in_scope' END"]
    # The codes are built only for the rows a cheap test finds wrong (a bad cell has no typed value).
    fine = " AND ".join([
        *(f"{c} IS NOT NULL" for c in REQUIRED),
        f"(kind IS NULL OR kind IN ({', '.join(_lit(k) for k in VISIT_TYPES)}))",
        "(preapproved IS NULL OR pre IS NOT NULL)",
        *(f"({c} IS NULL OR {c}_d IS NOT NULL)" for c in DATE_COLUMNS),
        *(f"({c} IS NULL OR {c}_f IS NOT NULL)" for c in MONEY_COLUMNS),
        "NOT coalesce(discharge_d < admit_d, false)", "NOT coalesce(self_pay_f > total_f, false)",
        "NOT coalesce(total_f - self_pay_f >= 0 AND class_b_f > total_f - self_pay_f, false)",
    ])
    con.execute(f"CREATE TEMP TABLE checked AS SELECT *, {fine} AS fine FROM (SELECT rowid + 1 AS row, *, {typed} FROM raw)")
    con.execute(f"COPY (SELECT row, claim_id, concat_ws(';', {', '.join(codes)}) AS reason FROM checked WHERE NOT fine "
                f"ORDER BY row) TO '{_path(out.with_name(out.stem + '.rejects.csv'))}' (HEADER, DELIMITER ',')")
    lo_d, hi_d = con.execute("SELECT min(coalesce(discharge_d, admit_d)), max(coalesce(discharge_d, admit_d))"
                             " FROM checked WHERE fine").fetchone()
    # A key equal exactly on one person's claims: a 64-bit hash of the id, unless two persons share one.
    distinct = con.execute("SELECT count(DISTINCT hash(person_id)) = count(DISTINCT person_id) FROM checked WHERE fine")
    key = "hash(person_id)" if distinct.fetchone()[0] else "person_id"
    cal = deadline_table(lo_d, hi_d) if lo_d else deadline_table(TRANSITION[0], TRANSITION[0])
    values = ", ".join(f"(DATE '{d}', DATE '{dl}')" for d, dl in cal.iter_rows())
    con.execute(f"CREATE TEMP TABLE cal(d DATE, deadline DATE); INSERT INTO cal VALUES {values}")
    con.execute(f"""
CREATE TEMP TABLE claims AS
WITH typed AS (
  SELECT row, claim_id, person_id, hospital, diagnosis,
         coalesce({_case('kind', VISIT_TYPES)}, 'inpatient') AS visit, kind IS NULL AS visit_assumed,
         admit_d AS admit,
         discharge IS NULL AND coalesce({_case('kind', VISIT_TYPES)}, 'inpatient') = 'inpatient' AS discharge_assumed,
         coalesce(discharge_d, admit_d) AS discharge, enrolled_d AS enrolled, claimed_d AS claimed, pre,
         total_f AS total, coalesce(self_pay_f, 0) AS self_pay, coalesce(class_b_f, 0) AS class_b,
         {_case('hospital', HOSPITAL_ZONES)} AS zone
  FROM checked WHERE fine
), flagged AS (
  SELECT t.*, visit IN ('inpatient', 'outpatient_special') AS bound, c.deadline
  FROM typed t LEFT JOIN cal c ON c.d = t.discharge
), checks AS (
  SELECT *,
    bound AND hospital IS NOT NULL AND zone IS NULL AS not_designated,
    -- SQ-24/25: benefits from the payment date + 1 month (paid in the transition) or + 6 months
    admit < CASE WHEN enrolled BETWEEN DATE '{TRANSITION[0]}' AND DATE '{TRANSITION[1]}'
                 THEN (enrolled + INTERVAL 1 MONTH)::DATE ELSE (enrolled + INTERVAL 6 MONTH)::DATE END AS waiting,
    CASE WHEN bound THEN NOT pre ELSE false END AS no_pre,          -- SQ-18 (blank: unchecked)
    CASE WHEN bound THEN claimed > deadline ELSE false END AS late,  -- SQ-20
    CASE WHEN visit = 'inpatient' THEN 0
         WHEN visit = 'outpatient_special'
              AND regexp_matches(coalesce(diagnosis, ''), '(^|[;；|]\\s*)(dialysis|transplant_antirejection)(\\s*[;；|]|$)')
              THEN 1
         WHEN visit IN ('outpatient', 'emergency') THEN 2 END AS rule
  FROM flagged
)
SELECT *,
  concat_ws(';', CASE WHEN not_designated THEN 'not_designated' END, CASE WHEN waiting THEN 'waiting_period' END,
            CASE WHEN no_pre THEN 'no_preapproval' END, CASE WHEN late THEN 'late_claim' END,
            CASE WHEN rule IS NULL THEN 'no_rule' END) AS reasons,
  concat_ws(';', CASE WHEN bound AND hospital IS NULL THEN 'not_designated' END,
            CASE WHEN waiting IS NULL THEN 'waiting_period' END, CASE WHEN no_pre IS NULL THEN 'no_preapproval' END,
            CASE WHEN late IS NULL THEN 'late_claim' END, '{NOT_CHECKABLE}') AS unchecked,
  concat_ws(';', CASE WHEN visit_assumed THEN 'visit_type=inpatient' END, 'cause=illness',
            CASE WHEN discharge_assumed THEN 'discharge_date=admit_date' END, 'hospital_zone=' || zone,
            'person_category=resident') AS assumed,
  total - self_pay AS inscope, year(admit) AS year,
  coalesce({_case('zone', DEDUCTIBLE_FEN)}, 0) AS std, coalesce({_case('zone', ZONE_OFFSET_PPM)}, 0) AS zoff
FROM checks
""")
    # The year-to-date state on a narrow table (window operators materialise their whole input).
    con.execute(f"""
CREATE TEMP TABLE staged AS
SELECT row, {key} AS pk, year, admit, rule, std, zoff, class_b, total, reasons = '' AS ok,
       reasons = '' AND visit IN ('outpatient', 'emergency') AS account_pays,
       CASE WHEN reasons = '' THEN inscope ELSE 0 END AS e
FROM claims
""")
    # A-SQ-6: the 门诊大病 yearly deductible, C[i] = max(C[i-1], min(std[i], C[i-1] + e[i])) per person-year.
    con.execute("""
CREATE TEMP TABLE special_ded AS
WITH RECURSIVE sp AS (
  SELECT row, e, std, dense_rank() OVER (ORDER BY pk, year) AS g,
         row_number() OVER (PARTITION BY pk, year ORDER BY admit, row) AS lvl
  FROM staged WHERE rule = 1
), scan(row, g, lvl, c) AS (
  SELECT row, g, lvl, greatest(0, least(std, e)) FROM sp WHERE lvl = 1
  UNION ALL
  SELECT sp.row, sp.g, sp.lvl, greatest(scan.c, least(sp.std, scan.c + sp.e))
  FROM scan JOIN sp ON sp.g = scan.g AND sp.lvl = scan.lvl + 1
)
SELECT row, c - coalesce(lag(c) OVER (PARTITION BY g ORDER BY lvl), 0) AS paid FROM scan
""")
    con.execute(f"""
CREATE TEMP TABLE settled AS
WITH d AS (
  SELECT s.*,
    CASE WHEN NOT ok THEN 0 WHEN rule = 0 THEN least(e, std) WHEN rule = 1 THEN coalesce(x.paid, 0) ELSE 0 END AS ded,
    -- A-SQ-6: the year's earlier 门诊大病 in-scope amounts (the cumulative axis)
    coalesce(sum(CASE WHEN rule = 1 THEN e ELSE 0 END) OVER (PARTITION BY pk, year ORDER BY admit, row
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS c0
  FROM staged s LEFT JOIN special_ded x USING (row)
), b AS (
  SELECT *, CASE WHEN rule = 1 THEN c0 + ded ELSE ded END AS lo, CASE WHEN rule = 1 THEN c0 + e ELSE e END AS hi FROM d
), r AS (
  SELECT row, pk, year, admit, total, ded, account_pays,
         CASE WHEN ok AND e > 0 AND rule IN (0, 1)
            THEN CAST((({_bands_sum()}) * 2 + e::HUGEINT * 1000000) // (e::HUGEINT * 2000000) AS BIGINT)
            ELSE 0 END AS raw
  FROM b
), c AS (  -- SQ-15, A-SQ-5: the yearly cap shared by inpatient and 门诊大病
  SELECT *, sum(raw) OVER (PARTITION BY pk, year ORDER BY admit, row ROWS UNBOUNDED PRECEDING) AS capped FROM r
), h AS (
  SELECT *, least(least(capped, {YEAR_CAP_FEN}) - least(capped - raw, {YEAR_CAP_FEN}), total) AS hifp FROM c
), a AS (  -- SQ-10: 50 a year from the person's first year, carried over, for ordinary outpatient shares
  SELECT row, pk, admit, ded, hifp, total - hifp AS part,
    CASE WHEN account_pays THEN total - hifp ELSE 0 END AS ax,
    {ACCOUNT_CREDIT_FEN} * (1 + year - min(year) OVER (PARTITION BY pk)) AS alimit
  FROM h
), a2 AS (
  SELECT *, sum(ax) OVER (PARTITION BY pk ORDER BY admit, row ROWS UNBOUNDED PRECEDING) AS asum FROM a
), a3 AS (
  SELECT *, asum + least(0, min(CASE WHEN ax > 0 THEN alimit - asum ELSE {1 << 60} END)
                            OVER (PARTITION BY pk ORDER BY admit, row ROWS UNBOUNDED PRECEDING)) AS ac FROM a2
)
SELECT row, ded, hifp, part, ac - coalesce(lag(ac) OVER (PARTITION BY pk ORDER BY admit, row), 0) AS acct
FROM a3
""")
    money = {
        "medfee_sumamt": "total", "fulamt_ownpay_amt": "self_pay", "overlmt_selfpay": "0", "preselfpay_amt": "0",
        "inscp_scp_amt": "inscope", "act_pay_dedc": "ded", "hifp_pay": "hifp", "hifob_pay": "0", "hifmi_pay": "0",
        "maf_pay": "0", "hifes_pay": "0", "cvlserv_pay": "0", "oth_pay": "0", "fund_pay_sumamt": "hifp",
        "psn_part_amt": "part", "acct_pay": "acct", "psn_cash_pay": "part - acct", "deposit_amt": "0",
        "refund_amt": "0", "due_amt": "part - acct",
    }
    assert tuple(money) == MONEY_OUTPUTS
    columns = ", ".join([
        "claim_id", "person_id",
        *(f"'0.00' AS {k}" if v == "0" else f"({v})::DECIMAL(18, 0) * 0.01 AS {k}" for k, v in money.items()),
        f"'{POLICY_LABEL}' AS policy", "CASE WHEN reasons = '' THEN 'settled' ELSE 'rejected' END AS status",
        "reasons", "unchecked", "assumed",
    ])
    con.execute(f"COPY (SELECT {columns} FROM claims JOIN settled USING (row) ORDER BY row) "
                f"TO '{_path(out)}' (HEADER, DELIMITER ',')")
    return (con.execute("SELECT count(*) FROM checked WHERE NOT fine").fetchone()[0],
            con.execute("SELECT count(*) FROM claims WHERE reasons <> ''").fetchone()[0])


def _path(path: Path) -> str:
    return str(path).replace("'", "''")


def main(argv: list[str]) -> int:
    con = duckdb.connect()
    bad_rows, rejected = settle(con, Path(argv[0]), Path(argv[1]))
    return 1 if bad_rows or rejected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
