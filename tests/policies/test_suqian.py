"""Suqian 2007 worked tests SQ-T1…SQ-T12 of seed-policies.md §2.4, through the engine (calc path)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from medins.api import settle_bill, settle_bills
from medins.policy.loader import load_policy

POLICY = load_policy("suqian-2007")


def bill(total: str, *, zone: str = "in_district", hospital: str | None = None, visit: str = "inpatient",
         self_pay: str = "0", class_b: str = "0", history: dict | None = None, **visit_facts) -> dict:
    hosp = {"name": hospital} if hospital else {"zone": zone}
    return {
        "id": "T",
        "person": {"id": visit_facts.pop("person", "P1"), "category": "resident",
                   **({"enrolled_date": visit_facts.pop("enrolled")} if "enrolled" in visit_facts else {}),
                   **({"resumed": visit_facts.pop("resumed")} if "resumed" in visit_facts else {})},
        "visit": {"type": visit, "admit_date": visit_facts.pop("admit", "2008-04-02"), "hospital": hosp,
                  "cause": visit_facts.pop("cause", "illness"), "preapproved": visit_facts.pop("preapproved", True),
                  **visit_facts},
        "amounts": {"total": total, "self_pay": self_pay, "class_b": class_b},
        **({"history": history} if history else {}),
    }


def fund(result: dict) -> Decimal:
    return Decimal(result["fund_pay_sumamt"])


def test_SQ_T1_ordinary_in_district_stay() -> None:
    """12,000 at 宿迁市中医院: 4,500×50 % + 5,000×55 % + 2,000×60 % = 6,200.00; patient 5,800.00."""
    r = settle_bill(POLICY, bill("12000", hospital="宿迁市中医院"))
    assert (r["fund_pay_sumamt"], r["psn_part_amt"], r["act_pay_dedc"]) == ("6200.00", "5800.00", "500.00")


@pytest.mark.parametrize(("total", "deductible"), [("450", "450.00"), ("500.00", "500.00")])
def test_SQ_T2_below_and_on_the_deductible(total, deductible) -> None:
    """At or below the 500 deductible the fund pays nothing and the deductible is the whole bill."""
    r = settle_bill(POLICY, bill(total))
    assert fund(r) == 0 and r["act_pay_dedc"] == deductible


def test_SQ_T3_band_edge_and_fen_rounding() -> None:
    """5,000.00 pays 2,250.00; 5,000.01 pays 2,250.0055 → half up → 2,250.01 (rounded once)."""
    assert settle_bill(POLICY, bill("5000.00"))["fund_pay_sumamt"] == "2250.00"
    r = settle_bill(POLICY, bill("5000.01"))
    assert (r["fund_pay_sumamt"], r["psn_part_amt"]) == ("2250.01", "2750.00")


def test_SQ_T4_out_of_city_class_b_out_of_catalogue() -> None:
    """省人民医院, 42,000 with 2,000 out of catalogue and 8,000 class B: rates 28/33/38/48 % → 15,170.00."""
    r = settle_bill(POLICY, bill("42000", hospital="省人民医院", self_pay="2000", class_b="8000"))
    assert (r["fund_pay_sumamt"], r["psn_part_amt"], r["fulamt_ownpay_amt"]) == ("15170.00", "26830.00", "2000.00")
    without_b = settle_bill(POLICY, bill("42000", hospital="省人民医院", self_pay="2000"))
    assert without_b["fund_pay_sumamt"] == "15950.00"  # the class-B reduction is 780.00


def test_SQ_T5_in_city_all_class_b() -> None:
    """市人民医院, 10,000 all class B: rates 30 % / 35 % → 1,260 + 1,750 = 3,010.00."""
    r = settle_bill(POLICY, bill("10000", hospital="市人民医院", class_b="10000"))
    assert (r["fund_pay_sumamt"], r["psn_part_amt"]) == ("3010.00", "6990.00")


def test_SQ_T6_class_b_share_with_fen_rounding() -> None:
    """7,000 with 1,500 class B: 3,350 − 6,500 × 2.142857… % = 3,210.714… → 3,210.71."""
    r = settle_bill(POLICY, bill("7000", class_b="1500"))
    assert (r["fund_pay_sumamt"], r["psn_part_amt"]) == ("3210.71", "3789.29")


def test_SQ_T7_annual_cap() -> None:
    """(a) 35,000 paid this year leaves 5,000 of the 40,000 cap; (b) one 65,000 stay is capped at 40,000."""
    a = settle_bill(POLICY, bill("20000", history={"fund_paid": "35000"}))
    assert (a["fund_pay_sumamt"], a["psn_part_amt"]) == ("5000.00", "15000.00")
    b = settle_bill(POLICY, bill("65000"))
    assert (b["fund_pay_sumamt"], b["psn_part_amt"]) == ("40000.00", "25000.00")


@pytest.mark.parametrize("cause", ["traffic_accident", "work_injury", "maternity", "accident"])
def test_SQ_T8_excluded_causes(cause) -> None:
    """Work injury, maternity, traffic and other accidents are rejected with excluded_cause:<code>."""
    r = settle_bill(POLICY, bill("8000", cause=cause))
    assert r["status"] == "rejected" and r["reasons"] == [f"excluded_cause:{cause}"]
    assert (r["fund_pay_sumamt"], r["psn_part_amt"]) == ("0.00", "8000.00")


def test_SQ_T8_fighting_is_not_excluded_here() -> None:
    """A-SQ-15: the list is closed; fighting is settled normally under Suqian."""
    assert settle_bill(POLICY, bill("8000", cause="fighting"))["status"] == "settled"


def test_SQ_T9_registration_and_claim_deadlines() -> None:
    """No registration → no_preapproval; emergency window admission + 3 days; 10 working days to claim."""
    assert settle_bill(POLICY, bill("3000", preapproved=False))["reasons"] == ["no_preapproval"]
    ok = bill("3000", preapproved=False, emergency=True, admit="2008-03-02", registered_date="2008-03-05")
    assert settle_bill(POLICY, ok)["status"] == "settled"
    late = bill("3000", preapproved=False, emergency=True, admit="2008-03-02", registered_date="2008-03-06")
    assert settle_bill(POLICY, late)["reasons"] == ["late_registration"]
    for discharge, last in [("2008-03-12", "2008-03-26"), ("2008-04-30", "2008-05-15"), ("2008-09-26", "2008-10-15")]:
        on_time = bill("3000", admit="2008-03-01", discharge_date=discharge, claim_date=last)
        assert settle_bill(POLICY, on_time)["status"] == "settled", discharge
        from datetime import date, timedelta

        day_after = (date.fromisoformat(last) + timedelta(days=1)).isoformat()
        late_claim = bill("3000", admit="2008-03-01", discharge_date=discharge, claim_date=day_after)
        assert settle_bill(POLICY, late_claim)["reasons"] == ["late_claim"], discharge


def test_SQ_T9_absent_facts_are_unchecked_not_rejected() -> None:
    """Without a claim date the deadline is reported as unchecked, never a rejection (DESIGN §3)."""
    r = settle_bill(POLICY, {"person": {"id": "P"}, "visit": {"type": "inpatient", "admit_date": "2008-04-02",
                                                               "hospital": {"zone": "in_district"}},
                             "amounts": {"total": "3000"}})
    assert r["status"] == "settled"
    assert set(r["unchecked"]) >= {"no_preapproval", "late_claim"}


@pytest.mark.parametrize(
    ("enrolled", "admit", "resumed", "status"),
    [("2007-09-10", "2007-10-09", False, "rejected"), ("2007-09-10", "2007-10-10", False, "settled"),
     ("2008-02-15", "2008-08-14", False, "rejected"), ("2008-02-15", "2008-08-15", False, "settled"),
     ("2009-06-01", "2009-11-30", True, "rejected"), ("2009-06-01", "2009-12-01", True, "settled"),
     ("2007-08-31", "2007-09-30", False, "settled")],
)
def test_SQ_T10_waiting_periods(enrolled, admit, resumed, status) -> None:
    """1 month for the 2007 transition, 6 months after it and after a resumption (corresponding-date months)."""
    r = settle_bill(POLICY, bill("3000", enrolled=enrolled, admit=admit, resumed=resumed))
    assert r["status"] == status
    if status == "rejected":
        assert r["reasons"] == ["waiting_period"]


def test_SQ_T11_outpatient_account_and_carry_over() -> None:
    """Balance 50: an 80 bill is paid 50 from the account and 30 in cash; 20 spent leaves 30 + 50 next year."""
    r = settle_bill(POLICY, bill("80", visit="outpatient", history={"account_balance": "50"}))
    assert (r["fund_pay_sumamt"], r["acct_pay"], r["psn_cash_pay"]) == ("0.00", "50.00", "30.00")
    seq = settle_bills(POLICY, [bill("20", visit="outpatient", admit="2008-05-01"),
                                bill("100", visit="outpatient", admit="2009-05-01")])
    assert seq[1]["acct_pay"] == "80.00" and seq[1]["psn_cash_pay"] == "20.00"


def test_SQ_T12_outpatient_major_illness_yearly_episode() -> None:
    """Dialysis bills 1,200 / 1,200 / 4,000 in a year: one deductible, cumulative bands → 350 / 600 / 2,070."""
    bills = [bill(total, visit="outpatient_special", admit=day, diagnosis=["dialysis"])
             for total, day in [("1200", "2008-02-01"), ("1200", "2008-03-01"), ("4000", "2008-04-01")]]
    results = settle_bills(POLICY, bills)
    assert [r["fund_pay_sumamt"] for r in results] == ["350.00", "600.00", "2070.00"]
    assert [r["psn_part_amt"] for r in results] == ["850.00", "600.00", "1930.00"]


def test_unknown_hospital_is_not_designated_and_listed_zone_must_agree() -> None:
    """SQ-17: a hospital not on the list is not designated; a zone contradicting the list is refused."""
    other = bill("3000", hospital="某私立医院")
    assert settle_bill(POLICY, other)["reasons"] == ["not_designated"]
    clash = bill("3000", hospital="省人民医院")
    clash["visit"]["hospital"]["zone"] = "in_district"
    assert settle_bill(POLICY, clash)["reasons"] == ["hospital_mismatch"]


def test_set_overrides_a_parameter_for_a_what_if_run() -> None:
    """--set inpatient_bands[0].rate=60% and zone_offset.in_city=0% change the result as the policy reads."""
    base = settle_bill(POLICY, bill("3000"))["fund_pay_sumamt"]
    what_if = load_policy("suqian-2007", {"inpatient_bands[0].rate": "60%"})
    assert (base, settle_bill(what_if, bill("3000"))["fund_pay_sumamt"]) == ("1250.00", "1500.00")
    flat = load_policy("suqian-2007", {"zone_offset.in_city": "0%", "deductible.in_city": "500"})
    assert settle_bill(flat, bill("12000", zone="in_city"))["fund_pay_sumamt"] == "6200.00"


def test_A_SQ_6_higher_zone_tops_up_the_yearly_outpatient_deductible() -> None:
    """门诊大病 in a higher-deductible zone later in the year charges only the difference (800 − 500 = 300)."""
    first = bill("1200", visit="outpatient_special", admit="2008-02-01", diagnosis=["dialysis"])
    second = bill("1000", zone="in_city", visit="outpatient_special", admit="2008-03-01", diagnosis=["dialysis"])
    results = settle_bills(POLICY, [first, second])
    assert [r["act_pay_dedc"] for r in results] == ["500.00", "300.00"]
    assert results[1]["fund_pay_sumamt"] == "280.00"  # (2,200 − 1,500) × (50 % − 10 %) on the cumulative axis


def test_outpatient_special_without_a_listed_diagnosis_has_no_rule() -> None:
    """Only dialysis and transplant anti-rejection are 门诊大病 in Suqian (SQ-23); others are no_rule."""
    r = settle_bill(POLICY, bill("1000", visit="outpatient_special", diagnosis=["diabetes"]))
    assert r["status"] == "rejected" and r["reasons"] == ["no_rule"]


def test_dialysis_payments_share_the_inpatient_cap() -> None:
    """A-SQ-5: 门诊大病 payments count against the same 40,000 yearly cap as inpatient stays."""
    stay = bill("65000", admit="2008-01-10")  # pays 40,000 (capped)
    dialysis = bill("3000", visit="outpatient_special", admit="2008-06-01", diagnosis=["dialysis"])
    results = settle_bills(POLICY, [stay, dialysis])
    assert [r["fund_pay_sumamt"] for r in results] == ["40000.00", "0.00"]


def test_SQ_12_out_of_province_is_a_reason_a_user_can_act_on() -> None:
    """SQ-12 gives deductibles for three zones only: an out-of-province stay is not settled by this scheme, and
    says so (zone_not_settled:out_of_province, zh/en words naming the zone), not a raw policy_error."""
    from medins.report.labels import reason_label

    r = settle_bill(POLICY, bill("10000", zone="out_of_province"))
    assert (r["status"], r["reasons"]) == ("rejected", ["zone_not_settled:out_of_province"])
    assert "out of province" in reason_label(r["reasons"][0], "en")
    assert "省外" in reason_label(r["reasons"][0], "zh") and "异地就医" in reason_label(r["reasons"][0], "zh")


def test_SQ_11_outpatient_care_at_any_hospital_SQ_17_stays_at_designated_ones() -> None:
    """SQ-11: an outpatient bill at a clinic the list does not name is paid from the account (not not_designated);
    SQ-17 binds stays: the same clinic for a stay is rejected, and a stay with only a zone lists the check."""
    visit = {"type": "outpatient", "admit_date": "2008-04-02", "hospital": {"name": "某诊所"}}
    out = settle_bill(POLICY, {"person": {"id": "P"}, "visit": visit, "amounts": {"total": "30"},
                               "history": {"account_balance": "50"}})
    assert (out["status"], out["acct_pay"]) == ("settled", "30.00") and "not_designated" not in out["unchecked"]
    stay = settle_bill(POLICY, bill("3000", hospital="某诊所"))
    assert (stay["status"], stay["reasons"]) == ("rejected", ["not_designated"])
    assert "not_designated" in settle_bill(POLICY, bill("3000"))["unchecked"]
