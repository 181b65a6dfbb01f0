"""Property tests of the payer chain (issue 13): every payer within its base, never negative, caps and shared
caps held over a person's year in a batch, fund + patient == total, and batch == calc with history."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings

from medins.api import bills_to_tables, settle_bill
from medins.engine.settle import MONEY_OUTPUTS, settle
from medins.money import fen_to_yuan
from medins.policy.schema import PAYER_FIELDS
from tests.engine.test_given_paid_and_rejects import CAP_BILLS, SHARED_BILLS, cap_policy, shared_cap_policy
from tests.strategies import payer_claims, payer_policies

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _batch(policy, bills):
    claims, items = bills_to_tables(bills)
    return settle(policy, claims, items, keep_trace=True).to_dicts()


def _key(row: dict) -> tuple:
    return row["person_id"], row["year"]


@SETTINGS
@given(payer_policies(), payer_claims())
@example(shared_cap_policy(), SHARED_BILLS)  # a claim rejected while settling once kept its payment in the trace
@example(cap_policy(), CAP_BILLS)
def test_each_payer_within_its_base_and_its_caps(policy, bills) -> None:
    rows = _batch(policy, bills)
    layers = policy.model.rules[0].layers
    paid_by: dict[tuple, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: (r["person_id"], r["admit_date"], r["row"])):
        assert row["fund_pay_sumamt"] + row["psn_part_amt"] == row["medfee_sumamt"]
        assert row["fund_pay_sumamt"] == row["hifp_pay"] + sum(row[f] for f in PAYER_FIELDS)
        given = bills[row["row"] - 1]["amounts"].get("paid", {}).get("hifp_pay")
        if given is not None and row["status"] == "settled":
            assert fen_to_yuan(row["hifp_pay"]) == given  # a given payment is used as is, never recomputed
        year = paid_by.setdefault(_key(row), {"basic": 0})
        year["basic"] += row["hifp_pay"]
        for layer in layers:
            pay, base = row[f"_pay_{layer.id}"], row[f"_pbase_{layer.id}"]
            assert 0 <= pay <= base, (layer.id, pay, base)
            assert pay == row[f"_pay_{layer.id}"] and row[layer.field] >= pay
            if row["status"] != "settled":
                assert pay == 0
            year[layer.id] = year.get(layer.id, 0) + pay
            if layer.cap is not None:
                amount = int(layer.cap.amount) * 100
                shared_now = sum(row["hifp_pay"] if o == "basic" else row[f"_pay_{o}"] for o in layer.cap.shared_with)
                if layer.cap.per == "claim":
                    assert pay <= max(0, amount - shared_now)
                else:
                    shared_year = sum(year.get(o, 0) for o in layer.cap.shared_with)
                    if pay:
                        assert year[layer.id] + shared_year <= amount
            if layer.when is not None and row.get("assistance_class") is None:
                assert pay == 0  # an unknown eligibility never pays


def _history(state: dict) -> dict:
    payers = {field: {k: fen_to_yuan(v) for k, v in values.items()} for field, values in state["payers"].items()}
    return {"fund_paid": fen_to_yuan(state["fund"]), "admissions": state["admissions"],
            "inscope": fen_to_yuan(state["inscope"]), "payers": payers}


@SETTINGS
@given(payer_policies(), payer_claims())
@example(cap_policy(), CAP_BILLS)  # a given payment above what the yearly cap left once settled in the batch only
@example(shared_cap_policy(), SHARED_BILLS)
def test_batch_equals_calc_with_history(policy, bills) -> None:
    """Each claim settled alone, given as history its person's earlier claims of the year (basic and every
    payer's paid, deductible and base), equals its batch row."""
    rows = _batch(policy, bills)
    layers = policy.model.rules[0].layers
    states: dict[tuple, dict] = {}
    for i in sorted(range(len(rows)), key=lambda i: (rows[i]["person_id"], rows[i]["admit_date"], i)):
        row = rows[i]
        state = states.setdefault(_key(row), {"fund": 0, "admissions": 0, "inscope": 0, "payers": {
            layer.field: {"paid": 0, "deductible_paid": 0, "base": 0} for layer in layers}})
        alone = settle_bill(policy, {**bills[i], "history": _history(state)})
        assert {k: alone[k] for k in (*MONEY_OUTPUTS, "status")} == {
            k: fen_to_yuan(row[k]) if k in MONEY_OUTPUTS else row[k] for k in (*MONEY_OUTPUTS, "status")}, i
        if row["status"] == "settled":
            state["fund"] += row["hifp_pay"]
            state["admissions"] += 1
            state["inscope"] += row["inscp_scp_amt"]
            for layer in layers:
                mine = state["payers"][layer.field]
                mine["paid"] += row[f"_pay_{layer.id}"]
                mine["deductible_paid"] += row[f"_pded_{layer.id}"]
                mine["base"] += row[f"_pbase_{layer.id}"] - row[f"_pceil_{layer.id}"]
