"""Self-pay-first: policy check warnings, schema errors of the new keys, explain steps, claims columns, properties."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medins.api import settle_bill
from medins.claims.readers import read_claims
from medins.errors import PolicyError
from medins.policy.loader import builtin_policies, check_policy_file, load_policy
from medins.policy.warnings import policy_warnings
from tests.engine.test_self_pay_first import EXAM, HEAD, RULES, TWO_RULES, bill, policy
from tests.test_cli import run


def write(tmp_path: Path, scope: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + scope + RULES, encoding="utf-8")
    return path


# policy check ---------------------------------------------------------------------------------------------------

def test_policy_check_warns_of_rules_that_can_meet_on_one_line(tmp_path: Path, capsys) -> None:
    """class B and special_exam can meet (a class-B special exam): a located warning naming both, exit 0."""
    path = write(tmp_path, TWO_RULES.format(combine=""))
    code, out, err = run(capsys, "policy", "check", str(path), "--lang", "en")
    assert code == 0
    assert f"{path}:11:7" in out and "class_b and special_exam can match the same line" in out
    assert "self_pay_first_combine" in out and "Traceback" not in out + err


def test_no_warning_once_a_combination_is_declared_or_rules_cannot_meet(tmp_path: Path) -> None:
    """A declared combination silences it; so do disjoint selectors (class A drugs vs class B)."""
    assert policy_warnings(str(write(tmp_path, TWO_RULES.format(combine="  self_pay_first_combine: max\n")))) == []
    disjoint = """\
scope:
  self_pay_first:
    - {classes: [B], rate: 10%, source: "T-3"}
    - {categories: [drug], classes: [A], rate: 5%, source: "T-5"}
"""
    assert policy_warnings(str(write(tmp_path, disjoint))) == []


def test_rules_differing_only_by_when_count_as_overlapping(tmp_path: Path) -> None:
    """``when`` depends on the claim, so it cannot rule an overlap out at policy check."""
    scope = """\
scope:
  self_pay_first:
    - {classes: [B], when: "hospital_level == 3", rate: 10%, source: "T-3"}
    - {classes: [B], when: "hospital_level != 3", rate: 20%, source: "T-5"}
"""
    [warning] = policy_warnings(str(write(tmp_path, scope)))
    assert warning.code == "self_pay_first_overlap" and warning.key_path == "scope.self_pay_first[1]"
    assert warning.message_zh and warning.hint_zh


def test_builtin_policies_have_no_self_pay_first_warning() -> None:
    """Every built-in policy declares how its overlapping rules combine."""
    assert all(policy_warnings(str(path)) == [] for path in builtin_policies().values())


# schema errors of the new keys ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("scope", "code", "key_path"), [
    ("scope:\n  self_pay_first_combine: largest\n", "bad_choice", "scope.self_pay_first_combine"),
    ('scope:\n  self_pay_first:\n    - {classes: [B], rate: 10%, fund_rate: fund_rat, source: "T"}\n',
     "unknown_name", "scope.self_pay_first[0].fund_rate"),
    ('scope:\n  self_pay_first:\n    - {classes: [B], rate: 10%, fund_rate: "1 +", source: "T"}\n',
     "bad_expression", "scope.self_pay_first[0].fund_rate"),
    ('scope:\n  self_pay_first:\n    - {id: Class-B, classes: [B], rate: 10%, source: "T"}\n',
     None, "scope.self_pay_first[0].id"),
    ('scope:\n  self_pay_first:\n    - {id: b, classes: [B], rate: 10%, source: "T"}\n'
     '    - {id: b, categories: [x], rate: 10%, source: "T"}\n', "duplicate_rule", "scope.self_pay_first[1].id"),
])
def test_new_keys_are_checked_and_located(tmp_path: Path, scope: str, code: str | None, key_path: str) -> None:
    """Each new key's mistakes are located policy errors with a bilingual message."""
    with pytest.raises(PolicyError) as info:
        check_policy_file(str(write(tmp_path, scope)))
    [issue] = info.value.issues
    assert issue.key_path == key_path and issue.line is not None and issue.message_zh
    if code:
        assert issue.code == code


# explain -------------------------------------------------------------------------------------------------------

XRK_BILL = {
    "id": "X", "person": {"id": "P", "category": "retired"},
    "visit": {"type": "inpatient", "admit_date": "2012-09-03", "hospital": {"level": 3}},
    "items": [{"category": "drug", "class": "B", "amount": "18200"},
              {"category": "special_exam", "class": "B", "amount": "2000"},
              {"category": "implant_imported", "class": "B", "amount": "50000"}],
}


def test_explain_cites_each_self_pay_first_rule_and_the_direct_part() -> None:
    """Each 先行自付 step names its own rule and cites that rule (issue 15: not the first exclusion's source)."""
    xrk = load_policy("xrk-2012-employee")
    steps = settle_bill(xrk, XRK_BILL, trace=True)["steps"]
    rules = {s.id: s for s in xrk.model.scope.self_pay_first}
    presp = [s for s in steps if s["step"] == "presp"]
    assert [(s["rule"], s["amount"], s["rate"]) for s in presp] == [
        ("class_b", "1820.00", "10%"), ("special_exam", "600.00", "30%"), ("implant_imported", "25000.00", "50%")]
    assert all(s["source"] == rules[s["rule"]].source for s in presp)
    by_step = {s["step"]: s for s in steps}
    assert by_step["direct_base"]["amount"] == "25000.00" and by_step["direct_base"]["rate"] == "100%"
    assert by_step["direct_pay"]["amount"] == "25000.00"
    assert by_step["direct_pay"]["source"] == rules["implant_imported"].source
    assert by_step["inscope"]["amount"] == "42780.00" and by_step["inscope_bands"]["amount"] == "17780.00"


def test_explain_of_a_given_preselfpay_cites_the_bill() -> None:
    """The hospital's amount is one step citing amounts.preselfpay."""
    nb = {"id": "N", "person": {"id": "P", "birth_date": "1964-02-01"},
          "visit": {"type": "inpatient", "admit_date": "2023-05-08", "hospital": {"level": 3, "zone": "in_city"}},
          "amounts": {"total": "22000", "self_pay": "1500", "preselfpay": "500"}}
    steps = settle_bill(load_policy("ningbo-2023-resident"), nb, trace=True)["steps"]
    [given_step] = [s for s in steps if s["step"].startswith("presp")]
    assert given_step == {"step": "presp_given", "amount": "500.00", "source": "amounts.preselfpay"}


def test_calc_explain_table_shows_rule_names(tmp_path: Path, capsys) -> None:
    """The CLI's explain table labels each 先行自付 row with its rule."""
    path = tmp_path / "bill.json"
    path.write_text(json.dumps(XRK_BILL), encoding="utf-8")
    code, out, _err = run(capsys, "calc", str(path), "--policy", "xrk-2012-employee", "--explain", "--lang", "en")
    assert code == 0 and "(special_exam)" in out and "(implant_imported)" in out


# claims columns -------------------------------------------------------------------------------------------------

def test_claims_column_preselfpay_read_from_its_chinese_header(tmp_path: Path) -> None:
    """先行自付 is read as the preselfpay column; more than the in-scope amount is a located reject."""
    path = tmp_path / "claims.csv"
    path.write_text("结算单号,个人编号,入院日期,医疗费总额,全自费金额,先行自付\n"
                    "C1,P1,2023-05-08,22000,1500,500\nC2,P1,2023-06-08,1000,600,500\n", encoding="utf-8")
    result = read_claims(path)
    assert result.claims["preselfpay"].to_list() == [50000]
    [reject] = result.rejects.iter_rows(named=True)
    assert reject["reason"] == "preselfpay_above_in_scope" and "500.00" in reject["message_en"]
    assert "先行自付金额" in reject["message_zh"]


def test_item_categories_are_read_from_chinese_names(tmp_path: Path) -> None:
    """特殊检查 / 进口人工器官 / 自理费用 (and 床位费) in a line-item export become the vocabulary's codes."""
    path = tmp_path / "lines.csv"
    path.write_text("结算单号,个人编号,入院日期,费用类别,金额\nC1,P1,2023-05-08,特殊检查,10\n"
                    "C1,P1,2023-05-08,进口人工器官,20\nC1,P1,2023-05-08,自理费用,30\nC1,P1,2023-05-08,床位费,5\n",
                    encoding="utf-8")
    assert read_claims(path).items["item_category"].to_list() == [
        "special_exam", "implant_imported", "self_care", "bed"]


# properties -----------------------------------------------------------------------------------------------------

def _share(fen: int, ppm: int) -> int:
    return int((Decimal(fen) * ppm / 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def combined(tmp_path_factory):
    """One policy per combination, with rates set per example through --set-style overrides."""
    folder = tmp_path_factory.mktemp("spf")
    scope = """\
parameters:
  a: {{unit: rate, value: 10%, source: "T"}}
  b: {{unit: rate, value: 30%, source: "T"}}
scope:
  self_pay_first_combine: {combine}
  self_pay_first:
    - {{id: class_b, classes: [B], rate: a, source: "T-3"}}
    - {{id: exam, categories: [special_exam], rate: b, source: "T-4"}}
"""
    out = {}
    for combine in ("max", "sequential"):
        path = folder / f"{combine}.yaml"
        path.write_text(HEAD + scope.format(combine=combine).replace("parameters:\n", "", 1) + RULES, encoding="utf-8")
        out[combine] = path
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.integers(0, 10**11), a=st.integers(0, 1_000_000), b=st.integers(0, 1_000_000))
def test_max_at_most_sequential_at_most_the_line(combined, amount: int, a: int, b: int) -> None:
    """max ≤ sequential ≤ the line; max is the larger share, sequential 1 − (1−a)(1−b) within a fen per step;
    fund + patient == total always."""
    line = {**EXAM, "amount": f"{Decimal(amount).scaleb(-2):.2f}"}
    sets = {"a": f"{Decimal(a).scaleb(-4)}%", "b": f"{Decimal(b).scaleb(-4)}%"}
    results = {c: settle_bill(load_policy(str(p), sets), bill(line)) for c, p in combined.items()}
    pre = {c: int(Decimal(r["preselfpay_amt"]) * 100) for c, r in results.items()}
    assert pre["max"] == max(_share(amount, a), _share(amount, b))
    first = _share(amount, a)
    assert pre["sequential"] == first + _share(amount - first, b)
    assert pre["max"] <= pre["sequential"] <= amount
    for r in results.values():
        assert Decimal(r["fund_pay_sumamt"]) + Decimal(r["psn_part_amt"]) == Decimal(r["medfee_sumamt"])
        assert Decimal(r["fund_pay_sumamt"]) >= 0 and Decimal(r["psn_part_amt"]) >= 0


def test_two_undeclared_rules_on_one_line_settle_no_money(tmp_path: Path) -> None:
    """The rejection is total: nothing from the fund, the whole bill for the patient."""
    r = settle_bill(policy(tmp_path, TWO_RULES.format(combine="")), bill(EXAM))
    assert (r["fund_pay_sumamt"], r["psn_part_amt"], r["medfee_sumamt"]) == ("0.00", "2000.00", "2000.00")


def test_batch_reads_the_hospitals_preselfpay_column(tmp_path: Path, capsys) -> None:
    """The published Ningbo example as a claims file with a 先行自付 column settles as the bill does (13160)."""
    claims = tmp_path / "nb.csv"
    claims.write_text("结算单号,个人编号,出生日期,入院日期,医院等级,医院区域,医疗费总额,全自费金额,先行自付金额\n"
                      "NB-1,P1,1964-02-01,2023-05-08,3,in_city,22000,1500,500\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    code, _out, err = run(capsys, "batch", str(claims), "--policy", "ningbo-2023-resident", "-o", str(out))
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert "13160.00" in text and "500.00" in text


def test_calc_refuses_a_preselfpay_above_the_in_scope_amount(tmp_path: Path, capsys) -> None:
    """A user error: exit 2, the key named in both languages, no traceback."""
    path = tmp_path / "bill.json"
    path.write_text(json.dumps({"visit": {"admit_date": "2023-05-08"},
                                "amounts": {"total": "1000", "self_pay": "600", "preselfpay": "500"}}), encoding="utf-8")
    for lang, words in (("en", "is more than the in-scope amount"), ("zh", "大于政策范围内金额")):
        code, out, err = run(capsys, "calc", str(path), "--policy", "ningbo-2023-resident", "--lang", lang)
        assert code == 2 and "amounts.preselfpay" in out + err and words in out + err
        assert "Traceback" not in out + err
