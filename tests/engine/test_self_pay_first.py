"""Self-pay-first (先行自付) rules: how several rules on one line combine, direct fund rates, claim-level amounts.

Why these tests: a line matched by two rules (a class-B item that is also a special exam) used to settle
with whichever rule came last, silently (issue 19 item 2); an item class whose rest is paid by the fund
directly (imported implants, issue 13 item 4) could not be written at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_undeclared_overlap_of_three_rules_names_every_rule(tmp_path: Path) -> None:
    """A third rule on the same line is named too (the reason lists every rule that met there)."""
    scope = TWO_RULES.format(combine="") + '    - {id: exam_all, categories: [special_exam], rate: 5%, source: "T-5"}\n'
    r = settle_bill(policy(tmp_path, scope), bill(EXAM))
    assert r["reasons"] == ["self_pay_first_overlap:class_b+special_exam+exam_all"]


def test_unnamed_rules_are_named_by_position(tmp_path: Path) -> None:
    """Without ids the reason names the rules by their place in the policy, as policy check does."""
    scope = TWO_RULES.format(combine="").replace("id: class_b, ", "").replace("id: special_exam, ", "")
    r = settle_bill(policy(tmp_path, scope), bill(EXAM))
    assert r["reasons"] == ["self_pay_first_overlap:self_pay_first[0]+self_pay_first[1]"]


def test_max_is_the_largest_share_whatever_the_order(tmp_path: Path) -> None:
    """max does not depend on the order the rules are listed in (30 % first, then 10 %)."""
    scope = """\
scope:
  self_pay_first_combine: max
  self_pay_first:
    - {id: special_exam, categories: [special_exam], rate: 30%, source: "T-4"}
    - {id: class_b, classes: [B], rate: 10%, source: "T-3"}
"""
    assert settle_bill(policy(tmp_path, scope), bill(EXAM))["preselfpay_amt"] == "600.00"


IMPLANT = """\
scope:
  self_pay_first_combine: max
  self_pay_first:
    - {{id: class_b, classes: [B], rate: 10%, source: "T-3"}}
    - {{id: implant, categories: [implant_imported], rate: 50%, fund_rate: {fund_rate}, source: "T-6"}}
"""

DEDUCTIBLE_RULES = """\
rules:
  - id: inpatient
    label: {zh: 住院, en: inpatient}
    when: "visit_type == 'inpatient'"
    source: "T-2"
    deductible: {standard: "1000", per: admission, source: "T-7"}
    bands: {rate: share, source: "T-2"}
    cap: {amount: "30000", per: claim, source: "T-8"}
"""


def implant_policy(tmp_path: Path, fund_rate: str = "100%"):
    path = tmp_path / "implant.yaml"
    path.write_text(HEAD + IMPLANT.format(fund_rate=fund_rate) + DEDUCTIBLE_RULES, encoding="utf-8")
    return load_policy(str(path))


def implant(amount: str = "50000") -> dict:
    return {"name": "joint", "category": "implant_imported", "class": "B", "amount": amount}


def test_fund_rate_pays_the_rest_directly_outside_the_deductible(tmp_path: Path) -> None:
    """Implant 50000: 25000 first, the fund pays the other 25000 at 100 %; the deductible falls on the drug line only."""
    drug = {"name": "drug", "category": "drug", "class": "A", "amount": "3000"}
    r = settle_bill(implant_policy(tmp_path), bill(implant(), drug))
    assert r["preselfpay_amt"] == "25000.00" and r["act_pay_dedc"] == "1000.00"
    assert r["inscp_scp_amt"] == "28000.00"  # the directly paid rest is in scope
    assert r["hifp_pay"] == "26600.00"  # 25000 + 80 % of (3000 - 1000)
    assert r["psn_part_amt"] == "26400.00"


def test_the_directly_paid_part_counts_against_the_cap(tmp_path: Path) -> None:
    """The cap (30000 a claim) clips the fund's payment including the directly paid part."""
    r = settle_bill(implant_policy(tmp_path), bill(implant("80000"), {"name": "d", "class": "A", "amount": "6000"}))
    assert r["hifp_pay"] == "30000.00"  # 40000 direct + 4000 banded, capped


def test_fund_rate_below_100_leaves_the_remainder_to_the_patient_rounded_once(tmp_path: Path) -> None:
    """fund_rate 33.3333 %: two lines' products are summed exactly, then rounded half up once per claim."""
    p = implant_policy(tmp_path, fund_rate="33.3333%")
    r = settle_bill(p, bill(implant("0.04"), implant("0.04")))
    # each rest is 2 fen × 33.3333 % = 0.67 fen: rounded per line 1 + 1 = 2 fen, rounded once 1.33 → 1 fen
    assert r["preselfpay_amt"] == "0.04" and r["fund_pay_sumamt"] == "0.01" and r["psn_part_amt"] == "0.07"


def test_rules_with_different_fund_rates_on_one_line_are_rejected(tmp_path: Path) -> None:
    """Two matching rules whose fund rates differ: rejected naming both, never one picked silently."""
    scope = """\
scope:
  self_pay_first_combine: max
  self_pay_first:
    - {id: implant, categories: [implant_imported], rate: 50%, fund_rate: 100%, source: "T-6"}
    - {id: class_b, classes: [B], rate: 10%, fund_rate: 90%, source: "T-3"}
"""
    r = settle_bill(policy(tmp_path, scope), bill(implant()))
    assert r["status"] == "rejected" and r["reasons"] == ["self_pay_first_fund_rate_conflict:implant+class_b"]


def test_a_rate_outside_0_100_is_a_rejection_not_a_guess(tmp_path: Path) -> None:
    """A rate expression giving 150 % for the claim rejects it (policy_error) instead of paying with it.

    (A constant 150 % is refused earlier, by ``policy check``; this one depends on the claim.)
    """
    scope = ('scope:\n  self_pay_first:\n    - {id: odd, classes: [B], '
             'rate: "1.5 if visit_type == \'inpatient\' else 0.1", source: "T-3"}\n')
    r = settle_bill(policy(tmp_path, scope), bill(EXAM))
    assert r["status"] == "rejected"
    assert r["reasons"] == ["policy_error:self_pay_first odd rate unknown or outside 0-100%"]


def test_an_unknown_fund_rate_rejects(tmp_path: Path) -> None:
    """A fund_rate reading a fact the bill lacks (hospital_level) is unknown: rejected, not treated as 0."""
    scope = ('scope:\n  self_pay_first:\n    - {id: imp, classes: [B], rate: 50%, '
             'fund_rate: "1 if hospital_level == 3 else None", source: "T-3"}\n')
    r = settle_bill(policy(tmp_path, scope), bill(EXAM))
    assert r["status"] == "rejected"
    assert r["reasons"] == ["policy_error:self_pay_first imp fund_rate unknown or outside 0-100%"]


# Claim-level amounts (no items) ---------------------------------------------------------------------------------

CLASS_B = 'scope:\n  self_pay_first:\n    - {id: class_b, classes: [B], rate: 10%, source: "T-3"}\n'


def test_class_b_share_applies_to_claim_level_amounts(tmp_path: Path) -> None:
    """A claim-level bill's class_b takes the policy's class-B share (it was skipped without items)."""
    r = settle_bill(policy(tmp_path, CLASS_B), bill(total="10000", self_pay="1000", class_b="3000"))
    assert r["preselfpay_amt"] == "300.00" and r["inscp_scp_amt"] == "8700.00"
    assert r["fund_pay_sumamt"] == "6960.00"


def test_category_rules_do_not_apply_to_claim_level_amounts(tmp_path: Path) -> None:
    """A rule selecting by item category cannot know claim-level amounts' categories: it takes nothing."""
    scope = 'scope:\n  self_pay_first:\n    - {categories: [special_exam], rate: 30%, source: "T-4"}\n'
    r = settle_bill(policy(tmp_path, scope), bill(total="10000", class_b="3000"))
    assert r["preselfpay_amt"] == "0.00"


def test_a_given_preselfpay_is_used_as_is_instead_of_the_rules(tmp_path: Path) -> None:
    """The hospital's 先行自付 amount replaces the class-B rule's 10 % (300): 500 is taken as given."""
    r = settle_bill(policy(tmp_path, CLASS_B), bill(total="10000", class_b="3000", preselfpay="500"))
    assert r["preselfpay_amt"] == "500.00" and r["fund_pay_sumamt"] == "7600.00"


def test_a_given_preselfpay_replaces_the_rules_on_items_too(tmp_path: Path) -> None:
    """With items, a given preselfpay also replaces the rules (and no overlap is reported: none was applied)."""
    b = bill(EXAM)
    b["amounts"] = {"preselfpay": "100"}
    r = settle_bill(policy(tmp_path, TWO_RULES.format(combine="")), b)
    assert (r["status"], r["preselfpay_amt"], r["fund_pay_sumamt"]) == ("settled", "100.00", "1520.00")


def test_a_given_preselfpay_above_the_in_scope_amount_is_refused(tmp_path: Path) -> None:
    """A bill whose preselfpay exceeds total − self_pay is refused with the key named (never settled)."""
    from medins.errors import InputError

    with pytest.raises(InputError) as info:
        settle_bill(policy(tmp_path, CLASS_B), bill(total="1000", self_pay="600", preselfpay="500"))
    assert "amounts.preselfpay" in info.value.message_en and "400.00" in info.value.message_en


def test_a_given_preselfpay_above_what_the_items_leave_is_rejected(tmp_path: Path) -> None:
    """With items, the engine checks the given amount against what the exclusions left: rejected, totals add up."""
    scope = 'scope:\n  excluded:\n    - {classes: [C], source: "T-9"}\n'
    b = bill({"name": "c", "class": "C", "amount": "900"}, {"name": "a", "class": "A", "amount": "100"})
    b["amounts"] = {"preselfpay": "500"}
    r = settle_bill(policy(tmp_path, scope), b)
    assert r["status"] == "rejected" and r["reasons"] == ["preselfpay_above_in_scope"]
    assert r["fund_pay_sumamt"] == "0.00" and r["psn_part_amt"] == "1000.00"


def test_a_batch_of_lined_and_claim_level_claims_equals_each_alone(tmp_path: Path) -> None:
    """Claims with items and claims with amounts only, settled together, pay what each pays alone."""
    from medins.api import settle_bills

    p = policy(tmp_path, IMPLANT.format(fund_rate="100%"))
    bills = [bill(EXAM, implant()), bill(total="10000", class_b="3000"), bill(total="800", preselfpay="80"),
             bill({"name": "a", "class": "A", "amount": "100"})]
    for i, b in enumerate(bills):
        b["id"], b["person"]["id"] = f"B{i}", f"P{i}"
    assert settle_bills(p, bills) == [settle_bill(p, b) for b in bills]
