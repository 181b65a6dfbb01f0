"""``--explain`` tells the whole story (issue 19, deliverable 5): each band with the range it applied to on its
named axis, every limit with its headroom whether it bound or not, where each value came from, and
did-you-mean only for close names — in the JSON steps and in the table, zh and en, at 80 columns."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from medins.api import load_policy, settle_bill
from medins.claims.bill import bill_to_tables
from medins.errors import InputError
from medins.report.tables import explain_table

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "policies" / "fixtures"
SUQIAN = load_policy("suqian-2007")
EXAMPLE = json.loads((ROOT / "examples" / "bill.json").read_text(encoding="utf-8"))


def render(steps: list[dict], lang: str, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(explain_table(steps, lang))  # type: ignore[arg-type]
    text = out.getvalue()
    assert max(cell_len(line) for line in text.splitlines()) <= width
    assert "…" not in re.split("依据原文|The clauses cited", text)[0]  # the quoted clauses below may hold their own …
    return text


def step_column(text: str) -> str:
    """The Step column of a rendered explain table, its folded lines joined: at 80 columns a label spans
    several lines, between which the other columns' cells stand."""
    table = re.split("数值来源|Where the values came from|依据原文|The clauses cited", text)[0]
    return " ".join(re.split(r"\s{2,}", line[2:])[0] for line in table.splitlines() if line[2:3].strip())


def flat(text: str) -> str:
    """The text without any whitespace: words folded over lines at 80 columns read as one."""
    return re.sub(r"\s+", "", text)


def steps_of(result: dict, kind: str) -> list[dict]:
    return [s for s in result["steps"] if s["step"] == kind]


def special(history: dict) -> dict:
    """A dialysis visit under Suqian's 门诊大病 rule: a yearly deductible and bands on the year-to-date axis."""
    return {"person": {"id": "P"}, "visit": {"type": "outpatient_special", "admit_date": "2008-05-01",
                                             "diagnosis": ["dialysis"], "hospital": {"zone": "in_district"}},
            "amounts": {"total": "4000"}, "history": history}


# --- bands: the range each applied to --------------------------------------------------------------

def test_band_range_is_where_it_applied_not_the_listed_edges() -> None:
    """SQ-T4 (absolute axis): band 1 is listed (0, 5000] but applied above the 1000 deductible: (1000, 5000]."""
    result = settle_bill(SUQIAN, EXAMPLE, trace=True)
    bands = steps_of(result, "band")
    assert [(b["axis"], b["range"], b["band_edges"]) for b in bands] == [
        ("absolute", "(1000.00, 5000.00]", "(0.00, 5000.00]"),
        ("absolute", "(5000.00, 10000.00]", "(5000.00, 10000.00]"),
        ("absolute", "(10000.00, 30000.00]", "(10000.00, 30000.00]"),
        ("absolute", "(30000.00, 40000.00]", "(30000.00, ∞]")]
    wide = {lang: render(result["steps"], lang, 260) for lang in ("zh", "en")}
    assert "band 1 (1,000.00, 5,000.00] within this stay or visit, from 0, listed (0.00, 5,000.00]" in wide["en"]
    assert "分段 1 (1,000.00, 5,000.00] 本次住院或就诊内,从0起,表列 (0.00, 5,000.00]" in wide["zh"]
    for lang, label in (("en", "band 1 (1,000.00, 5,000.00] within this stay or visit, from 0, listed (0.00, 5,000.00]"),
                        ("zh", "分段 1 (1,000.00, 5,000.00] 本次住院或就诊内,从0起,表列 (0.00, 5,000.00]")):
        assert flat(label) in flat(step_column(render(result["steps"], lang, 80)))


def test_year_to_date_bands_name_their_axis_and_the_claims_own_range() -> None:
    """门诊大病 (SQ-23, A-SQ-6): 3000 in scope earlier this year, deductible paid; this 4000 covers (3000, 7000] of
    the year, i.e. (0, 2000] and (2000, 4000] of the claim; bands beyond are shown as not reached."""
    result = settle_bill(SUQIAN, special({"inscope": "3000", "deductible_paid": "500", "fund_paid": "1000"}),
                         trace=True)
    bands = steps_of(result, "band")
    assert [(b["range"], b.get("claim_range")) for b in bands[:2]] == [
        ("(3000.00, 5000.00]", "(0.00, 2000.00]"), ("(5000.00, 7000.00]", "(2000.00, 4000.00]")]
    assert [(b.get("range"), b["position"]) for b in bands[2:]] == [(None, "above"), (None, "above")]
    deductible = steps_of(result, "deductible")[0]
    assert (deductible["paid_before"], deductible["left_after"], deductible["amount"]) == ("500.00", "0.00", "0.00")
    en, zh = render(result["steps"], "en", 260), render(result["steps"], "zh", 260)
    assert "band 1 (3,000.00, 5,000.00] year to date, = this claim's (0.00, 2,000.00]" in en
    assert "分段 1 (3,000.00, 5,000.00] 年度累计,即本次费用 (0.00, 2,000.00]" in zh
    assert "band 3 — listed (10,000.00, 30,000.00]: not reached" in en and "表列 (10,000.00, 30,000.00]:本次未达到" in zh
    assert "paid before 500.00, left 0.00" in en and "之前已付 500.00,剩余 0.00" in zh
    for lang, label in (("en", "band 1 (3,000.00, 5,000.00] year to date, = this claim's (0.00, 2,000.00]"),
                        ("zh", "分段 1 (3,000.00, 5,000.00] 年度累计,即本次费用 (0.00, 2,000.00]")):
        assert flat(label) in flat(step_column(render(result["steps"], lang, 80)))


@pytest.mark.parametrize(("axis", "history", "ranges", "claim_ranges"), [
    ("absolute", {}, ["(1000.00, 5500.00]"], [None]),
    ("above_deductible", {}, ["(0.00, 4500.00]"], ["(1000.00, 5500.00]"]),
    ("cumulative", {"base": "8000", "deductible_paid": "1000"}, ["(8000.00, 10000.00]", "(10000.00, 13500.00]"],
     ["(0.00, 2000.00]", "(2000.00, 5500.00]"]),
])
def test_payer_bands_show_where_they_applied_on_the_payers_axis(axis, history, ranges, claim_ranges) -> None:
    """tests/engine/test_payers.py::test_band_axes: base 5500 above a yearly deductible of 1000, bands 0–10000 at
    50 % then 80 %; year to date after 8000 of base, the claim covers (8000, 13500] of the year."""
    from tests.engine.test_payers import bill, payer, policy

    ded = {"standard": "1000", "per": "year", "source": "t"}
    p = policy(payer(rate=None, deductible=ded, bands={"scale": "steps", "axis": axis}))
    result = settle_bill(p, bill("10000", history={"payers": {"hifmi_pay": history}} if history else {}), trace=True)
    bands = steps_of(result, "payer_band")
    assert [b["range"] for b in bands] == ranges and [b.get("claim_range") for b in bands] == claim_ranges
    assert {b["axis"] for b in bands} == {axis}
    words = {"absolute": ("within this stay or visit, from 0", "本次住院或就诊内,从0起"),
             "above_deductible": ("above the deductible", "起付线以上部分"), "cumulative": ("year to date", "年度累计")}
    for lang, word in zip(("en", "zh"), words[axis], strict=True):
        assert word in render(result["steps"], lang, 260)
        render(result["steps"], lang, 80)


# --- limits: headroom, binding or not ----------------------------------------------------------------

@pytest.mark.parametrize(("fund_paid", "binding", "cut", "left"), [("0", False, "0.00", "24830.00"),
                                                                    ("30000", True, "5170.00", "0.00")])
def test_the_yearly_cap_is_shown_with_its_headroom_whether_it_binds_or_not(fund_paid, binding, cut, left) -> None:
    """SQ-15: 40,000 a year. Nothing paid before: 15,170 leaves 24,830 (not binding); 30,000 paid before: the
    cap cuts 5,170 (binding). Both are steps, in JSON and in the table."""
    result = settle_bill(SUQIAN, {**EXAMPLE, "history": {"fund_paid": fund_paid, "admissions": 1}}, trace=True)
    cap = steps_of(result, "cap")[0]
    assert (cap["limit"], cap["per"], cap["used_before"], cap["binding"], cap["amount"], cap["left_after"]) == (
        "40000.00", "year", f"{int(fund_paid)}.00", binding, cut, left)
    assert cap["this_claim"] == result["hifp_pay"]
    en, zh = render(result["steps"], "en", 260), render(result["steps"], "zh", 260)
    assert f"fund cap 40,000.00 (a year): used before {int(fund_paid):,}.00, this claim" in en
    assert f"最高支付限额 40,000.00(每年):之前已用 {int(fund_paid):,}.00,本次" in zh
    for lang, yes, no in (("en", "binding", "not binding"), ("zh", "限额起作用", "限额未起作用")):
        narrow = flat(step_column(render(result["steps"], lang, 80)))
        head = {"en": "fund cap 40,000.00 (a year): used before", "zh": "最高支付限额 40,000.00(每年):之前已用"}[lang]
        assert flat(head) in narrow
        assert flat(yes if binding else no) in narrow and (flat(no) in narrow) is not binding


def payer_policy():
    from medins.policy.compiled import compile_policy
    from medins.policy.schema import Policy

    rule = {"id": "inpatient", "label": {"zh": "住院", "en": "inpatient"}, "when": "visit_type == 'inpatient'",
            "source": "t", "admission": True, "deductible": {"standard": "1000", "per": "admission", "source": "t"},
            "bands": {"rate": "50%", "source": "t"},
            "layers": [{"id": "big", "field": "hifob_pay", "base": "inscope - paid", "source": "t",
                        "bands": {"rate": "100%", "source": "t"},
                        "ceiling": {"amount": "20000", "per": "year", "source": "t-ceiling"},
                        "cap": {"amount": "cap_big", "per": "year", "shared_with": ["basic"], "source": "t-cap"}}]}
    data = {"id": "t", "name": {"zh": "t", "en": "t"}, "region": {"zh": "t", "en": "t"}, "scheme": "t", "source": "t",
            "parameters": {"cap_big": {"unit": "yuan", "value": "12000", "source": "t"}}, "rules": [rule]}
    return compile_policy(Policy.model_validate(data), "t.yaml")


def test_a_payer_cap_shared_with_basic_counts_both_and_its_ceiling_shows_too() -> None:
    """Basic paid 2,000 before, big 1,000 before; this 11,000 bill: basic (11000 − 1000) × 50 % = 5,000, big's base
    6,000 under a 20,000 ceiling (not binding) and a cap of 12,000 shared with basic: before 3,000, this claim 5,000
    + 4,000 (big is cut by 2,000 to what is left)."""
    bill = {"person": {"id": "P"}, "visit": {"type": "inpatient", "admit_date": "2024-03-01"},
            "amounts": {"total": "11000"},
            "history": {"fund_paid": "2000", "payers": {"hifob_pay": {"paid": "1000", "base": "1000"}}}}
    result = settle_bill(payer_policy(), bill, trace=True)
    assert (result["hifp_pay"], result["hifob_pay"]) == ("5000.00", "4000.00")
    ceiling, cap = steps_of(result, "payer_ceiling")[0], steps_of(result, "payer_cap")[0]
    assert (ceiling["limit"], ceiling["used_before"], ceiling["this_claim"], ceiling["binding"]) == (
        "20000.00", "1000.00", "6000.00", False)
    assert (cap["limit"], cap["used_before"], cap["this_claim"], cap["left_after"], cap["binding"], cap["amount"]) == (
        "12000.00", "3000.00", "9000.00", "0.00", True, "2000.00")
    assert cap["shared_with"] == ["basic"] and cap["shared_this_claim"] == "5000.00"
    en, zh = render(result["steps"], "en", 260), render(result["steps"], "zh", 260)
    assert "its cap 12,000.00 (a year, shared with basic): used before 3,000.00, this claim 9,000.00, left 0.00" in en
    assert "支付限额 12,000.00(每年,与 basic 共用):之前已用 3,000.00,本次 9,000.00,剩余 0.00 — 限额起作用" in zh
    assert "its eligible-expense ceiling 20,000.00 (a year): used before 1,000.00" in en and "— not binding" in en
    for lang, words in (("en", "shared with basic"), ("zh", "与 basic 共用")):
        assert flat(words) in flat(step_column(render(result["steps"], lang, 80)))


def test_item_and_visit_limits_are_shown_whether_they_cut_or_not() -> None:
    """NCMS outpatient at a level-1 hospital: herbs 20 for 10 doses under 1 a dose (N-6) cut to 10; drugs 110 under
    the visit's 100 (N-1…N-5, outpatient_drug_limit[1]) cut to 100; an exam of 5 under 50 (N-3) does not bind."""
    bill = {"person": {"id": "P"}, "visit": {"type": "outpatient", "admit_date": "2008-05-01", "hospital": {"level": 1}},
            "items": [{"category": "drug", "class": "A", "amount": "80"}, {"category": "drug", "class": "A", "amount": "30"},
                      {"category": "tcm_herbal", "class": "A", "amount": "20", "doses": 10},
                      {"category": "exam", "class": "A", "amount": "5"}]}
    result = settle_bill(load_policy("ncms-rural"), bill, trace=True)
    limits = [s for s in result["steps"] if s["step"] in ("item_limit", "visit_limit")]
    assert [(s["step"], s["categories"], s["limit"], s["counted_before"], s["this_claim"], s["amount"], s["binding"])
            for s in limits] == [("item_limit", ["tcm_herbal"], "10.00", "20.00", "10.00", "10.00", True),
                                 ("visit_limit", ["drug"], "100.00", "110.00", "100.00", "10.00", True),
                                 ("visit_limit", ["exam", "surgery"], "50.00", "5.00", "5.00", "0.00", False)]
    assert limits[1]["from"]["entries"][0]["table"] == "outpatient_drug_limit"
    assert limits[1]["from"]["entries"][0]["entry"] == "1"
    en, zh = render(result["steps"], "en", 260), render(result["steps"], "zh", 260)
    assert "visit limit [exam, surgery] 50.00 (a claim): this claim 5.00, left 45.00 — not binding" in en
    assert "单次就诊限额 [exam, surgery] 50.00(每次):本次 5.00,剩余 45.00 — 限额未起作用" in zh
    assert "item limit [tcm_herbal] 10.00 (per line, 1 selected): this claim 10.00, left 0.00 — binding" in en
    for lang, label in (("en", "visit limit [exam, surgery] 50.00 (a claim): this claim 5.00, left 45.00 — not binding"),
                        ("zh", "单次就诊限额 [exam, surgery] 50.00(每次):本次 5.00,剩余 45.00 — 限额未起作用")):
        assert flat(label) in flat(step_column(render(result["steps"], lang, 80)))


def test_the_account_balance_is_shown_with_what_it_could_not_cover() -> None:
    """SQ-10: a balance of 100 against a 300 outpatient share: it pays 100 and binds (200 left to cash)."""
    bill = {"person": {"id": "P"}, "visit": {"type": "outpatient", "admit_date": "2008-05-01",
                                             "hospital": {"zone": "in_district"}},
            "amounts": {"total": "300"}, "history": {"account_balance": "100"}}
    result = settle_bill(SUQIAN, bill, trace=True)
    balance = steps_of(result, "account_balance")[0]
    assert (balance["balance_before"], balance["this_claim"], balance["left_after"], balance["binding"]) == (
        "100.00", "100.00", "0.00", True)
    assert "balance before 100.00, this claim 100.00, left 0.00 — binding" in render(result["steps"], "en", 260)
    assert "本次前余额 100.00,本次支付 100.00,剩余 0.00 — 限额起作用" in render(result["steps"], "zh", 260)
    for lang, words in (("en", "individual account balance"), ("zh", "个人账户余额")):
        assert flat(words) in flat(step_column(render(result["steps"], lang, 80)))


# --- where each value came from --------------------------------------------------------------------------

ORDINAL = str(FIXTURES / "ordinal.yaml")


def stay(**visit: object) -> dict:
    return {"person": {"id": "P"}, "visit": {"type": "inpatient", "admit_date": "2020-03-01", **visit},
            "amounts": {"total": "1000"}, "history": {"admissions": 1}}


def test_the_deductible_names_its_table_entry_and_the_fact_that_chose_it() -> None:
    """第二次住院: admission_no not stated → history.admissions 1 + 1 = 2 → deductible_by_admission[2] = 280; a
    stated 4th admission reads the open entry "3+" and says the bill gave it."""
    found = steps_of(settle_bill(load_policy(ORDINAL), stay(), trace=True), "deductible")[0]["from"]
    assert found["entries"] == [{"table": "deductible_by_admission", "key_expression": "admission_no", "key": "2",
                                 "entry": "2", "value": "280"}]
    assert found["facts"] == [{"name": "admission_no", "value": "2", "origin": "counted", "admissions_before": 1}]
    result = settle_bill(load_policy(ORDINAL), stay(admission_no=4), trace=True)
    stated = steps_of(result, "deductible")[0]["from"]
    assert stated["entries"][0]["entry"] == "3+" and stated["facts"][0]["origin"] == "bill"
    result = settle_bill(load_policy(ORDINAL), stay(), trace=True)
    for lang, words in (("en", "admission_no = 2 (not stated: admissions before it (1) + 1)"),
                        ("zh", "admission_no = 2 (账单未给出:此前住院 1 次 + 1)")):
        text = flat(render(result["steps"], lang, 80))
        assert flat("deductible_by_admission[admission_no] → deductible_by_admission[2] = 280") in text
        assert flat(words) in text


def test_a_set_override_and_an_assumed_default_are_named() -> None:
    """--set deductible_by_admission.2=300 is named as the value's origin; a zone taken by default says so."""
    policy = load_policy(ORDINAL, {"deductible_by_admission.2": "300"})
    result = settle_bill(policy, stay(), trace=True)
    found = steps_of(result, "deductible")[0]["from"]
    assert result["act_pay_dedc"] == "300.00"
    assert found["parameters"][0]["override"].startswith("--set deductible_by_admission.2=300")
    assert flat("replaced: --set deductible_by_admission.2=300") in flat(render(result["steps"], "en", 80))
    assert flat("已改为 --set deductible_by_admission.2=300") in flat(render(result["steps"], "zh", 80))
    suqian = steps_of(settle_bill(SUQIAN, EXAMPLE, trace=True), "deductible")[0]["from"]
    assert "override" not in suqian["parameters"][0]
    assert suqian["facts"] == [{"name": "hospital_zone", "value": "out_of_city", "origin": "assumed"}]


def test_a_set_file_override_is_named_with_its_file(tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text('deductible_by_admission:\n  values: {1: 400, 2: 250, "3+": 200}\n', encoding="utf-8")
    result = settle_bill(load_policy(ORDINAL, set_file=params), stay(), trace=True)
    found = steps_of(result, "deductible")[0]["from"]
    assert result["act_pay_dedc"] == "250.00" and found["entries"][0]["value"] == "250"
    assert found["parameters"][0]["override"].startswith(f"--set-file {params}")


def test_age_from_a_birth_date_says_so() -> None:
    """An expression reading ``age``: from birth_date on the service date, or as the bill states it."""
    from medins.engine.settle import settle
    from medins.policy.checks import field_codes
    from medins.report.explain_origin import origin

    policy = load_policy(ORDINAL)
    for person, want in (({"birth_date": "1980-05-01"}, ("39", "birth_date")), ({"age": 40}, ("40", "bill"))):
        bill = {**stay(), "person": {"id": "P", **person}}
        claims, items = bill_to_tables(bill, source="b", codes=field_codes(policy.model))
        row = settle(policy, claims, items, keep_trace=True).row(0, named=True)
        fact = origin(policy, row, "age + 1")["facts"][0]  # type: ignore[index]
        assert (fact["value"], fact["origin"]) == want


# --- did-you-mean only for close names -------------------------------------------------------------

def test_did_you_mean_only_for_close_names() -> None:
    from medins.errors import close_names

    assert close_names("totl", ["total", "self_pay"]) == ["total"]
    assert close_names("hifp", ["hifp_pay", "hifob_pay"]) == ["hifp_pay"]  # begins exactly one name
    assert close_names("deposit", ["hospital", "type"]) == []
    assert close_names("hospice", ["hospital", "type"]) == []


def test_a_far_off_bill_key_gets_no_suggestion_a_close_one_does() -> None:
    """``visit.hospice`` is not ``hospital`` (ratio 0.67: today's main said "did you mean 'hospital'?")."""
    base = {"person": {"id": "P"}, "amounts": {"total": "100"}}
    with pytest.raises(InputError) as far:
        bill_to_tables({**base, "visit": {"type": "inpatient", "admit_date": "2020-01-01", "hospice": 1}}, source="b")
    assert "did you mean" not in str(far.value.hint_en).lower()
    with pytest.raises(InputError) as near:
        bill_to_tables({**base, "visit": {"type": "inpatient", "admit_date": "2020-01-01", "hosptal": 1}}, source="b")
    assert "hospital" in str(near.value.hint_en)


def test_a_far_off_set_name_gets_no_suggestion() -> None:
    from medins.errors import UsageError

    with pytest.raises(UsageError) as far:
        load_policy(ORDINAL, {"rate_al": "50%"})  # 0.70 to fund_rate_all: today's main suggested it
    assert "Did you mean" not in str(far.value)
    with pytest.raises(UsageError) as near:
        load_policy(ORDINAL, {"fund_rate_al": "50%"})
    assert "Did you mean fund_rate_all" in str(near.value)


def test_the_command_line_suggests_close_options_and_commands_only(capsys) -> None:
    """Click offered ``--lang`` for ``--explian`` (difflib 0.6) and ``compare`` for ``comput``; now only close names."""
    from tests.cli_support import run

    code, _out, err = run(capsys, "calc", str(ROOT / "examples" / "bill.json"), "-p", "suqian-2007", "--explian")
    assert code == 2 and "Possible options: --explain)" in err and "--lang" not in err
    code, _out, err = run(capsys, "comput")
    assert code == 2 and "No such command 'comput'" in err and "Did you mean" not in err
    code, _out, err = run(capsys, "policy", "chek")
    assert code == 2 and "Did you mean 'check'?" in err


def test_the_documented_example_is_what_calc_prints() -> None:
    """docs/outputs.md "Explain": its lines and its JSON cap step are reproduced by the shipped example."""
    doc = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Explain"):doc.index("## Exit codes")]
    result = settle_bill(SUQIAN, EXAMPLE, trace=True)
    en, zh = flat(render(result["steps"], "en", 260)), flat(render(result["steps"], "zh", 260))
    for line in ("band 1 (1,000.00, 5,000.00] within this stay or visit,", "from 0, listed (0.00, 5,000.00]",
                 "fund cap 40,000.00 (a year): used before 0.00, this claim 15,170.00, left 24,830.00 — not binding",
                 "deductible (patient): deductible[hospital_zone] → deductible[out_of_city] = 1000; hospital_zone ="):
        assert line in section and flat(line) in en, line
    assert flat("分段 1 (1,000.00, 5,000.00] 本次住院或就诊内,从0起,表列 (0.00, 5,000.00]") in zh
    documented = json.loads(section[section.index('{"step": "cap"'):].split("\n```")[0].replace("\n", ""))
    assert documented == steps_of(result, "cap")[0]
