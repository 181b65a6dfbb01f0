"""Write examples/audit-export.csv: a GBK export of Suqian claims with the settlement a hospital system recorded.

    python examples/make_audit.py

Twelve claims of three persons in 2008, with the columns a 医保 export carries after settlement
(符合范围金额, 起付线, 统筹基金支付, 个人负担, 个人账户支付, 个人现金支付). Most were settled right; four were
settled wrongly in the ways audits find (``medins audit`` must report exactly these, and why):

* SQ-A-0002 — 市人民医院 is 区外市内 (in_city), but the in-district deductible of 500 was charged (SQ-12: 800);
* SQ-A-0004 — the third stay of the year, paid as if there were no 40,000 yearly cap (SQ-15);
* SQ-A-0007 — a traffic accident (交通事故), paid as an illness although the cause is excluded (SQ-16);
* SQ-A-0010 — 6,000 of class-B drugs, paid without the 10-point class-B reduction (SQ-22).

Each wrong figure is what the engine pays under the mistaken rule (a ``--set`` of the policy, or the
cause read as illness), so the rest of the row is as consistent as the systems that make such errors.
Deterministic: the file in the repository is exactly what this script writes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

HEADER = ["结算单号", "个人编号", "人员类别", "出生日期", "医疗类别", "入院日期", "出院日期", "医院名称", "医院等级",
          "致病原因", "医疗费总额", "全自费金额", "乙类金额", "是否备案"]
RECORDED = {"inscp_scp_amt": "符合范围金额", "act_pay_dedc": "起付线", "hifp_pay": "统筹基金支付",
            "psn_part_amt": "个人负担", "acct_pay": "个人账户支付", "psn_cash_pay": "个人现金支付"}
BIRTH = {"P11": "1952-03-14", "P12": "1968-09-02", "P13": "1980-12-30"}

CLAIMS = [
    # id, person, visit, admit, discharge, hospital, level, cause, total, self-pay, class B
    ("SQ-A-0001", "P11", "住院", "2008-01-08", "2008-01-20", "宿迁市中医院", "2", "疾病", "30000.00", "1200.00", "3000.00"),
    ("SQ-A-0002", "P11", "住院", "2008-04-02", "2008-04-15", "市人民医院", "3", "疾病", "26000.00", "600.00", "0"),
    ("SQ-A-0003", "P11", "门诊", "2008-05-06", "2008-05-06", "工人医院", "2", "疾病", "38.00", "0", "0"),
    ("SQ-A-0004", "P11", "住院", "2008-09-10", "2008-09-24", "省人民医院", "3", "疾病", "52000.00", "2000.00", "0"),
    ("SQ-A-0005", "P12", "住院", "2008-02-11", "2008-02-18", "珠江医院", "2", "疾病", "8000.00", "300.00", "0"),
    ("SQ-A-0006", "P12", "门诊", "2008-03-03", "2008-03-03", "工人医院", "2", "疾病", "26.50", "0", "0"),
    ("SQ-A-0007", "P12", "住院", "2008-06-21", "2008-07-02", "宿迁市中医院", "2", "交通事故", "15000.00", "500.00", "0"),
    ("SQ-A-0008", "P12", "住院", "2008-10-15", "2008-10-22", "市人民医院", "3", "疾病", "9000.00", "0", "1000.00"),
    ("SQ-A-0009", "P13", "住院", "2008-03-20", "2008-03-27", "工人医院", "2", "疾病", "4200.00", "200.00", "0"),
    ("SQ-A-0010", "P13", "住院", "2008-07-07", "2008-07-19", "珠江医院", "2", "疾病", "18000.00", "0", "6000.00"),
    ("SQ-A-0011", "P13", "门诊", "2008-08-08", "2008-08-08", "工人医院", "2", "疾病", "60.00", "0", "0"),
    ("SQ-A-0012", "P13", "住院", "2008-11-02", "2008-11-12", "省人民医院", "3", "疾病", "12000.00", "400.00", "2000.00"),
]

#: The seeded errors: claim id → (what went wrong, the policy overrides and cause that reproduce it).
SEEDED = {
    "SQ-A-0002": ({"deductible.in_city": "500"}, None),
    "SQ-A-0004": ({"fund_cap_year": "1000000"}, None),
    "SQ-A-0007": ({}, "疾病"),
    "SQ-A-0010": ({"class_b_offset": "0%"}, None),
}


def _inputs(claims: list[tuple]) -> list[list[str]]:
    return [[c[0], c[1], "城镇居民", BIRTH[c[1]], *c[2:8], *c[8:11], "是"] for c in claims]


def _settle(rows: list[list[str]], overrides: dict[str, str]):
    """The engine's settlement of these input rows under Suqian 2007 with ``overrides`` (by claim id)."""
    from medins.claims.readers import read_claims
    from medins.engine.settle import settle
    from medins.policy.loader import load_policy

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "claims.csv"
        path.write_text("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n", encoding="utf-8")
        read = read_claims(path)
    out = settle(load_policy("suqian-2007", overrides), read.claims)
    return {r["claim_id"]: r for r in out.iter_rows(named=True)}


def rows() -> list[list[str]]:
    from medins.money import fen_to_yuan

    inputs = _inputs(CLAIMS)
    right = _settle(inputs, {})
    out = []
    for claim, row in zip(CLAIMS, inputs, strict=True):
        settled = right[claim[0]]
        if claim[0] in SEEDED:
            overrides, cause = SEEDED[claim[0]]
            variant = _inputs([c if c[0] != claim[0] or cause is None else (*c[:7], cause, *c[8:]) for c in CLAIMS])
            settled = _settle(variant, overrides)[claim[0]]
        out.append(row + [fen_to_yuan(settled[name]) for name in RECORDED])
    return out


def main() -> None:
    lines = [",".join(HEADER + list(RECORDED.values()))] + [",".join(r) for r in rows()]
    path = Path(__file__).with_name("audit-export.csv")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    print(f"wrote {path} ({len(lines) - 1} rows, GBK)")


if __name__ == "__main__":
    main()
