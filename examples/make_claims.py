"""Write examples/claims.csv and claims-items.csv: GBK exports with Chinese headers, as 医保 systems produce them.

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


ITEM_HEADER = ["结算单号", "个人编号", "人员类别", "出生日期", "医疗类别", "入院日期", "出院日期", "医院名称",
               "医院等级", "是否备案", "项目名称", "费用类别", "甲乙类", "金额"]


def item_rows() -> list[list[str]]:
    """Line items (one row per fee line) of P01's and P03's stays in claims.csv, same claim ids and totals.

    Settled, each claim gives exactly its claim-level row of claims.csv: class 丙 lines are the
    全自费 part, class 乙 lines the 乙类 part (tests/test_batch.py checks it). One more claim has a
    line whose amount is finer than a fen: the whole claim is held back, every line says why.
    """
    by_id = {r[0]: r for r in rows()}
    lines: dict[str, list[tuple[str, str, str, str]]] = {
        "SQ2008-0001": [("头孢曲松", "西药", "乙", "3000.00"), ("青霉素", "西药", "甲", "9000.00"),
                        ("进口营养液", "西药", "丙", "1200.00"), ("CT检查", "检查", "", "8000.00"),
                        ("手术费", "治疗", "", "8800.00")],
        "SQ2008-0002": [("白蛋白", "西药", "丙", "800.00"), ("青霉素", "西药", "甲", "11200.00"),
                        ("磁共振", "检查", "", "6000.00"), ("手术费", "治疗", "", "12000.00")],
        "SQ2008-0003": [("头孢曲松", "西药", "乙", "8000.00"), ("进口支架", "材料", "丙", "2000.00"),
                        ("青霉素", "西药", "甲", "10000.00"), ("介入治疗", "治疗", "", "22000.00")],
        "SQ2008-0004": [("青霉素", "西药", "甲", "5000.00"), ("床位费", "床位", "", "3000.00"),
                        ("手术费", "治疗", "", "12000.00")],
        "SQ2008-0014": [("退热药", "西药", "甲", "1000.01"), ("床位费", "床位", "", "4000.00")],
        "SQ2008-0015": [("头孢曲松", "西药", "乙", "6000.00"), ("阿奇霉素", "西药", "乙", "4000.00")],
        "SQ2008-0016": [("输液", "治疗", "", "2500.00"), ("检查费", "检查", "", "3500.00")],
        "SQ2008-0017": [("检查费", "检查", "", "3000.00")],
    }
    out: list[list[str]] = []
    for claim, fees in lines.items():
        c = by_id[claim]
        assert f"{sum(float(f[3]) for f in fees):.2f}" == f"{float(c[9]):.2f}", claim
        for name, category, cls, amount in fees:
            out.append([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[12], name, category, cls, amount])
    bad = ["SQ2009-I001", "P04", "城镇居民", "1945-08-15", "住院", "2009-10-11", "2009-10-15", "宿迁市中医院", "2",
           "是"]
    out.append([*bad, "青霉素", "西药", "甲", "800.00"])
    out.append([*bad, "检查费", "检查", "", "120.005"])  # finer than a fen: the claim is held back
    return out


def main() -> None:
    for name, header, body in (("claims.csv", HEADER, rows()), ("claims-items.csv", ITEM_HEADER, item_rows())):
        lines = [",".join(header)] + [",".join(r) for r in body]
        path = Path(__file__).with_name(name)
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
        print(f"wrote {path} ({len(lines) - 1} rows, GBK)")


if __name__ == "__main__":
    main()
