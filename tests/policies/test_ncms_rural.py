"""NCMS (§5): worked tests beyond the acceptance file, and the readings A-N-5, A-N-8, A-N-9."""

from __future__ import annotations

from medins.api import settle_bill, settle_bills
from medins.policy.loader import load_policy

NCMS = load_policy("ncms-rural")


def visit(*, kind: str = "inpatient", level: int = 1, day: str = "2009-05-04", total: str | None = None,
          items: list | None = None, **extra) -> dict:
    bill = {"person": {"id": extra.pop("person", "N"), "category": "rural", **extra.pop("person_facts", {})},
            "visit": {"type": kind, "admit_date": day, "discharge_date": extra.pop("discharge", day),
                      "hospital": {"level": level}, "referral": True, **extra}}
    if items is not None:
        bill["items"] = items
    else:
        bill["amounts"] = {"total": total}
    return bill


def test_N_T8_excluded_fee_kinds_are_self_paid_and_the_rest_settled() -> None:
    """Meals, escort and ambulance lines are fully self-paid; the drug line is settled at the township rate."""
    items = [{"category": "drug", "class": "A", "amount": "1000"}, {"category": "meal", "amount": "100"},
             {"category": "escort", "amount": "50"}, {"category": "ambulance", "amount": "200"}]
    r = settle_bill(NCMS, visit(items=items))
    assert (r["fulamt_ownpay_amt"], r["inscp_scp_amt"], r["fund_pay_sumamt"]) == ("350.00", "1000.00", "600.00")


def test_A_N_5_each_exam_line_is_limited_separately() -> None:
    """CT 350 and lab 120 count 200 + 120 = 320 (per item), not 200 for the stay."""
    items = [{"category": "exam", "amount": "350"}, {"category": "exam", "amount": "120"}]
    r = settle_bill(NCMS, visit(items=items))
    assert (r["overlmt_selfpay"], r["inscp_scp_amt"], r["fund_pay_sumamt"]) == ("150.00", "320.00", "192.00")


def test_A_N_8_the_rate_above_18000_can_be_supplied() -> None:
    """Level 3, 25,000 eligible: 10,350.00 as the seed reads; with 70 % above 18,000: 15,250 → capped 11,000."""
    assert settle_bill(NCMS, visit(level=3, total="25000"))["fund_pay_sumamt"] == "10350.00"
    extended = load_policy("ncms-rural", {"bands_level3[3].rate": "70%"})
    assert settle_bill(extended, visit(level=3, total="25000"))["fund_pay_sumamt"] == "11000.00"


def test_N_7_outpatient_cap_from_history() -> None:
    """4,996 of the 5,000 outpatient compensation used: a village bill raw 6.00 is capped at 4.00."""
    bill = visit(kind="outpatient", level=0, items=[{"category": "drug", "class": "A", "amount": "10"}])
    bill["history"] = {"fund_paid": "4996"}
    assert settle_bill(NCMS, bill)["fund_pay_sumamt"] == "4.00"


def test_A_N_9_dialysis_outpatients_share_the_inpatient_pool() -> None:
    """A dialysis outpatient bill sits on the same cumulative axis and 11,000 cap as the stays."""
    stay = visit(level=1, total="12000", day="2009-02-02")  # 3,000 + 3,250 + 1,400 = 7,650
    dialysis = visit(kind="outpatient_special", level=1, total="6000", day="2009-08-03", diagnosis=["dialysis"])
    results = settle_bills(NCMS, [stay, dialysis])
    assert [r["fund_pay_sumamt"] for r in results] == ["7650.00", "3350.00"]


def test_N_9_no_allowance_below_60_or_outside_township_hospitals() -> None:
    """The 60+ allowance needs a township stay and age ≥ 60 on admission."""
    items = [{"category": "drug", "class": "A", "amount": "1000"}, {"category": "treatment", "amount": "240"}]
    young = visit(items=items, discharge="2009-05-12", person_facts={"birth_date": "1980-01-01"})
    old = visit(items=items, discharge="2009-05-12", person_facts={"birth_date": "1940-01-01"})
    assert settle_bill(NCMS, young)["fund_pay_sumamt"] == "600.00"
    assert settle_bill(NCMS, old)["fund_pay_sumamt"] == "680.00"  # + min(8 × 10, 200, 240)


def test_village_and_township_need_no_referral() -> None:
    """A-N-10: only levels 2 and 3 need a referral form."""
    bill = visit(kind="outpatient", level=0, items=[{"category": "drug", "class": "A", "amount": "10"}])
    bill["visit"]["referral"] = False
    assert settle_bill(NCMS, bill)["status"] == "settled"


def test_N_6_tcm_per_dose_limit_is_outpatient_only() -> None:
    """N-6 sits under 門診 (000:L110): an inpatient stay's 70 of herbs (7 doses) counts in full — 1,070 × 60 % =
    642.00, not (1,000 + 7) × 60 % = 604.20; an outpatient visit still counts 1 yuan a dose."""
    items = [{"category": "drug", "class": "A", "amount": "1000"},
             {"category": "tcm_herbal", "amount": "70", "doses": 7}]
    r = settle_bill(NCMS, visit(items=items))
    assert (r["overlmt_selfpay"], r["inscp_scp_amt"], r["fund_pay_sumamt"]) == ("0.00", "1070.00", "642.00")
    herbs = [{"category": "tcm_herbal", "amount": "21", "doses": 7}]
    out = settle_bill(NCMS, visit(kind="outpatient", items=herbs))
    assert (out["overlmt_selfpay"], out["inscp_scp_amt"]) == ("14.00", "7.00")
