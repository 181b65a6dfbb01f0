"""Supplying what a page gives and a policy lacks (issue 19): scales by --set, missing table entries,
--set-file in the policy's own form, and every hint medins prints for a missing parameter, followed literally."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medins.api import load_policy, settle_bill
from medins.cli import _stop_on_missing
from medins.errors import PolicyError, UsageError
from tests.cli_support import run as run_medins

FIXTURES = Path(__file__).resolve().parent / "policies" / "fixtures"
ORDINAL = str(FIXTURES / "ordinal.yaml")


def run(capsys, *args: str) -> tuple[int, str, str]:
    return run_medins(capsys, *args)


def write_bill(tmp_path: Path, bill: dict, name: str = "bill") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(bill, ensure_ascii=False), encoding="utf-8")
    return path


# --- scales ----------------------------------------------------------------------------------------

SCALE_POLICY = """\
id: scaled
name: {zh: 分段, en: scaled}
region: {zh: 示例, en: example}
scheme: test
source: "test fixture"
parameters:
  scale_a: {unit: scale, missing: true, source: "按费用分段报销 (rates not given)"}
rules:
  - id: inpatient
    label: {zh: 住院, en: inpatient}
    when: "visit_type == 'inpatient'"
    source: "t"
    bands: {scale: scale_a, axis: absolute, source: "t"}
"""

INPATIENT = {"visit": {"type": "inpatient", "admit_date": "2020-03-01"}, "amounts": {"total": "20000"}}


@pytest.fixture
def scaled(tmp_path) -> str:
    path = tmp_path / "scaled.yaml"
    path.write_text(SCALE_POLICY, encoding="utf-8")
    return str(path)


def test_a_missing_scale_is_supplied_as_one_rate(scaled) -> None:
    """Today ``--set scale_a=60%`` answered "scale_a is a scale": now it is one open band at 60 %."""
    assert settle_bill(load_policy(scaled, {"scale_a": "60%"}), INPATIENT)["fund_pay_sumamt"] == "12000.00"


def test_a_missing_scale_is_supplied_as_compact_bands(scaled) -> None:
    """``5000:50%,10000:60%,:70%``: 2,500 + 3,000 + 7,000."""
    policy = load_policy(scaled, {"scale_a": "5000:50%,10000:60%,:70%"})
    assert settle_bill(policy, INPATIENT)["fund_pay_sumamt"] == "12500.00"


def test_a_missing_scale_is_supplied_band_by_band(scaled) -> None:
    """The form the old hint printed (``scale_a[0].rate=50%``) works too, band after band."""
    policy = load_policy(scaled, {"scale_a[0].upto": "5000", "scale_a[0].rate": "50%", "scale_a[1].rate": "70%"})
    assert settle_bill(policy, INPATIENT)["fund_pay_sumamt"] == "13000.00"


@pytest.mark.parametrize(("raw", "words"), [
    ("5000:50%,70%", "needs upto:rate"), ("5000:", "has no rate"), ("5000:150%", "outside 0–100%"),
    ("0:50%,:70%", "above 0"), ("6000:50%,5000:60%", "not above the previous edge"),
])
def test_a_bad_compact_scale_is_a_usage_error_naming_the_set(scaled, raw, words) -> None:
    with pytest.raises(UsageError) as info:
        load_policy(scaled, {"scale_a": raw})
    assert f"--set scale_a={raw}" in info.value.message_en and words in info.value.message_en


def test_a_band_index_beyond_the_next_band_is_refused(scaled) -> None:
    with pytest.raises(UsageError, match=r"the next band is \[0\]"):
        load_policy(scaled, {"scale_a[2].rate": "50%"})


def test_a_value_is_not_set_as_a_band() -> None:
    with pytest.raises(UsageError, match="not a scale"):
        load_policy("suqian-2007", {"fund_cap_year[0].rate": "50%"})


# --- missing table entries --------------------------------------------------------------------------

SPECIAL = {"person": {"category": "in_service"}, "visit": {"type": "outpatient_special", "admit_date": "2020-03-01"},
           "amounts": {"total": "1000"}}


def test_a_missing_entry_stops_only_the_claims_that_need_it() -> None:
    """The retirees' rate is published, the workers' is not: a worker's claim stops naming the entry."""
    policy = load_policy(ORDINAL)
    worker = settle_bill(policy, SPECIAL)
    retiree = settle_bill(policy, {**SPECIAL, "person": {"category": "retired"}})
    assert worker["status"] == "rejected" and worker["reasons"] == ["missing_parameter:rate_by_category.in_service"]
    assert (retiree["status"], retiree["fund_pay_sumamt"]) == ("settled", "900.00")


def test_a_missing_entry_is_supplied_by_its_set_path() -> None:
    policy = load_policy(ORDINAL, {"rate_by_category.in_service": "70%"})
    assert settle_bill(policy, SPECIAL)["fund_pay_sumamt"] == "700.00"


def test_calc_names_the_missing_entry_and_how_to_set_it(tmp_path, capsys) -> None:
    code, _out, err = run(capsys, "calc", str(write_bill(tmp_path, SPECIAL)), "-p", ORDINAL, "--lang", "en")
    assert code == 2 and "rate_by_category.in_service" in err and "--set rate_by_category.in_service=VALUE" in err
    assert "no rate published for workers" not in err or "Traceback" not in err


# --- --set-file ---------------------------------------------------------------------------------------

LINGCHUAN_FILE = """\
# what a county's page gives (a fixture, not seed numbers)
parameters:
  raise_date: {unit: date, value: 2013-07-01, source: "县医保局通知"}
  basic_deductible: 0
  basic_rate:
    scale:
      - {upto: 1000, rate: 50%}
      - {rate: 100%}
  large_rate: 100%
"""

LINGCHUAN_BILL = {"person": {"category": "in_service"}, "visit": {"type": "inpatient", "admit_date": "2014-05-01"},
                  "amounts": {"total": "30000"}}


def test_set_file_supplies_values_dates_and_scales(tmp_path, capsys) -> None:
    """calc --set-file: 500 + 29,000 = 29,500 from the basic fund; --set on top of the file wins."""
    params = tmp_path / "params.yaml"
    params.write_text(LINGCHUAN_FILE, encoding="utf-8")
    bill = str(write_bill(tmp_path, LINGCHUAN_BILL))
    code, out, _err = run(capsys, "calc", bill, "-p", "lingchuan", "--set-file", str(params), "-f", "json")
    assert code == 0 and json.loads(out)["hifp_pay"] == "29500.00"
    code, out, _err = run(capsys, "calc", bill, "-p", "lingchuan", "--set-file", str(params), "--set",
                          "basic_rate=100%", "-f", "json")
    assert code == 0 and json.loads(out)["hifp_pay"] == "30000.00"


def test_set_file_without_the_parameters_line_and_with_a_bare_table(tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("rate_by_category: {retired: 90%, in_service: 80%}\n", encoding="utf-8")
    policy = load_policy(ORDINAL, set_file=params)
    assert settle_bill(policy, SPECIAL)["fund_pay_sumamt"] == "800.00"


def test_set_file_errors_are_located(tmp_path, capsys) -> None:
    """Every problem at once, each with file:line:column, key, found and allowed; exit 2, no traceback."""
    params = tmp_path / "params.yaml"
    params.write_text("raise_dat: 2013-07-01\nbasic_rate:\n  scale:\n    - {upto: 1000, rate: 150%}\n"
                      "large_rate: {value: abc}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy("lingchuan", set_file=params)
    got = [(i.line, i.key_path, i.code) for i in info.value.issues]
    assert got == [(1, "parameters.raise_dat", "unknown_parameter"), (4, "parameters.basic_rate.scale[0].rate",
                                                                       "out_of_range"),
                   (5, "parameters.large_rate.value", "bad_number")]
    assert info.value.issues[0].hint_en == "did you mean raise_date?"
    code, _out, err = run(capsys, "calc", str(write_bill(tmp_path, LINGCHUAN_BILL)), "-p", "lingchuan",
                          "--set-file", str(params), "--lang", "en")
    assert code == 2 and "params.yaml:4:" in err and "Traceback" not in err


def test_set_file_on_batch_compare_and_curve(tmp_path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(LINGCHUAN_FILE, encoding="utf-8")
    claims = tmp_path / "claims.csv"
    claims.write_text("claim_id,person_id,person_category,admit_date,total\nC1,P1,in_service,2014-05-01,30000\n",
                      encoding="utf-8")
    code, _out, _err = run(capsys, "batch", str(claims), "-p", "lingchuan", "-o", str(tmp_path / "out.csv"),
                           "--set-file", str(params))
    assert code == 0 and "29500.00" in (tmp_path / "out.csv").read_text(encoding="utf-8")
    bill = str(write_bill(tmp_path, LINGCHUAN_BILL))
    code, out, _err = run(capsys, "compare", bill, "-p", "lingchuan", "-p", "suqian-2007", "--set-file", str(params),
                          "-f", "json")
    assert code == 0 and json.loads(out)[0]["hifp_pay"] == "29500.00"
    code, out, _err = run(capsys, "curve", "-p", "lingchuan", "--set-file", str(params), "--category", "in_service",
                          "--date", "2014-05-01", "--from", "0", "--to", "30000", "--points", "2", "-f", "csv")
    assert code == 0 and "30000" in out


def test_a_parameter_no_compared_policy_has_is_an_error(tmp_path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("no_such_rate: 50%\n", encoding="utf-8")
    bill = str(write_bill(tmp_path, LINGCHUAN_BILL))
    code, _out, err = run(capsys, "compare", bill, "-p", "lingchuan", "-p", "suqian-2007", "--set-file", str(params),
                          "--lang", "en")
    assert code == 2 and "no_such_rate" in err
    code, _out, err = run(capsys, "compare", bill, "-p", "lingchuan", "-p", "suqian-2007", "--set", "no_rate=1",
                          "--lang", "en")
    assert code == 2 and "no_rate" in err


# --- every hint, followed literally ------------------------------------------------------------------

_HINT = re.compile(r'--set (\S+)=VALUE \(([^()]*)\)')


def literal_sets(hint: str) -> list[list[str]]:
    """Each way the hint offers, as the ``--set`` arguments a user types: every example it shows."""
    ways: list[list[str]] = [[]]
    for name, what in _HINT.findall(hint):
        examples = [e.strip('"') for e in re.findall(r'e\.g\. ("[^"]+"|[^,;)\s]+)', what)]
        assert examples, f"the hint for {name} shows no example: {what}"
        ways = [[*way, "--set", f"{name}={ex}"] for way in ways for ex in examples]
    return ways


def calc_hint(policy: str, bill: dict) -> str:
    compiled = load_policy(policy)
    with pytest.raises(UsageError) as info:
        _stop_on_missing(settle_bill(compiled, bill), compiled)
    return info.value.hint_en or ""


@pytest.mark.parametrize(("policy", "bill"), [
    ("lingchuan", LINGCHUAN_BILL),
    ("city-low-income", {"person": {"category": "low_income"}, "visit": {"type": "inpatient",
                                                                         "admit_date": "2010-03-01"},
                         "amounts": {"total": "5000"}}),
    (ORDINAL, SPECIAL),
])
def test_calc_hint_followed_literally_settles(tmp_path, capsys, policy, bill) -> None:
    hint = calc_hint(policy, bill)
    ways = literal_sets(hint)
    assert ways and ways[0], hint
    for way in ways:
        code, out, err = run(capsys, "calc", str(write_bill(tmp_path, bill)), "-p", policy, *way, "-f", "json")
        assert code == 0, err
        assert json.loads(out)["status"] == "settled"


def test_scale_hint_offers_both_forms_and_each_settles(tmp_path, capsys, scaled) -> None:
    hint = calc_hint(scaled, INPATIENT)
    ways = literal_sets(hint)
    assert [w[1] for w in ways] == ["scale_a=60%", "scale_a=5000:50%,:70%"]
    for way in ways:
        code, out, _err = run(capsys, "calc", str(write_bill(tmp_path, INPATIENT)), "-p", scaled, *way, "-f", "json")
        assert code == 0 and json.loads(out)["status"] == "settled"


def test_batch_hint_for_town_outpatient_followed_literally_settles(tmp_path, capsys) -> None:
    """Town outpatient lacks the benefit-year start: a person's second visit needs it. batch stops as calc does
    (exit 2, nothing written, issue 15) and says how to give it; followed literally, every claim settles."""
    claims = tmp_path / "claims.csv"
    claims.write_text("claim_id,person_id,visit_type,admit_date,hospital_kind,hospital_level,total\n"
                      "C1,T,outpatient,2011-02-01,village_station,0,300\nC2,T,outpatient,2011-03-01,village_station,0,300\n",
                      encoding="utf-8")
    out_csv = str(tmp_path / "out.csv")
    code, out, err = run(capsys, "batch", str(claims), "-p", "town-outpatient", "-o", out_csv, "--lang", "en")
    assert code == 2 and "benefit_year_start" in out + err and not (tmp_path / "out.csv").exists()
    ways = literal_sets(out + err)
    assert ways == [["--set", "benefit_year_start=01-01"]] and "--set-file" not in out + err  # parameters only
    code, _out, _err = run(capsys, "batch", str(claims), "-p", "town-outpatient", "-o", out_csv, *ways[0])
    assert code == 0 and "rejected" not in (tmp_path / "out.csv").read_text(encoding="utf-8")


def test_policy_show_marks_a_missing_entry(capsys) -> None:
    code, out, _err = run(capsys, "policy", "show", ORDINAL, "--lang", "en")
    assert code == 0 and "in_service: MISSING" in out and "MissingEntry" not in out
