"""Write examples/claims.csv: a GBK export with Chinese headers, as hospital/医保 systems produce them.

    python examples/make_claims.py

About 30 Suqian claims of a few persons over 2008–2009 — stays that reach the 40,000 yearly cap,
dialysis bills (门诊大病), outpatient bills paid from the 50-yuan account — plus two malformed rows
(an impossible date, a non-numeric total) that `medins batch` must reject with their row numbers.
Deterministic: no randomness, so the file in the repository is exactly what this script writes.
"""

from __future__ import annotations

from pathlib import Path

HEADER = ["结算单号", "个人编号", "人员类别", "出生日期", "医疗类别", "入院日期", "出院日期", "医院名称",
          "医院等级", "医疗费总额", "全自费金额", "乙类金额", "是否备案", "诊断名称"]

HOSPITALS = ["宿迁市中医院", "珠江医院", "工人医院", "市人民医院", "省人民医院"]


def rows() -> list[list[str]]:
    out: list[list[str]] = []
    n = 0

    def add(person: str, kind: str, admit: str, discharge: str, hospital: int, total: str, self_pay: str = "0",
            class_b: str = "0", approved: str = "是", diagnosis: str = "") -> None:
        nonlocal n
        n += 1
        birth = {"P01": "1950-05-01", "P02": "1972-11-23", "P03": "1999-02-28", "P04": "1945-08-15"}[person]
        out.append([f"SQ2008-{n:04d}", person, "城镇居民", birth, kind, admit, discharge, HOSPITALS[hospital],
                    "3" if hospital >= 3 else "2", total, self_pay, class_b, approved, diagnosis])

    # P01: three stays in 2008 that reach the 40,000 cap, then a new year.
    add("P01", "住院", "2008-01-10", "2008-01-25", 0, "30000.00", "1200.00", "3000.00")
    add("P01", "住院", "2008-05-10", "2008-05-22", 3, "30000.00", "800.00")
    add("P01", "住院", "2008-09-10", "2008-09-20", 4, "42000.00", "2000.00", "8000.00")
    add("P01", "住院", "2009-02-10", "2009-02-20", 1, "20000.00")
    # P02: dialysis all year (one deductible, cumulative bands), outpatient bills on the account.
    for month in ("02", "04", "06", "08", "10", "12"):
        add("P02", "门诊大病", f"2008-{month}-05", f"2008-{month}-05", 0, "1200.00", diagnosis="dialysis")
    add("P02", "门诊", "2008-03-01", "2008-03-01", 2, "30.00")
    add("P02", "门诊", "2008-11-01", "2008-11-01", 2, "45.50")
    add("P02", "门诊", "2009-03-01", "2009-03-01", 2, "100.00")
    # P03: a child; an emergency stay without registration and a maternity stay (excluded cause is not
    # in the columns here, so it settles as illness), and ordinary stays in each zone.
    add("P03", "住院", "2008-06-01", "2008-06-09", 0, "5000.01")
    add("P03", "住院", "2008-07-01", "2008-07-09", 3, "10000.00", class_b="10000.00")
    add("P03", "住院", "2008-08-01", "2008-08-05", 4, "6000.00")
    add("P03", "住院", "2008-10-01", "2008-10-05", 1, "3000.00", approved="否")
    # P04: a retiree with small stays and outpatient visits.
    for i, total in enumerate(["450.00", "500.00", "1800.00", "7000.00", "12000.00"]):
        add("P04", "住院", f"2009-0{i + 1}-11", f"2009-0{i + 1}-15", i % 3, total, class_b="1500.00" if i == 3 else "0")
    for day, total in (("2009-06-01", "12.00"), ("2009-07-01", "20.00"), ("2009-08-01", "35.00")):
        add("P04", "门诊", day, day, 2, total)
    # Two malformed rows: they go to the rejects file, the rest settle.
    out.append(["SQ2008-BAD1", "P04", "城镇居民", "1945-08-15", "住院", "2009-02-30", "2009-03-02", HOSPITALS[0], "2",
                "1000.00", "0", "0", "是", ""])
    out.append(["SQ2008-BAD2", "P02", "城镇居民", "1972-11-23", "住院", "2009-04-01", "2009-04-03", HOSPITALS[0], "2",
                "一千元", "0", "0", "是", ""])
    return out


def main() -> None:
    lines = [",".join(HEADER)] + [",".join(r) for r in rows()]
    path = Path(__file__).with_name("claims.csv")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    print(f"wrote {path} ({len(lines) - 1} rows, GBK)")


if __name__ == "__main__":
    main()
