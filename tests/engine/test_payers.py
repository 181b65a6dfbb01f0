"""The payer chain (issue 13): each key of a payer does what docs/payers.md says, on hand-computed bills."""

from __future__ import annotations

import copy

import pytest

from medins.api import settle_bill, settle_bills
from medins.policy.compiled import compile_policy
from medins.policy.loader import load_policy
from medins.policy.schema import Policy

BASIC = {"id": "inpatient", "label": {"zh": "住院", "en": "inpatient"}, "when": "visit_type == 'inpatient'",
         "source": "t", "admission": True, "deductible": {"standard": "1000", "per": "admission", "source": "t"},
         "bands": {"rate": "50%", "source": "t"}}


def policy(*layers: dict, **basic: object):
    rule = {**copy.deepcopy(BASIC), **basic, "layers": list(layers)}
    data = {"id": "t", "name": {"zh": "t", "en": "t"}, "region": {"zh": "t", "en": "t"}, "scheme": "t",
            "source": "t", "parameters": {"steps": {"scale": [{"upto": "10000", "rate": "50%"}, {"rate": "80%"}],
                                                    "source": "t"}}, "rules": [rule]}
    return compile_policy(Policy.model_validate(data), "t.yaml")


def payer(pid: str = "big", field: str = "hifmi_pay", base: str = "inscope - paid", rate: str = "100%", **more):
    return {"id": pid, "field": field, "base": base, "bands": {"rate": rate, **more.pop("bands", {}), "source": "t"},
            "source": "t", **more}


def bill(total: str, day: str = "2024-03-01", self_pay: str = "0", pid: str = "P", **extra) -> dict:
    """An inpatient bill; ``person={...}`` adds person facts, ``amounts={...}`` amounts, other keys as given."""
    amounts = {"total": total, "self_pay": self_pay, **extra.pop("amounts", {})}
    who = extra.pop("person", {})
    return {"id": f"{pid}{day}", "person": {"id": pid, **who},
            "visit": {"type": "inpatient", "admit_date": day}, "amounts": amounts, **extra}


def test_bases_read_the_named_amounts() -> None:
    """11000 total, 1000 out of catalogue: basic (10000 − 1000) × 50 % = 4500; each base as documented."""
    cases = {"inscope - paid": "5500.00", "total - paid": "6500.00", "inscope - basic_deductible - paid": "4500.00",
             "basic_deductible": "1000.00", "out_of_catalogue": "1000.00", "basic_paid": "4500.00", "paid": "4500.00",
             "above_ceiling": "0.00", "basic_cap_cut": "0.00"}
    for base, want in cases.items():
        r = settle_bill(policy(payer(base=base)), bill("11000", self_pay="1000"))
        assert (r["hifp_pay"], r["hifmi_pay"]) == ("4500.00", want), base


def test_above_ceiling_and_basic_cap_cut() -> None:
    """Ceiling 5000 a year: above_ceiling 5000; a cap of 1000 cuts 1000 (raw 2000)."""
    p = policy(payer(base="above_ceiling"), payer("cut", "oth_pay", base="basic_cap_cut"),
               ceiling={"amount": "5000", "source": "t"}, cap={"amount": "1000", "per": "claim", "source": "t"})
    r = settle_bill(p, bill("10000"))
    assert (r["hifp_pay"], r["hifmi_pay"], r["oth_pay"]) == ("1000.00", "5000.00", "1000.00")


def test_a_base_never_exceeds_what_is_left_of_the_total() -> None:
    """A base written too wide (twice the total) is clipped: fund + patient == total, the patient pays 0."""
    r = settle_bill(policy(payer(base="total * 2")), bill("10000"))
    assert (r["hifp_pay"], r["hifmi_pay"], r["psn_part_amt"]) == ("4500.00", "5500.00", "0.00")


def test_when_selects_assisted_persons_and_an_unknown_class_does_not_pay() -> None:
    p = policy(payer("aid", "maf_pay", when="assistance_class in ('dibao', 'dibao_margin')", rate="50%"))
    assert settle_bill(p, bill("10000", person={"assistance_class": "dibao"}))["maf_pay"] == "2750.00"
    assert settle_bill(p, bill("10000", person={"assistance_class": "relapse_watch"}))["maf_pay"] == "0.00"
    unknown = settle_bill(p, bill("10000"), trace=True)
    assert (unknown["maf_pay"], unknown["status"]) == ("0.00", "settled")
    assert [s for s in unknown["steps"] if s.get("payer") == "aid"] == [
        {"step": "payer", "amount": "0.00", "payer": "aid", "field": "maf_pay",
         "when": "assistance_class in ('dibao', 'dibao_margin')", "eligible": False, "source": "t"}]


def test_per_claim_and_per_year_deductibles() -> None:
    """Base 5500 a claim; 6000 deductible: per claim nothing ever; per year the second claim pays 5000."""
    per_claim = policy(payer(deductible={"standard": "6000", "per": "claim", "source": "t"}))
    per_year = policy(payer(deductible={"standard": "6000", "per": "year", "source": "t"}))
    stays = [bill("10000", "2024-03-01"), bill("10000", "2024-05-01"), bill("10000", "2025-01-05")]
    assert [r["hifmi_pay"] for r in settle_bills(per_claim, stays)] == ["0.00", "0.00", "0.00"]
    assert [r["hifmi_pay"] for r in settle_bills(per_year, stays)] == ["0.00", "5000.00", "0.00"]
    # calc with the payer's history gives the second claim's figure
    second = bill("10000", "2024-05-01", history={"payers": {"hifmi_pay": {"deductible_paid": "5500"}}})
    assert settle_bill(per_year, second)["hifmi_pay"] == "5000.00"


def test_band_axes() -> None:
    """Base 5500, deductible 1000, bands 0–10000 50 % then 80 %."""
    ded = {"standard": "1000", "per": "year", "source": "t"}

    def pays(axis: str, **history) -> str:
        p = policy(payer(rate=None, deductible=ded, bands={"scale": "steps", "axis": axis}))
        return settle_bill(p, bill("10000", history={"payers": {"hifmi_pay": history}} if history else {}))["hifmi_pay"]

    assert pays("absolute") == "2250.00"            # (1000, 5500] at 50 %
    assert pays("above_deductible") == "2250.00"    # (0, 4500] at 50 %
    assert pays("cumulative", base="8000", deductible_paid="1000") == "3800.00"  # (8000, 10000] 50 %, (10000, 13500] 80 %
    assert pays("absolute", deductible_paid="1000") == "2750.00"


def test_payer_ceiling_per_claim_per_year_and_above_its_deductible() -> None:
    def pays(per: str, measure: str, stays: int = 1) -> list[str]:
        p = policy(payer(deductible={"standard": "1000", "per": "claim", "source": "t"},
                         ceiling={"amount": "3000", "per": per, "measure": measure, "source": "t"}))
        days = ["2024-03-01", "2024-04-01"][:stays]
        return [r["hifmi_pay"] for r in settle_bills(p, [bill("10000", d) for d in days])]

    assert pays("claim", "expense") == ["2000.00"]              # min(5500, 3000) − 1000
    assert pays("claim", "above_deductible") == ["3000.00"]     # min(4500, 3000)
    assert pays("year", "expense", 2) == ["2000.00", "0.00"]    # the year's 3000 used by the first claim
    assert pays("year", "above_deductible", 2) == ["3000.00", "0.00"]


def test_caps_per_claim_per_year_and_shared_with_basic() -> None:
    """Basic 4500 a claim; 大额 on the rest (5500): caps 2000 a claim, 7000 a year, 9000 a year with basic."""
    stays = [bill("10000", "2024-03-01"), bill("10000", "2024-04-01")]
    per_claim = policy(payer(cap={"amount": "2000", "per": "claim", "source": "t"}))
    assert [r["hifmi_pay"] for r in settle_bills(per_claim, stays)] == ["2000.00", "2000.00"]
    per_year = policy(payer(cap={"amount": "7000", "per": "year", "source": "t"}))
    assert [r["hifmi_pay"] for r in settle_bills(per_year, stays)] == ["5500.00", "1500.00"]
    shared = policy(payer(cap={"amount": "12000", "per": "year", "shared_with": ["basic"], "source": "t"}))
    # 4500 + 5500 = 10000, then 4500 more basic leaves 12000 − 14500 < 0: nothing
    assert [r["hifmi_pay"] for r in settle_bills(shared, stays)] == ["5500.00", "0.00"]
    assert settle_bill(shared, stays[1] | {"history": {"fund_paid": "4500", "payers": {"hifmi_pay": {"paid": "5500"}}}}
                       )["hifmi_pay"] == "0.00"
    claim_shared = policy(payer(cap={"amount": "6000", "per": "claim", "shared_with": ["basic"], "source": "t"}))
    assert settle_bill(claim_shared, stays[0])["hifmi_pay"] == "1500.00"


def test_shared_with_an_earlier_payer() -> None:
    p = policy(payer("first", "hifob_pay", rate="50%"),
               payer("second", "oth_pay", cap={"amount": "3000", "per": "claim", "shared_with": ["first"], "source": "t"}))
    r = settle_bill(p, bill("10000"))  # first 2750; second on 2750 left, at most 3000 − 2750 = 250
    assert (r["hifob_pay"], r["oth_pay"]) == ("2750.00", "250.00")


def test_two_tiers_add_into_one_field() -> None:
    p = policy(payer("tier1", "maf_pay", rate="50%"), payer("tier2", "maf_pay", rate="50%"))
    r = settle_bill(p, bill("10000"), trace=True)
    assert r["maf_pay"] == "4125.00"  # 2750 + 1375
    pays = [s["amount"] for s in r["steps"] if s["step"] == "payer"]
    assert pays == ["2750.00", "1375.00"]


def test_paid_amounts_are_used_not_computed() -> None:
    """A given basic payment replaces the computed one and later bases read it; a given field covers its tiers."""
    p = policy(payer("tier1", "maf_pay", rate="50%"), payer("tier2", "maf_pay", rate="50%"))
    r = settle_bill(p, bill("10000", amounts={"paid": {"hifp_pay": "6000"}}), trace=True)
    assert (r["hifp_pay"], r["maf_pay"]) == ("6000.00", "3000.00")  # 2000 + 1000
    assert any(s["step"] == "hifp_pay" and s.get("given") for s in r["steps"])
    r = settle_bill(p, bill("10000", amounts={"paid": {"maf_pay": "100"}}), trace=True)
    assert (r["hifp_pay"], r["maf_pay"], r["psn_part_amt"]) == ("4500.00", "100.00", "5400.00")
    assert [s.get("given") for s in r["steps"] if s["step"] == "payer"] == [True, None]


def test_a_given_basic_payment_spares_its_missing_numbers() -> None:
    """critical-illness-2018: the basic rate is not published; with paid.hifp_pay the claim settles, without it
    the claim is rejected naming the parameter."""
    ci = load_policy("critical-illness-2018-example")
    base = {"person": {"id": "X", "category": "resident"}, "visit": {"type": "inpatient", "admit_date": "2018-03-01"}}
    given = settle_bill(ci, base | {"amounts": {"total": "100000", "self_pay": "10000", "paid": {"hifp_pay": "40000"}}})
    assert (given["status"], given["hifmi_pay"]) == ("settled", "10000.00")
    missing = settle_bill(ci, base | {"amounts": {"total": "100000", "self_pay": "10000"}})
    assert missing["reasons"] == ["missing_parameter:basic_rate"]


def test_critical_illness_deductible_reached_over_several_stays() -> None:
    """zhenjiang: 大病 deductible 6000 a year reached over two visits; batch = calc with history."""
    zj = load_policy("zhenjiang-2023-employee")

    def visit(day: str, total: str, history: dict | None = None) -> dict:
        b = {"id": day, "person": {"id": "Z", "category": "in_service"},
             "visit": {"type": "outpatient", "admit_date": day, "hospital": {"level": 3}}, "amounts": {"total": total}}
        return b | ({"history": history} if history else {})

    first, second = settle_bills(zj, [visit("2023-02-01", "5000"), visit("2023-03-10", "20000")])
    # first: deductible 800, 60 % of 4200 = 2520; 大病 base 2480 all within its 6000 deductible
    assert (first["act_pay_dedc"], first["hifp_pay"], first["hifmi_pay"]) == ("800.00", "2520.00", "0.00")
    # second: no deductible left, 10000 − 4200 = 5800 of the limit at 60 % = 3480; 大病 base 16520, 3520 of the
    # deductible left → (16520 − 3520) × 60 % = 7800
    assert (second["act_pay_dedc"], second["hifp_pay"], second["hifmi_pay"]) == ("0.00", "3480.00", "7800.00")
    alone = settle_bill(zj, visit("2023-03-10", "20000", {
        "inscope": "5000", "deductible_paid": "800", "payers": {"hifmi_pay": {"deductible_paid": "2480",
                                                                              "base": "2480"}}}))
    assert {k: alone[k] for k in ("act_pay_dedc", "hifp_pay", "hifmi_pay")} == {
        k: second[k] for k in ("act_pay_dedc", "hifp_pay", "hifmi_pay")}


def test_lingchuan_large_expense_starts_where_the_basic_cap_bound() -> None:
    fixture = {"raise_date": "2013-07-01", "basic_rate": "100%", "basic_deductible": "0", "large_rate": "100%"}
    lc = load_policy("lingchuan", fixture)
    below = settle_bill(lc, {"person": {"id": "L", "category": "in_service"},
                             "visit": {"type": "inpatient", "admit_date": "2014-03-01"}, "amounts": {"total": "50000"}})
    assert (below["hifp_pay"], below["hifob_pay"]) == ("50000.00", "0.00")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_explain_table_shows_each_payer(lang: str) -> None:
    from rich.console import Console

    from medins.report.tables import explain_table

    p = load_policy("cq-yubei-2023-resident")
    r = settle_bill(p, {"person": {"id": "Q", "category": "resident", "assistance_class": "dibao_margin"},
                        "visit": {"type": "inpatient", "admit_date": "2023-06-01", "hospital": {"level": 2}},
                        "amounts": {"total": "52000", "self_pay": "2000"}}, trace=True)
    console = Console(width=200, record=True)
    console.print(explain_table(r["steps"], lang))
    text = console.export_text()
    assert "inscope - paid" in text and "937.80" in text and "10,647.00" in text and "3,000.00" in text
    assert ("倾斜救助" if lang == "zh" else "tilted assistance") in text
    steps = [s for s in r["steps"] if s.get("payer") == "tilted_assistance"]
    assert [s["step"] for s in steps] == ["payer_base", "payer_deductible", "payer_band", "payer_raw", "payer"]
    assert steps[0]["amount"] == "4563.00" and steps[1]["standard"] == "3000.00" and steps[-1]["amount"] == "937.80"


def test_policy_show_lists_each_payer() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "medins", "policy", "show", "cq-yubei-2023-resident", "--lang", "en"],
                          capture_output=True, text=True, timeout=120, env={"COLUMNS": "250", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "large_assistance → maf_pay: base = inscope - paid" in text
    assert "tilted_assistance → maf_pay" in text and "deductible tilted_deductible / year" in text


def test_an_unknown_fact_in_a_payer_base_rejects_that_claim_only() -> None:
    """The payer's base is fused into its query (``Lazy.ev`` with ``required``); a claim whose base is unknown
    (no birth date: no age) makes the payer settle again through the exact evaluator, which rejects that claim
    ``missing_fact:age`` — the other claims, the same person's later one included, settle as they would alone."""
    p = policy(payer(base="min(inscope - paid, age * 100)"))
    born = {"birth_date": "1960-01-01"}
    rows = settle_bills(p, [bill("11000", "2024-03-01", self_pay="1000", pid="A", person=born),
                            bill("11000", "2024-03-02", self_pay="1000", pid="B"),
                            bill("11000", "2024-04-02", self_pay="1000", pid="A", person=born)])
    assert [(r["status"], r["reasons"], r["hifmi_pay"]) for r in rows] == [
        ("settled", [], "5500.00"), ("rejected", ["missing_fact:age"], "0.00"), ("settled", [], "5500.00")]
    alone = settle_bill(p, bill("11000", "2024-03-01", self_pay="1000", pid="A", person=born))
    assert alone["hifmi_pay"] == rows[0]["hifmi_pay"]
