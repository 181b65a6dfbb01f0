"""Contributions: SQ-T13, CON-T1…CON-T5, LOW-T1/T2 through `medins premium` and its module."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from medins.errors import UsageError
from medins.money import fen_to_yuan
from medins.policy.loader import load_policy
from medins.premium import premium

ROOT = Path(__file__).resolve().parents[1]
SUQIAN = load_policy("suqian-2007")
PAID = date(2008, 3, 1)


def shares(result) -> dict[str, str]:
    return {k: fen_to_yuan(v) for k, v in result.shares.items()}


@pytest.mark.parametrize(
    ("birth", "sex", "category", "expected"),
    [("1963-01-01", "M", None, ("120.00", "30.00")),   # man 45
     ("1953-02-01", "F", None, ("60.00", "90.00")),    # woman aged 55
     ("1948-03-01", "M", None, ("60.00", "90.00")),    # man turning 60 on the payment date
     ("1948-03-02", "M", None, ("120.00", "30.00")),   # man 59 (60 tomorrow)
     ("1990-03-01", "M", None, ("120.00", "30.00")),   # aged 18
     ("1990-03-02", "M", None, ("30.00", "120.00")),   # aged 17
     ("1968-01-01", "M", "low_income", ("30.00", "120.00"))],
)
def test_SQ_T13_premium_by_age_and_category(birth, sex, category, expected) -> None:
    """SQ-5…SQ-7, A-SQ-13: age on the payment date; several groups → the lowest individual amount."""
    r = premium(SUQIAN, person_category=category, sex=sex, birth_date=date.fromisoformat(birth), paid_date=PAID)
    assert (shares(r)["individual"], shares(r)["government"]) == expected
    assert r.total == 15000


def test_SQ_T13_family_total(tmp_path) -> None:
    """A family (man 45, woman 56, child 10) pays 210 and the government 240 (= 3 × 150)."""
    family = tmp_path / "family.json"
    family.write_text(json.dumps([{"birth_date": "1963-01-01", "sex": "M"}, {"birth_date": "1952-01-01", "sex": "F"},
                                  {"birth_date": "1998-01-01", "sex": "F"}]), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "medins", "premium", "--policy", "suqian-2007", "--family",
                           str(family), "--paid-date", "2008-03-01", "--lang", "en"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "210.00" in proc.stdout and "240.00" in proc.stdout and "450.00" in proc.stdout


def test_CON_T1_beijing_employee_monthly() -> None:
    """Wage 6,000: employee 2 % + 3 = 123.00 a month; employer 10 % of the base = 600.00."""
    r = premium(load_policy("beijing-employee-2009"), paid_date=date(2009, 5, 1),
                inputs={"wage": Decimal(6000), "base": Decimal(6000)})
    assert shares(r) == {"employee": "123.00", "employer": "600.00"}


@pytest.mark.parametrize(
    ("category", "flags", "expected"),
    [("village_secretary_director", {}, {"township": "110.00", "village": "115.00", "individual": "40.00"}),
     ("village_cadre", {}, {"township": "100.00", "village": "105.00", "individual": "60.00"}),
     ("village_secretary_director", {"penalty": 1}, {"township": "0.00", "village": "5.00", "individual": "260.00"}),
     ("village_secretary_director", {"honour": 1}, {"township": "130.00", "village": "135.00", "individual": "0.00"})],
)
def test_CON_T2_to_T5_village_cadres(category, flags, expected) -> None:
    """Base 2,000: shares 5.5/5.5/2 % or 5/5/3 % + 5 relief; warning and honour years move the shares."""
    inputs = {"base": Decimal(2000), **{k: Decimal(v) for k, v in flags.items()}}
    r = premium(load_policy("village-cadre"), person_category=category, inputs=inputs)
    assert shares(r) == expected


def test_LOW_T1_T2_low_income_funding() -> None:
    """Classes 1-2: 80 = 55 + 15 + 10 with civil affairs paying the 10; others pay 10 themselves."""
    policy = load_policy("city-low-income")
    r1 = premium(policy, inputs={"dibao_class": Decimal(1)})
    assert shares(r1) == {"province_city": "55.00", "county": "15.00", "civil_affairs": "10.00", "individual": "0.00"}
    r3 = premium(policy, inputs={"dibao_class": Decimal(3)})
    assert shares(r3)["individual"] == "10.00" and r3.total == 8000


def test_missing_inputs_and_schemes_without_premiums_are_usage_errors() -> None:
    """No wage → a message naming it; a policy without contributions says so."""
    with pytest.raises(UsageError, match="wage"):
        premium(load_policy("beijing-employee-2009"), paid_date=date(2009, 5, 1), inputs={"base": Decimal(1)})
    with pytest.raises(UsageError, match="no contributions"):
        premium(load_policy("ncms-rural"))


@pytest.mark.parametrize(("sex", "birth", "eligible"), [
    ("M", date(1949, 6, 1), False), ("M", date(1949, 6, 2), True),  # 60 on 2009-06-01 → not eligible
    ("F", date(1959, 6, 1), False), ("F", date(1959, 6, 2), True),  # 50 on 2009-06-01 → not eligible
    (None, date(1930, 1, 1), True),  # without sex the limit cannot be checked: the shares are computed
])
def test_VC_1_village_cadre_age_limit(sex, birth, eligible) -> None:
    """VC-1: men under 60, women under 50 (未达到法定退休年龄); at or over the limit nobody contributes."""
    r = premium(load_policy("village-cadre"), person_category="village_cadre", sex=sex, birth_date=birth,
                paid_date=date(2009, 6, 1), inputs={"base": Decimal(2000)})
    assert (r.group != "not_eligible_age") is eligible
    if not eligible:
        assert set(shares(r).values()) == {"0.00"}
