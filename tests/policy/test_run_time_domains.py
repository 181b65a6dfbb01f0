"""Run-time guards of what a policy expression gives, and of the account credit (issue 12, part C).

An amount below 0 or a rate outside 0–100 % that depends on the claim cannot be seen by ``policy
check``; on the claim it is a framed ``policy_error`` naming the expression — never used, never
clipped. A ``missing: true`` account credit stops the claims the account pays for with its name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medins.api import settle_bill, settle_bills
from medins.policy.loader import builtin_policies, check_policy_file, load_policy

TINY = (Path(__file__).parent / "invalid" / "unknown_name.yaml").read_text(encoding="utf-8").replace(
    "visit_typ ==", "visit_type ==")


def _policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"tiny-{abs(hash(text))}.yaml"  # one file per text: loaded policies are cached by path
    path.write_text(text, encoding="utf-8")
    check_policy_file(str(path))  # passes check: the problem depends on the claim
    return str(path)


def _bill(total: str, level: int = 2) -> dict:
    return {"id": "B1", "person": {"id": "P1"}, "visit": {"type": "inpatient", "admit_date": "2020-03-01",
                                                          "hospital": {"level": level}}, "amounts": {"total": total}}


def test_negative_deductible_from_the_claim_is_a_framed_error(tmp_path) -> None:
    path = _policy(tmp_path, TINY.replace("standard: deductible,", 'standard: "deductible - total / 10",'))
    policy = load_policy(path)
    assert settle_bill(policy, _bill("4000"))["status"] == "settled"  # 500 - 400 = 100 ≥ 0
    result = settle_bill(policy, _bill("12000"))  # 500 - 1200 < 0
    assert result["status"] == "rejected" and result["fund_pay_sumamt"] == "0.00"
    (reason,) = result["reasons"]
    assert reason.startswith("policy_error:'deductible - total / 10'") and "negative amount" in reason


@pytest.mark.parametrize(("expression", "words"), [("rate + hospital_level * 20%", "outside 0-100%"),
                                                   ("rate - hospital_level * 40%", "outside 0-100%")])
def test_band_rate_outside_0_100_from_the_claim_is_a_framed_error(tmp_path, expression, words) -> None:
    text = TINY.replace("bands: {scale: bands, axis: absolute,",
                        f'bands: {{scale: bands, axis: absolute, rate: "{expression}",')
    policy = load_policy(_policy(tmp_path, text))
    assert settle_bill(policy, _bill("4000", level=0))["status"] == "settled"
    result = settle_bill(policy, _bill("4000", level=2))
    assert result["status"] == "rejected"
    assert any(r.startswith(f"policy_error:'{expression}'") and words in r for r in result["reasons"])


def test_negative_item_limit_rejects_the_claim_not_the_line(tmp_path) -> None:
    """A scope expression on line items that fails rejects its claim (it was silently ignored)."""
    text = TINY.replace("rules:\n", 'scope:\n  item_limits:\n    - {categories: [drug], max: "100 - total", '
                        'source: "A-5"}\nrules:\n')
    policy = load_policy(_policy(tmp_path, text))
    bill = _bill("0")
    del bill["amounts"]
    bill["items"] = [{"name": "药", "category": "drug", "class": "A", "amount": "50"}]
    assert settle_bill(policy, bill)["status"] == "settled"
    bill["items"] = [{"name": "药", "category": "drug", "class": "A", "amount": "150"}]
    result = settle_bill(policy, bill)
    assert result["status"] == "rejected"
    assert any("'100 - total'" in r and "negative amount" in r for r in result["reasons"])


def _low_income(tmp_path: Path, credit: str) -> str:
    text = builtin_policies()["city-low-income"].read_text(encoding="utf-8")
    text = text.replace("  account_credit:\n    unit: yuan\n    value: 20\n", f"  account_credit:\n    unit: yuan\n{credit}")
    path = tmp_path / f"low-{len(credit)}.yaml"  # one file per text: loaded policies are cached by path
    path.write_text(text, encoding="utf-8")
    return str(path)


OUTPATIENT = {"id": "O1", "person": {"id": "P1", "category": "low_income"},
              "visit": {"type": "outpatient", "admit_date": "2010-03-01"}, "amounts": {"total": "30"}}


def test_missing_account_credit_stops_with_its_name(tmp_path) -> None:
    """Taken as 0 before: the account paid nothing and nobody was told."""
    given = load_policy(_low_income(tmp_path, "    value: 20\n"))
    assert settle_bill(given, OUTPATIENT)["acct_pay"] == "20.00"
    missing = load_policy(_low_income(tmp_path, "    missing: true\n"))
    result = settle_bill(missing, OUTPATIENT)
    assert result["status"] == "rejected" and "missing_parameter:account_credit" in result["reasons"]
    assert settle_bills(missing, [OUTPATIENT])[0]["reasons"] == result["reasons"]
    supplied = load_policy(_low_income(tmp_path, "    missing: true\n"), {"account_credit": "20"})
    assert settle_bill(supplied, OUTPATIENT)["acct_pay"] == "20.00"


def test_missing_account_credit_in_calc_exits_2_with_the_set_hint(capsys, tmp_path) -> None:
    import json

    from tests.test_cli import run

    bill = tmp_path / "bill.json"
    bill.write_text(json.dumps(OUTPATIENT), encoding="utf-8")
    code, out, err = run(capsys, "calc", str(bill), "--policy", _low_income(tmp_path, "    missing: true\n"),
                         "--lang", "en")
    assert code == 2 and "account_credit" in out + err and "--set" in out + err and "Traceback" not in out + err


def test_a_failing_lookup_names_the_expression(tmp_path) -> None:
    """A table without the claim's entry rejects the claim with the expression in its reason.

    (A table keyed by a zone, level, visit type or hospital kind has a reason of its own, ``*_not_settled``.)
    """
    text = TINY.replace('  deductible: {unit: yuan, value: 500, source: "A-1"}\n',
                        '  deductible: {unit: yuan, values: {2019: 300}, source: "A-1"}\n').replace(
        "standard: deductible,", 'standard: "deductible[year]",')
    policy = load_policy(_policy(tmp_path, text))
    (reason,) = settle_bill(policy, _bill("4000"))["reasons"]
    assert reason.startswith("policy_error:'deductible[year]'")


def test_a_level_the_table_lacks_is_not_settled_in_words(tmp_path) -> None:
    """A deductible table by hospital level without the claim's level: ``level_not_settled:<level>``, not a raw
    ``policy_error`` (issue 12: a policy that passes gives no policy_error on a well-formed bill)."""
    from medins.report.labels import reason_label

    text = TINY.replace('  deductible: {unit: yuan, value: 500, source: "A-1"}\n',
                        '  deductible: {unit: yuan, values: {3: 300}, source: "A-1"}\n').replace(
        "standard: deductible,", 'standard: "deductible[hospital_level]",')
    policy = load_policy(_policy(tmp_path, text))
    result = settle_bill(policy, _bill("4000", level=2))
    assert result["status"] == "rejected" and result["reasons"] == ["level_not_settled:2"]
    assert "hospital level" in reason_label(result["reasons"][0], "en")
    assert settle_bill(policy, _bill("4000", level=3))["status"] == "settled"
