"""Self-pay-first (先行自付) rules: how several rules on one line combine, direct fund rates, claim-level amounts.

Why these tests: a line matched by two rules (a class-B item that is also a special exam) used to settle
with whichever rule came last, silently (issue 19 item 2); an item class whose rest is paid by the fund
directly (imported implants, issue 13 item 4) could not be written at all.
"""

from __future__ import annotations

from pathlib import Path

from medins.api import settle_bill
from medins.policy.loader import load_policy

HEAD = """\
id: spf-test
name: {zh: 测试, en: test}
region: {zh: 测试, en: test}
scheme: test
source: "test fixture"
parameters:
  share: {unit: rate, value: 80%, source: "T-1"}
"""

RULES = """\
rules:
  - id: inpatient
    label: {zh: 住院, en: inpatient}
    when: "visit_type == 'inpatient'"
    source: "T-2"
    bands: {rate: share, source: "T-2"}
"""


def policy(tmp_path: Path, scope: str, name: str = "p"):
    """A tiny policy (no deductible, the fund pays 80 % of the in-scope amount) with the given scope block."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEAD + scope + RULES, encoding="utf-8")
    return load_policy(str(path))


TWO_RULES = """\
scope:
{combine}  self_pay_first:
    - {{id: class_b, classes: [B], rate: 10%, source: "T-3"}}
    - {{id: special_exam, categories: [special_exam], rate: 30%, source: "T-4"}}
"""


def bill(*items: dict, **amounts: str) -> dict:
    out = {"id": "B1", "person": {"id": "P1"}, "visit": {"type": "inpatient", "admit_date": "2023-03-01"}}
    if items:
        out["items"] = list(items)
    if amounts:
        out["amounts"] = amounts
    return out


EXAM = {"name": "MRI", "category": "special_exam", "class": "B", "amount": "2000"}


def test_undeclared_overlap_rejects_the_claim_naming_both_rules(tmp_path: Path) -> None:
    """Two rules on one line with no combination declared: rejected, both rules named — never the last one silently."""
    r = settle_bill(policy(tmp_path, TWO_RULES.format(combine="")), bill(EXAM))
    assert r["status"] == "rejected"
    assert r["reasons"] == ["self_pay_first_overlap:class_b+special_exam"]
    assert r["fund_pay_sumamt"] == "0.00" and r["psn_part_amt"] == "2000.00"


def test_undeclared_rules_on_different_lines_settle(tmp_path: Path) -> None:
    """Rules that could overlap but do not on this bill's lines settle normally (each line its own rule)."""
    p = policy(tmp_path, TWO_RULES.format(combine=""))
    drug = {"name": "drug", "category": "drug", "class": "B", "amount": "1000"}
    exam_a = {**EXAM, "class": "A"}
    r = settle_bill(p, bill(drug, exam_a))
    assert r["status"] == "settled"
    assert r["preselfpay_amt"] == "700.00"  # 10 % of 1000 + 30 % of 2000
    assert r["fund_pay_sumamt"] == "1840.00"  # 80 % of 2300


def test_combine_max_takes_the_largest_share(tmp_path: Path) -> None:
    """max: 10 % and 30 % → 30 %: 600 first, 80 % of 1400 = 1120."""
    r = settle_bill(policy(tmp_path, TWO_RULES.format(combine="  self_pay_first_combine: max\n")), bill(EXAM))
    assert (r["status"], r["preselfpay_amt"], r["fund_pay_sumamt"]) == ("settled", "600.00", "1120.00")


def test_combine_sequential_applies_one_after_the_other(tmp_path: Path) -> None:
    """sequential: 10 % of 2000 = 200, then 30 % of the 1800 left = 540 → 740 (1 − 0.9 × 0.7 = 37 %)."""
    r = settle_bill(policy(tmp_path, TWO_RULES.format(combine="  self_pay_first_combine: sequential\n")), bill(EXAM))
    assert (r["status"], r["preselfpay_amt"], r["fund_pay_sumamt"]) == ("settled", "740.00", "1008.00")
