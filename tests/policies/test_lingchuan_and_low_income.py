"""Lingchuan caps with a 大额 layer (§8) and the urban low-income trial (§9): missing numbers are asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from medins.api import settle_bill
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[2]
#: Fixture rates declared by seed-policies.md §8.3 — NOT seed numbers: basic 100 %, no deductible, 大额 100 %.
FIXTURE = {"raise_date": "2013-07-01", "basic_rate": "100%", "basic_deductible": "0", "large_rate": "100%"}


def stay(total: str, day: str, category: str = "in_service", **extra) -> dict:
    return {"person": {"id": "L", "category": category}, "visit": {"type": "inpatient", "admit_date": day},
            "amounts": {"total": total}, **extra}


def test_LC_T1_employee_caps_before_and_after_the_raise() -> None:
    """700,000 in scope: after 120,000 + 480,000 (patient 100,000); before 80,000 + 430,000 (190,000)."""
    policy = load_policy("lingchuan", FIXTURE)
    after = settle_bill(policy, stay("700000", "2014-03-01"))
    assert (after["hifp_pay"], after["hifob_pay"], after["psn_part_amt"], after["policy"]) == (
        "120000.00", "480000.00", "100000.00", "lingchuan@after")
    before = settle_bill(policy, stay("700000", "2013-03-01"))
    assert (before["hifp_pay"], before["hifob_pay"], before["psn_part_amt"]) == ("80000.00", "430000.00", "190000.00")


def test_LC_T2_resident_caps() -> None:
    """Residents: after 100,000 + 400,000 (200,000); before 75,000 + 230,000 (395,000)."""
    policy = load_policy("lingchuan", FIXTURE)
    after = settle_bill(policy, stay("700000", "2014-03-01", category="resident"))
    before = settle_bill(policy, stay("700000", "2013-03-01", category="resident"))
    assert (after["hifp_pay"], after["hifob_pay"], after["psn_part_amt"]) == ("100000.00", "400000.00", "200000.00")
    assert (before["hifp_pay"], before["hifob_pay"], before["psn_part_amt"]) == ("75000.00", "230000.00", "395000.00")


def test_LC_T3_crossing_the_basic_cap_mid_year() -> None:
    """Basic paid 110,000 this year: a 30,000 claim gets 10,000 basic and 20,000 大额; the patient pays 0."""
    r = settle_bill(load_policy("lingchuan", FIXTURE), stay("30000", "2014-05-01", history={"fund_paid": "110000"}))
    assert (r["hifp_pay"], r["hifob_pay"], r["psn_part_amt"]) == ("10000.00", "20000.00", "0.00")


def test_LC_T4_missing_numbers_are_named() -> None:
    """Without the fixture every claim is rejected, naming each missing key; calc exits 2 asking for --set."""
    r = settle_bill(load_policy("lingchuan"), stay("30000", "2014-05-01"))
    assert r["reasons"] == ["missing_parameter:basic_deductible", "missing_parameter:basic_rate",
                            "missing_parameter:large_rate", "missing_parameter:raise_date"]
    bill = ROOT / "examples/bill.json"
    proc = subprocess.run([sys.executable, "-m", "medins", "calc", str(bill), "--policy", "lingchuan", "--lang", "en"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--set raise_date=VALUE" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


def test_LOW_T3_account_and_LOW_T4_inpatient_missing() -> None:
    """A 35 community bill: 20 from the account, 15 cash; an inpatient bill needs the county's numbers."""
    policy = load_policy("city-low-income")
    out = settle_bill(policy, {"person": {"id": "D"}, "visit": {"type": "outpatient", "admit_date": "2010-03-01"},
                               "amounts": {"total": "35"}})
    assert (out["acct_pay"], out["psn_cash_pay"]) == ("20.00", "15.00")
    stay_ = settle_bill(policy, stay("5000", "2010-03-01", category="low_income"))
    assert {r.split(":")[0] for r in stay_["reasons"]} == {"missing_parameter"}
