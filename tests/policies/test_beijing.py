"""Beijing employees (§3) and residents (§4): worked tests beyond the acceptance files, and their readings."""

from __future__ import annotations

from medins.api import settle_bill, settle_bills
from medins.policy.loader import load_policy

BJE = load_policy("beijing-employee-2009")
BJR = load_policy("beijing-resident")


def bill(total: str, *, category: str | None = "in_service", visit: str = "inpatient", level: int = 3,
         day: str = "2009-04-15", birth: str | None = None, **extra) -> dict:
    person = {"id": extra.pop("person", "P")}
    if category:
        person["category"] = category
    if birth:
        person["birth_date"] = birth
    return {"person": person, "visit": {"type": visit, "admit_date": day, "hospital": {"level": level},
                                        "cause": extra.pop("cause", "illness")},
            "amounts": {"total": total}, **extra}


def test_BJE_T1_the_stated_threshold_not_the_example() -> None:
    """A-BJE-1: (2,500 − 1,800) × 50 % = 350.00 (the seed's own example says 250, which fits no stated rule)."""
    assert settle_bill(BJE, bill("2500", visit="outpatient"))["fund_pay_sumamt"] == "350.00"


def test_BJE_T3_retiree_70_plus_across_two_bills() -> None:
    """A 72-year-old retiree: 1,000 uses the deductible, then (2,000 − 300) × 80 % = 1,360.00."""
    bills = [bill("1000", category="retired", birth="1936-11-02", visit="outpatient", day="2009-02-10"),
             bill("2000", category="retired", birth="1936-11-02", visit="outpatient", day="2009-05-12")]
    assert [r["fund_pay_sumamt"] for r in settle_bills(BJE, bills)] == ["0.00", "1360.00"]


def test_BJE_retiree_without_birth_date_cannot_be_rated() -> None:
    """70 % or 80 % depends on the age: without a birth date the bill says which fact is missing."""
    r = settle_bill(BJE, bill("3300", category="retired", visit="outpatient"))
    assert r["status"] == "rejected" and r["reasons"] == ["missing_fact:age"]


def test_BJE_outpatient_and_inpatient_caps_are_separate() -> None:
    """A-BJE-10: 19,900 paid from the outpatient fund does not reduce the 70,000 inpatient cap."""
    r = settle_bill(BJE, bill("50000", history={"fund_paid": "0"}))
    assert r["fund_pay_sumamt"] == "42895.00"


def test_BJE_other_category_and_year_are_refused() -> None:
    """A resident bill is unknown_category; a 2010 bill is outside the 2009 policy (policy_not_in_force)."""
    assert settle_bill(BJE, bill("5000", category="resident"))["reasons"] == ["unknown_category"]
    assert settle_bill(BJE, bill("5000", category=None))["reasons"] == ["unknown_category"]
    assert settle_bill(BJE, bill("5000", day="2010-01-05"))["reasons"] == ["policy_not_in_force"]


def test_BJE_T7_levels_1_and_2_have_no_rule_and_excluded_causes() -> None:
    """A-BJE-9: the seed gives level-3 rates only; BJE-15: fighting is excluded."""
    assert settle_bill(BJE, bill("5000", level=1))["reasons"] == ["no_rule"]
    assert settle_bill(BJE, bill("5000", cause="fighting"))["reasons"] == ["excluded_cause:fighting"]


def test_BJR_T2_the_659_reading_can_be_restored_with_set() -> None:
    """A-BJR-2: 650 gives 1,175.00; --set deductible.resident_other.3=659 gives 1,170.50 / 1,829.50."""
    other = bill("3000", category="resident_other", birth="1964-07-01")
    assert settle_bill(BJR, other)["fund_pay_sumamt"] == "1175.00"
    literal = load_policy("beijing-resident", {"deductible.resident_other.3": "659"})
    r = settle_bill(literal, other)
    assert (r["fund_pay_sumamt"], r["psn_part_amt"]) == ("1170.50", "1829.50")


def test_BJR_T3_age_70_overrides_the_declared_category() -> None:
    """A 72-year-old declared student_child still gets the 70+ rules; level-3 payments stop at 2,000."""
    r = settle_bill(BJR, bill("10000", category="student_child", birth="1936-11-02"))
    assert r["fund_pay_sumamt"] == "2000.00"


def test_BJR_level3_cap_counts_level3_payments_only() -> None:
    """A-BJR-1: a level-2 payment does not use the level-3 cap; two level-3 stays share it."""
    bills = [bill("10000", category="student_child", level=2, day="2009-02-01"),
             bill("3000", category="student_child", level=3, day="2009-03-01"),
             bill("5000", category="student_child", level=3, day="2009-04-01")]
    results = settle_bills(BJR, bills)
    assert [r["fund_pay_sumamt"] for r in results] == ["5820.00", "1325.00", "675.00"]


def test_BJR_outpatient_has_no_rule() -> None:
    """A-BJR-6: the seed's resident rules are inpatient rules."""
    assert settle_bill(BJR, bill("500", category="resident_other", visit="outpatient"))["reasons"] == ["no_rule"]


def test_BJE_premium_data_is_encoded() -> None:
    """CON-1/CON-2 are in the policy: employee 2 % of wage + 3, employer 10 % of base."""
    groups = BJE.model.premiums.groups
    assert groups[0].shares == {"employee": "employee_rate * wage + employee_major_illness_fund",
                                "employer": "employer_rate * base"}
