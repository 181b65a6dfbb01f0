"""`medins policy check --monotone`: for every built-in policy a bigger bill never gets less from the fund, nor costs
the patient less (issue 12, lingchuan finding)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from medins.monotone import find_falls
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[1]
#: Test fixtures for numbers the seeds leave MISSING — NOT seed numbers: a realistic basic 70 % above a 500 deductible
#: and a 大额 rate of 80 % (seed-policies.md §8 gives none), a calendar benefit year for the town scheme.
LINGCHUAN = {"raise_date": "2013-07-01", "basic_rate": "70%", "basic_deductible": "500", "large_rate": "80%"}
BUILT_IN = [("suqian-2007", {}), ("beijing-employee-2009", {}), ("beijing-resident", {}), ("ncms-rural", {}),
            ("shnu-student", {}), ("town-outpatient", {"benefit_year_start": "01-01"})]
#: The old 大额 base (everything the basic fund left once its cap bound, the co-payment below the cap included):
#: the cliff the monotone check found (resident, after the raise: 143,357.14 → 143,357.15).
OLD_LARGE_BASE = 'base: "inscope - basic_deductible - paid if basic_cap_cut > 0 else 0"'
NEW_LARGE_BASE = 'base: "basic_cap_cut / basic_rate if basic_cap_cut > 0 else 0"'


@pytest.mark.parametrize(("name", "sets"), [*BUILT_IN, ("lingchuan", LINGCHUAN)])
def test_built_in_policies_are_monotone(name, sets) -> None:
    """Every built-in policy that settles claims: on a 0–200,000 grid (1,000-yuan steps) for every visit type, zone,
    level and category it reads, no adjacent pair of settled bills pays less for more."""
    result = find_falls(load_policy(name, sets), points=201)
    assert result["settled"] > 0
    assert result["falls"].height == 0, result["falls"].head(3)


def test_LC_no_cliff_at_the_basic_cap_point() -> None:
    """The finding to the fen (resident, after the raise, the fixtures above): the basic cap of 100,000 binds at
    100,000 / 70 % + 500 = 143,357.14…; one fen more made the patient's share drop from 43,357.14 to 9,071.43 while
    the 大额 layer paid on the basic co-payment too. It now starts on the expense above the cap point (001:L59)."""
    from medins.api import settle_bill

    policy = load_policy("lingchuan", LINGCHUAN)
    bill = {"person": {"id": "L", "category": "resident"}, "visit": {"type": "inpatient", "admit_date": "2014-03-01"}}
    before, after = (settle_bill(policy, {**bill, "amounts": {"total": t}}) for t in ("143357.14", "143357.15"))
    assert before["fund_pay_sumamt"] == "100000.00"
    assert Decimal(after["psn_part_amt"]) >= Decimal(before["psn_part_amt"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medins", "policy", "check", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_monotone_reports_each_place_and_exits_1(tmp_path) -> None:
    """--monotone lists the places (facts, totals, fund, patient) and exits 1 when a bigger bill gets less: here
    lingchuan with its former 大额 base, the cliff the check found."""
    text = (ROOT / "policies/lingchuan.yaml").read_text(encoding="utf-8")
    assert NEW_LARGE_BASE in text
    cliff = tmp_path / "lingchuan-old-base.yaml"
    cliff.write_text(text.replace(NEW_LARGE_BASE, OLD_LARGE_BASE), encoding="utf-8")
    sets = [a for k, v in LINGCHUAN.items() for a in ("--set", f"{k}={v}")]
    proc = run_cli(str(cliff), "--monotone", "--points", "201", "--lang", "en", *sets)
    assert proc.returncode == 1, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "places where a bigger bill gets less from the fund" in text
    assert "143000.00 →" in text and "144000.00" in text and "resident" in text


def test_cli_monotone_passes_a_monotone_policy_and_says_so_in_chinese() -> None:
    """A monotone policy passes with exit 0 and says how much of the grid was settled."""
    proc = run_cli("policies/ncms-rural.yaml", "--monotone", "--points", "101", "--lang", "zh")
    assert proc.returncode == 0 and "单调" in proc.stdout


def test_cli_monotone_without_the_missing_numbers_is_a_usage_error() -> None:
    """Nothing on the grid settles without lingchuan's MISSING numbers: exit 2 naming them, asking for --set."""
    proc = run_cli("policies/lingchuan.yaml", "--monotone", "--lang", "en")
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2 and "missing_parameter:basic_rate" in text and "--set" in text
    assert "Traceback" not in proc.stderr
