"""Two engine bugs hypothesis found in the payer properties (tests/engine/test_payers_properties.py), as examples.

1. A basic payment the bill gives as made (``amounts.paid.hifp_pay``) above what the yearly cap leaves used to
   settle in a batch, while ``calc`` of the person's next claim with the equivalent history (fund paid above the
   cap) was refused: now the given payment itself is rejected ``paid_above_cap:hifp_pay``, in both paths.
2. A claim rejected while settling (a negative payer base found only once an earlier rejected claim no longer
   counted) kept its payer payment in the explain trace (``_pay_p1`` 2053 against ``hifmi_pay`` 0): the engine
   now settles again until no pass rejects a claim, so a rejected claim never pays in the trace or the state.
"""

from __future__ import annotations

import pytest

from medins.api import bills_to_tables, settle_bill
from medins.engine.settle import settle
from medins.policy.compiled import CompiledPolicy, compile_policy
from medins.policy.schema import Policy
from medins.report.labels import reason_label


def _policy(rule_extra: dict, layers: list[dict], parameters: dict) -> CompiledPolicy:
    data = {"id": "random-payers", "name": {"zh": "随机", "en": "random"}, "region": {"zh": "t", "en": "t"},
            "scheme": "test", "source": "hypothesis", "benefit_year": {"start": "01-01"}, "parameters": parameters,
            "rules": [{"id": "inpatient", "label": {"zh": "住院", "en": "inpatient"}, "when": "visit_type == 'inpatient'",
                       "source": "t", "admission": True, **rule_extra, "layers": layers}]}
    return compile_policy(Policy.model_validate(data), "r.yaml")


def _layer(i: int, field: str, base: str, scale: str, **extra) -> dict:
    return {"id": f"p{i}", "field": field, "base": base, "bands": {"scale": scale, "source": "t"}, "source": "t", **extra}


def _bill(i: int, person: str, date: str, total: str, self_pay: str = "0.00", paid: str | None = None) -> dict:
    amounts = {"total": total, "self_pay": self_pay, **({"paid": {"hifp_pay": paid}} if paid is not None else {})}
    return {"id": f"C{i}", "person": {"id": person}, "visit": {"type": "inpatient", "admit_date": date}, "amounts": amounts}


def cap_policy(per: str = "year") -> CompiledPolicy:
    """Basic fund 58 %, cap 1,000 (per year or per claim), two payers of rate 0 (the first reproducer)."""
    ceiling = {"amount": "100", "per": "claim", "source": "t"}
    return _policy({"deductible": {"standard": "0", "per": "admission", "source": "t"},
                    "bands": {"rate": "58%", "source": "t"}, "cap": {"amount": "1000", "per": per, "source": "t"}},
                   [_layer(0, "hifob_pay", "inscope - paid", "scale0", ceiling=ceiling),
                    _layer(1, "hifmi_pay", "inscope - paid", "scale1", ceiling=ceiling)],
                   {"scale0": {"scale": [{"rate": "0"}], "source": "t"},
                    "scale1": {"scale": [{"rate": "0"}], "source": "t"}})


#: The first reproducer: C1 uses up the 1,000 yearly cap, C2 then gives 8.47 as paid, C0 comes later in the year.
CAP_BILLS = [_bill(0, "B", "2023-10-10", "0.00", paid="0.00"), _bill(1, "B", "2023-01-10", "91319.42"),
             _bill(2, "B", "2023-01-10", "63.10", paid="8.47"), _bill(3, "A", "2023-01-10", "0.00"),
             _bill(4, "A", "2023-01-10", "0.00"), _bill(5, "A", "2023-01-10", "0.00")]


def shared_cap_policy() -> CompiledPolicy:
    """The second reproducer: 大病 capped together with the basic fund, 救助 on a base that can go negative."""
    return _policy({"deductible": {"standard": "648", "per": "admission", "source": "t"},
                    "bands": {"rate": "0%", "source": "t"}},
                   [_layer(0, "hifob_pay", "inscope - paid", "scale0"),
                    _layer(1, "hifmi_pay", "inscope - paid", "scale1",
                           cap={"amount": "100", "per": "year", "shared_with": ["basic"], "source": "t"}),
                    _layer(2, "maf_pay", "inscope - basic_deductible - paid", "scale2",
                           cap={"amount": "100", "per": "claim", "source": "t"})],
                   {"scale0": {"scale": [{"rate": "0"}], "source": "t"},
                    "scale1": {"scale": [{"rate": "0.86"}], "source": "t"},
                    "scale2": {"scale": [{"upto": "1", "rate": "0"}, {"upto": "1635", "rate": "0"}, {"rate": "0"}],
                               "source": "t"}})


SHARED_BILLS = [_bill(0, "A", "2023-01-10", "0.00"), _bill(1, "A", "2023-07-10", "23.87"),
                _bill(2, "A", "2023-01-10", "0.00"), _bill(3, "A", "2023-01-10", "28939.83", "9999.99", "18291.85"),
                _bill(4, "A", "2023-01-10", "0.00", paid="0.00")]


def _batch(policy: CompiledPolicy, bills: list[dict], trace: bool = False) -> dict[str, dict]:
    claims, items = bills_to_tables(bills)
    return {r["claim_id"]: r for r in settle(policy, claims, items, keep_trace=trace).to_dicts()}


def test_given_basic_payment_above_the_yearly_cap_is_rejected_in_the_batch() -> None:
    rows = _batch(cap_policy(), CAP_BILLS)
    assert rows["C1"]["status"] == "settled" and rows["C1"]["hifp_pay"] == 100_000  # the cap, used up
    assert rows["C2"]["status"] == "rejected" and rows["C2"]["reasons"] == ["paid_above_cap:hifp_pay"]
    assert rows["C2"]["hifp_pay"] == 0 and rows["C2"]["psn_part_amt"] == rows["C2"]["medfee_sumamt"]
    assert rows["C0"]["status"] == "settled" and rows["C0"]["hifp_pay"] == 0


def test_calc_agrees_with_the_batch_on_a_given_payment_above_the_cap() -> None:
    policy = cap_policy()
    # C2 alone, after C1's 1,000: the given 8.47 is refused just as in the batch.
    after_c1 = {"fund_paid": "1000.00", "admissions": 1, "inscope": "91319.42"}
    alone = settle_bill(policy, {**CAP_BILLS[2], "history": after_c1})
    assert alone["status"] == "rejected" and alone["reasons"] == ["paid_above_cap:hifp_pay"]
    # C0 alone, after the claims the batch accepted (C1 only), settles as the batch row does.
    later = settle_bill(policy, {**CAP_BILLS[0], "history": after_c1})
    assert later["status"] == "settled" and later["hifp_pay"] == "0.00"
    # The history the old batch implied (fund paid 1,008.47 > cap 1,000) stays refused as impossible.
    old = settle_bill(policy, {**CAP_BILLS[0], "history": {"fund_paid": "1008.47", "admissions": 2, "inscope": "91382.52"}})
    assert old["reasons"] == ["inconsistent_history:fund_paid"]


def test_given_payment_up_to_what_the_cap_leaves_is_used_as_is() -> None:
    policy = cap_policy()
    history = {"fund_paid": "991.53", "admissions": 1, "inscope": "2000.00"}
    exact = settle_bill(policy, {**_bill(9, "B", "2023-03-01", "63.10", paid="8.47"), "history": history})
    assert exact["status"] == "settled" and exact["hifp_pay"] == "8.47"
    above = settle_bill(policy, {**_bill(9, "B", "2023-03-01", "63.10", paid="8.48"), "history": history})
    assert above["status"] == "rejected" and above["reasons"] == ["paid_above_cap:hifp_pay"]


def test_given_payment_above_a_per_claim_cap_is_rejected() -> None:
    policy = cap_policy(per="claim")
    assert settle_bill(policy, _bill(9, "B", "2023-03-01", "5000.00", paid="1000.00"))["status"] == "settled"
    above = settle_bill(policy, _bill(9, "B", "2023-03-01", "5000.00", paid="1000.01"))
    assert above["status"] == "rejected" and above["reasons"] == ["paid_above_cap:hifp_pay"]


def test_paid_above_cap_has_bilingual_words() -> None:
    assert "封顶" in reason_label("paid_above_cap:hifp_pay", "zh")
    assert "above what the cap leaves" in reason_label("paid_above_cap:hifp_pay", "en")


def test_a_claim_rejected_while_settling_pays_nothing_in_the_trace() -> None:
    rows = _batch(shared_cap_policy(), SHARED_BILLS, trace=True)
    # C3's given payment is refused (a negative 救助 base); without it C1's 大病 pays, and then its 救助 base is
    # negative: C1 is rejected too, and neither claim may show a payment the output does not.
    assert rows["C3"]["status"] == "rejected" and rows["C1"]["status"] == "rejected"
    assert rows["C1"]["reasons"][0].startswith("policy_error:")
    for row in rows.values():
        if row["status"] != "settled":
            assert [row[f"_pay_p{i}"] for i in range(3)] == [0, 0, 0], row["claim_id"]
            assert row["fund_pay_sumamt"] == 0


def test_a_claim_rejected_while_settling_is_rejected_by_calc_alone_too() -> None:
    # What the batch leaves as C1's history is C0, C2, C4 (all zero): calc of C1 alone is rejected the same way.
    alone = settle_bill(shared_cap_policy(), SHARED_BILLS[1])
    assert alone["status"] == "rejected" and alone["reasons"][0].startswith("policy_error:")


@pytest.mark.parametrize("reverse", [False, True], ids=["in-date-order", "file-in-reverse"])
def test_a_later_claim_is_judged_on_the_state_of_the_claims_settled_before_it(reverse: bool) -> None:
    """C0 is rejected in the payer stage after its basic payment (50) already counted in the yearly cap state;
    C1's given 60 is above what that state leaves (50) but not above what the claims actually settled leave
    (100): like ``calc`` with C1's real history (nothing settled before it), the batch settles C1."""
    policy = _policy({"deductible": {"standard": "0", "per": "admission", "source": "t"},
                      "bands": {"rate": "50%", "source": "t"}, "cap": {"amount": "100", "per": "year", "source": "t"}},
                     [_layer(0, "hifmi_pay", "inscope - paid", "s0"), _layer(1, "maf_pay", "basic_paid - paid", "s1")],
                     {"s0": {"scale": [{"rate": "0.5"}], "source": "t"}, "s1": {"scale": [{"rate": "0"}], "source": "t"}})
    bills = [_bill(0, "A", "2023-01-10", "100.00"), _bill(1, "A", "2023-02-10", "60.00", paid="60.00")]
    # "earlier" is the date order, whatever the order of the file (the engine keeps the input order)
    rows = _batch(policy, bills[::-1] if reverse else bills)
    assert rows["C0"]["status"] == "rejected" and rows["C0"]["reasons"][0].startswith("policy_error:")
    assert rows["C1"]["status"] == "settled" and rows["C1"]["hifp_pay"] == 6000
    alone = settle_bill(policy, bills[1])
    assert alone["status"] == "settled" and alone["hifp_pay"] == "60.00"


def test_missing_facts_of_a_persons_claims_are_all_rejected() -> None:
    """A missing fact does not depend on earlier claims: every claim lacking it is rejected (in one pass)."""
    policy = _policy({"deductible": {"standard": "0", "per": "admission", "source": "t"},
                      "bands": {"rate": "50%", "source": "t"}},
                     [_layer(0, "maf_pay", "inscope - paid if assistance_class == 'a' else 0", "s0")],
                     {"s0": {"scale": [{"rate": "0.5"}], "source": "t"}})
    bills = [_bill(i, "A", f"2023-0{i + 1}-10", "100.00") for i in range(3)]
    rows = _batch(policy, bills)
    assert [rows[f"C{i}"]["status"] for i in range(3)] == ["rejected"] * 3
    assert all(r["reasons"][0].startswith("missing_fact:") for r in rows.values())
