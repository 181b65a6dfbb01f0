"""Cross-region settlement (seed 003, XR-T1…XR-T4): the insured place's policy and its adjustments apply."""

from __future__ import annotations

from medins.api import settle_bill
from medins.policy.compiled import compile_policy
from medins.policy.loader import load_policy
from medins.policy.schema import Policy

SUQIAN = load_policy("suqian-2007")


def test_XR_T1_insured_place_rules_for_care_elsewhere() -> None:
    """A Suqian resident at 省人民医院 (out of the city): deductible 1,000 and −20 points → SQ-T4's 15,170.00."""
    bill = {"person": {"id": "X"}, "visit": {"type": "inpatient", "admit_date": "2008-03-02", "preapproved": True,
                                            "hospital": {"name": "省人民医院"}},
            "amounts": {"total": "42000", "self_pay": "2000", "class_b": "8000"}}
    r = settle_bill(SUQIAN, bill)
    assert (r["act_pay_dedc"], r["fund_pay_sumamt"]) == ("1000.00", "15170.00")


def test_XR_T2_out_of_catalogue_line_is_self_paid() -> None:
    """A line flagged outside the three catalogues is fully self-paid; the rest is settled."""
    bill = {"person": {"id": "X"}, "visit": {"type": "inpatient", "admit_date": "2008-03-02", "preapproved": True,
                                            "hospital": {"zone": "in_district"}},
            "items": [{"category": "drug", "class": "A", "amount": "12000", "code": "XK01"},
                      {"category": "drug", "class": "A", "amount": "500", "code": "ZZ99", "in_catalogue": False}]}
    r = settle_bill(SUQIAN, bill)
    assert (r["fulamt_ownpay_amt"], r["fund_pay_sumamt"]) == ("500.00", "6200.00")


def _policy_with_checks() -> object:
    data = {
        "id": "xr-demo", "name": {"zh": "演示", "en": "demo"}, "region": {"zh": "演示", "en": "demo"},
        "scheme": "demo", "source": "seed-policies.md §12 (illustration, not a seed scheme)",
        "parameters": {"rate": {"unit": "rate", "value": "50%", "source": "illustration"}},
        "admission": {"checks": [
            {"code": "waiting_period", "when": "visit_type == 'outpatient_special'",
             "reject_if": "service_date < next_month_start(recognised_date)", "source": "XR-8 003:L29 从认定次月起享受待遇"},
            {"code": "no_preapproval", "reject_if": "hospital_zone == 'out_of_province' and not filed",
             "source": "XR-3 003:L8 做好省内异地就医登记,备案"}]},
        "rules": [{"id": "all", "label": {"zh": "全部", "en": "all"}, "when": "True", "source": "illustration",
                   "bands": {"scale": "rate", "source": "illustration"}}],
    }
    return compile_policy(Policy.model_validate(data), "xr-demo.yaml")


def test_XR_T3_special_disease_from_the_month_after_recognition() -> None:
    """Recognised 2015-03-20: a claim on 2015-03-31 waits; one on 2015-04-01 is admissible."""
    policy = _policy_with_checks()

    def bill(day: str) -> dict:
        return {"person": {"id": "X"}, "visit": {"type": "outpatient_special", "admit_date": day,
                                                "recognised_date": "2015-03-20"}, "amounts": {"total": "100"}}
    assert settle_bill(policy, bill("2015-03-31"))["reasons"] == ["waiting_period"]
    assert settle_bill(policy, bill("2015-04-01"))["fund_pay_sumamt"] == "50.00"


def test_XR_T4_filing_required_out_of_province() -> None:
    """A cross-province claim with filed: false is rejected no_preapproval under a policy that requires filing."""
    bill = {"person": {"id": "X"}, "visit": {"type": "inpatient", "admit_date": "2015-05-01", "filed": False,
                                            "hospital": {"zone": "out_of_province"}}, "amounts": {"total": "100"}}
    assert settle_bill(_policy_with_checks(), bill)["reasons"] == ["no_preapproval"]
