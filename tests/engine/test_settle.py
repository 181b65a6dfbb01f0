"""Engine behaviours that no single scheme shows: unknown facts, rejected claims and state, input order."""

from __future__ import annotations

from medins.api import settle_bill, settle_bills
from medins.policy.loader import load_policy

SUQIAN = load_policy("suqian-2007")


def stay(total: str, day: str, zone: str | None = "in_district", person: str = "P") -> dict:
    hospital = {"zone": zone} if zone else {}
    return {"id": f"{person}-{day}", "person": {"id": person},
            "visit": {"type": "inpatient", "admit_date": day, "preapproved": True, "hospital": hospital},
            "amounts": {"total": total}}


def test_a_fact_the_rule_needs_is_never_guessed() -> None:
    """Without a zone the deductible is unknown: the claim is rejected missing_fact:hospital_zone, not settled at 0."""
    r = settle_bill(SUQIAN, stay("3000", "2008-04-02", zone=None))
    assert r["status"] == "rejected" and r["reasons"] == ["missing_fact:hospital_zone"]
    assert r["fund_pay_sumamt"] == "0.00" and r["psn_part_amt"] == "3000.00"


def test_a_claim_rejected_while_settling_consumes_no_cap() -> None:
    """The person's later claim gets the whole yearly cap when an earlier one turned out unsettleable."""
    results = settle_bills(SUQIAN, [stay("65000", "2008-01-02", zone=None), stay("65000", "2008-05-02")])
    assert [r["fund_pay_sumamt"] for r in results] == ["0.00", "40000.00"]


def test_output_is_in_input_order_while_state_follows_dates() -> None:
    """Claims given out of date order come back in input order; the cap is consumed in date order."""
    later, earlier = stay("30000", "2008-09-10"), stay("65000", "2008-01-10")
    results = settle_bills(SUQIAN, [later, earlier])
    assert [r["claim_id"] for r in results] == ["P-2008-09-10", "P-2008-01-10"]
    assert [r["fund_pay_sumamt"] for r in results] == ["0.00", "40000.00"]


def test_state_never_crosses_persons_or_years() -> None:
    """Two persons and two years each start with the full cap."""
    bills = [stay("65000", "2008-01-10", person="A"), stay("65000", "2008-02-10", person="B"),
             stay("65000", "2009-01-10", person="A")]
    assert [r["fund_pay_sumamt"] for r in settle_bills(SUQIAN, bills)] == ["40000.00"] * 3


def test_unknown_category_is_settled_by_the_general_rules() -> None:
    """A category Suqian does not distinguish (in_service) settles as the default resident (DESIGN §3)."""
    bill = stay("12000", "2008-04-02")
    bill["person"]["category"] = "in_service"
    assert settle_bill(SUQIAN, bill)["fund_pay_sumamt"] == "6200.00"
