"""Properties that hold for every bill under every valid policy (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medins.api import settle_bill
from medins.policy.loader import load_policy
from tests.strategies import bills, policies, yuan

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUQIAN = load_policy("suqian-2007")


def d(x: str) -> Decimal:
    return Decimal(x)


@FAST
@given(policies(), bills())
def test_fund_plus_patient_is_total(policy, bill) -> None:
    """Conservation: fund + patient = total to the fen; account + cash = patient; nothing negative."""
    r = settle_bill(policy, bill)
    assert d(r["fund_pay_sumamt"]) + d(r["psn_part_amt"]) == d(r["medfee_sumamt"])
    assert d(r["acct_pay"]) + d(r["psn_cash_pay"]) == d(r["psn_part_amt"])
    assert min(d(r[k]) for k in ("fund_pay_sumamt", "psn_part_amt", "psn_cash_pay", "act_pay_dedc")) >= 0


@FAST
@given(policies(), bills())
def test_fund_never_exceeds_in_scope(policy, bill) -> None:
    """The pooled fund pays at most the in-scope amount above the deductible."""
    r = settle_bill(policy, bill)
    assert d(r["fund_pay_sumamt"]) <= d(r["inscp_scp_amt"]) - d(r["act_pay_dedc"])


@FAST
@given(policies(), bills(cause="illness"), st.integers(0, 5_000_000))
def test_fund_never_decreases_when_the_bill_grows(policy, bill, extra) -> None:
    """Adding in-scope expense to a bill never lowers what the fund pays."""
    smaller = settle_bill(policy, bill)
    grown = dict(bill, amounts=dict(bill["amounts"]))
    grown["amounts"]["total"] = yuan(int(d(bill["amounts"]["total"]) * 100) + extra)
    larger = settle_bill(policy, grown)
    assert d(larger["fund_pay_sumamt"]) >= d(smaller["fund_pay_sumamt"])


@FAST
@given(policies(), bills(cause="illness"))
def test_yearly_cap_is_never_exceeded(policy, bill) -> None:
    """Fund paid this year plus this claim's payment stays within the yearly cap."""
    cap = policy.versions[0].params.constants["fund_cap"]
    has_cap = policy.model.rules[0].cap is not None
    r = settle_bill(policy, bill)
    if has_cap:
        before = d(bill["history"]["fund_paid"])
        assert d(r["hifp_pay"]) <= max(Decimal(0), cap - before)


@FAST
@given(policies(), bills(cause="traffic_accident"))
def test_excluded_cause_pays_nothing(policy, bill) -> None:
    """An excluded cause is rejected with its reason and the fund pays 0."""
    r = settle_bill(policy, bill)
    assert r["status"] == "rejected"
    assert "excluded_cause:traffic_accident" in r["reasons"]
    assert d(r["fund_pay_sumamt"]) == 0 and d(r["psn_part_amt"]) == d(r["medfee_sumamt"])


line = st.fixed_dictionaries({
    "category": st.sampled_from(["drug", "exam", "surgery", "bed"]),
    "class": st.sampled_from(["A", "B", "C"]),
    "amount": st.integers(1, 2_000_000).map(yuan),
})


@FAST
@given(st.lists(line, min_size=1, max_size=8), st.randoms())
def test_line_item_order_does_not_matter(lines, rnd) -> None:
    """Shuffling a bill's line items gives the same settlement (class B is pro rata, not positional)."""
    bill = {
        "person": {"id": "P"},
        "visit": {"type": "inpatient", "admit_date": "2008-04-02", "hospital": {"zone": "in_city"},
                  "preapproved": True},
        "items": lines,
    }
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    assert settle_bill(SUQIAN, bill) == settle_bill(SUQIAN, dict(bill, items=shuffled))
