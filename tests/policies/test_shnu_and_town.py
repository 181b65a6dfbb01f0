"""SHNU students (§6) and the town outpatient scheme (§7): worked tests beyond the acceptance files."""

from __future__ import annotations

from medins.api import settle_bill, settle_bills
from medins.policy.loader import load_policy

SHNU = load_policy("shnu-student")
TOWN = load_policy("town-outpatient")


def town_visit(day: str, *, items: list | None = None, total: str = "100", kind: str = "village_station") -> dict:
    bill = {"person": {"id": "T"}, "visit": {"type": "outpatient", "admit_date": day,
                                            "hospital": {"kind": kind, "level": 0}}}
    if items:
        bill["items"] = items
    else:
        bill["amounts"] = {"total": total}
    return bill


def test_T_T6_over_quantity_drug_line() -> None:
    """A-T-4: 10 days of an acute prescription (limit 3): 50 × 7 / 10 = 35.00 over limit; 15 × 60 % = 9.00."""
    line = {"category": "drug", "class": "A", "amount": "50", "days_supply": 10, "acute": True}
    r = settle_bill(TOWN, town_visit("2011-02-22", items=[line]))
    assert (r["overlmt_selfpay"], r["fund_pay_sumamt"], r["psn_part_amt"]) == ("35.00", "9.00", "41.00")


def test_T_3_items_off_the_positive_list_are_self_paid() -> None:
    """A-T-3: a CT (not on the town list) is fully self-paid even though T-4 does not name it."""
    items = [{"category": "exam", "amount": "300"}, {"category": "ecg", "amount": "20"}]
    r = settle_bill(TOWN, town_visit("2011-02-22", items=items))
    assert (r["fulamt_ownpay_amt"], r["fund_pay_sumamt"]) == ("300.00", "12.00")


def test_T_7_benefit_year_start_is_needed_for_a_sequence() -> None:
    """Without the 社保年度 start the yearly cap cannot be carried across claims: missing_parameter, never a guess."""
    bills = [town_visit("2011-02-01", total="300"), town_visit("2011-03-01", total="300")]
    assert {r["reasons"][0] for r in settle_bills(TOWN, bills)} == {"missing_parameter:benefit_year_start"}
    supplied = load_policy("town-outpatient", {"benefit_year_start": "01-01"})
    assert [r["fund_pay_sumamt"] for r in settle_bills(supplied, bills)] == ["180.00", "70.00"]


def test_T_2_inpatient_costs_are_outside_the_scheme() -> None:
    """Hospital inpatient bills have no rule here."""
    bill = town_visit("2011-02-01")
    bill["visit"]["type"] = "inpatient"
    assert settle_bill(TOWN, bill)["reasons"] == ["no_rule"]


def test_S_T2_observation_stay_is_settled_as_inpatient() -> None:
    """An emergency observation stay at level 3 of 1,000: deductible 300, the rest paid in full."""
    bill = {"person": {"id": "S"}, "visit": {"type": "emergency", "admit_date": "2010-05-03", "emergency": True,
                                            "observation": True, "hospital": {"level": 3}},
            "amounts": {"total": "1000"}}
    r = settle_bill(SHNU, bill)
    assert (r["act_pay_dedc"], r["fund_pay_sumamt"]) == ("300.00", "700.00")


def test_S_11_inpatient_voucher_is_valid_seven_days() -> None:
    """A-S-7: issued 2010-04-01, an admission on 04-08 is valid, on 04-09 it is voucher_expired."""
    def stay(day: str) -> dict:
        return {"person": {"id": "S"}, "visit": {"type": "inpatient", "admit_date": day, "voucher_date": "2010-04-01",
                                                "referral": True, "hospital": {"level": 2}},
                "amounts": {"total": "1000"}}
    assert settle_bill(SHNU, stay("2010-04-08"))["fund_pay_sumamt"] == "900.00"
    assert settle_bill(SHNU, stay("2010-04-09"))["reasons"] == ["voucher_expired"]


def test_S_2_registration_fee_is_self_paid() -> None:
    """The 1-yuan registration fee is self-paid; the referred drug line is paid at 80 %."""
    bill = {"person": {"id": "S"}, "visit": {"type": "outpatient", "admit_date": "2010-03-15", "referral": True,
                                            "hospital": {"name": "上海市第六人民医院", "level": 3}},
            "items": [{"category": "registration", "amount": "1"}, {"category": "drug", "class": "A", "amount": "100"}]}
    r = settle_bill(SHNU, bill)
    assert (r["fulamt_ownpay_amt"], r["fund_pay_sumamt"], r["psn_part_amt"]) == ("1.00", "80.00", "21.00")


def _special(day: str = "2010-03-10", **visit) -> dict:
    return {"person": {"id": "S", "category": "student"},
            "visit": {"type": "outpatient_special", "admit_date": day, "hospital": {"level": 3, "zone": "in_city"},
                      "voucher_date": "2010-03-01", **visit}, "amounts": {"total": "6000"}}


def test_S_14_only_the_listed_diseases_are_paid_in_full() -> None:
    """S-14's list is a condition: chemotherapy 6,000 → fund 6,000; a diagnosis off the list (a cold) is rejected
    not_listed_disease; no diagnosis at all is settled but the disease check is listed as unchecked."""
    assert settle_bill(SHNU, _special(diagnosis=["chemotherapy"]))["fund_pay_sumamt"] == "6000.00"
    off = settle_bill(SHNU, _special(diagnosis=["common_cold"]))
    assert (off["status"], off["reasons"], off["fund_pay_sumamt"]) == ("rejected", ["not_listed_disease"], "0.00")
    unknown = settle_bill(SHNU, _special())
    assert unknown["status"] == "settled" and "not_listed_disease" in unknown["unchecked"]
