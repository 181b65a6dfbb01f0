"""A bill's history must be possible before it is used (issue 12): never a second deductible in silence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medins.api import settle_bill
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[2]
BJE = load_policy("beijing-employee-2009")
SUQIAN = load_policy("suqian-2007")


def outpatient(history: dict | None) -> dict:
    bill = {"person": {"id": "P", "category": "in_service"},
            "visit": {"type": "outpatient", "admit_date": "2009-04-02", "hospital": {"level": 3}},
            "amounts": {"total": "1000"}}
    return {**bill, "history": history} if history is not None else bill


@pytest.mark.parametrize(("history", "reason"), [
    ({"inscope": "3000"}, "inconsistent_history:deductible_paid"),  # spent 3,000 but paid no yearly deductible
    ({"inscope": "3000", "deductible_paid": "500"}, "inconsistent_history:deductible_paid"),  # 1,800 is due first
    ({"inscope": "1000", "deductible_paid": "1200"}, "inconsistent_history:deductible_paid"),  # more than spent
    ({"fund_paid": "30000"}, "inconsistent_history:fund_paid"),  # above the 20,000 outpatient cap (BJE-3)
])
def test_BJE_1_history_that_cannot_be_true_is_refused(history, reason) -> None:
    """BJE-1's deductible is yearly: history that contradicts it (or the cap) rejects the claim, naming the field."""
    r = settle_bill(BJE, outpatient(history))
    assert (r["status"], r["reasons"], r["act_pay_dedc"]) == ("rejected", [reason], "0.00")


@pytest.mark.parametrize(("history", "deductible", "fund"), [
    (None, "1000.00", "0.00"),
    ({"inscope": "3000", "deductible_paid": "1800"}, "0.00", "500.00"),
    ({"inscope": "1000", "deductible_paid": "1000"}, "800.00", "100.00"),
])
def test_BJE_1_consistent_history_is_used(history, deductible, fund) -> None:
    """Consistent history settles: after 1,800 paid nothing more is charged; after 1,000 paid, 800 remain."""
    r = settle_bill(BJE, outpatient(history))
    assert (r["status"], r["act_pay_dedc"], r["fund_pay_sumamt"]) == ("settled", deductible, fund)


def test_SQ_12_per_admission_deductible_needs_no_deductible_history() -> None:
    """SQ-12's deductible is per admission: in-scope spending without deductible history is consistent."""
    bill = {"person": {"id": "P"}, "visit": {"type": "inpatient", "admit_date": "2008-04-02", "preapproved": True,
                                             "hospital": {"zone": "in_district"}},
            "amounts": {"total": "3000"}, "history": {"inscope": "9000", "fund_paid": "4000"}}
    assert settle_bill(SUQIAN, bill)["status"] == "settled"


def test_calc_stops_with_exit_2_naming_the_field(tmp_path: Path) -> None:
    """`calc` refuses inconsistent history with a located zh/en message and a hint, no traceback."""
    path = tmp_path / "bill.json"
    path.write_text(json.dumps(outpatient({"inscope": "3000"})), encoding="utf-8")
    for lang, words in (("en", "does not fit history.inscope"), ("zh", "不符")):
        proc = subprocess.run([sys.executable, "-m", "medins", "calc", str(path), "-p", "beijing-employee-2009",
                               "--lang", lang], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        text = " ".join((proc.stdout + proc.stderr).split())
        assert "history.deductible_paid" in text and words in text
