"""Assumptions are visible (issue 12, deliverable 5): every default taken for an absent fact is listed as
``assumed``, and every rule the bill cannot show is listed as ``unchecked`` with its citation."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from rich.console import Console

from medins.api import settle_bill
from medins.batch import run_batch
from medins.engine.settle import OUTPUT_COLUMNS
from medins.policy.loader import load_policy
from medins.report.tables import settlement_table

ROOT = Path(__file__).resolve().parents[2]
SUQIAN = load_policy("suqian-2007")
BARE = {"person": {"id": "P"}, "visit": {"admit_date": "2008-04-02", "hospital": {"zone": "in_district"}},
        "amounts": {"total": "3000"}}
FULL = {"person": {"id": "P", "category": "resident"},
        "visit": {"type": "inpatient", "admit_date": "2008-04-02", "discharge_date": "2008-04-05", "cause": "illness",
                  "hospital": {"name": "珠江医院", "zone": "in_district"}},
        "amounts": {"total": "3000"}}


def test_every_default_taken_for_an_absent_fact_is_listed() -> None:
    """A bill without category, visit type, cause or discharge date is settled on the defaults, each one named."""
    r = settle_bill(SUQIAN, BARE)
    assert r["assumed"] == ["visit_type=inpatient", "cause=illness", "discharge_date=admit_date",
                            "person_category=resident"]
    assert settle_bill(SUQIAN, FULL)["assumed"] == []


def test_zone_filled_from_the_hospital_name_is_listed() -> None:
    """SQ-17: 市人民医院 is in_city by the policy's list — the zone the bill left out is filled and said so."""
    bill = {**FULL, "visit": {**FULL["visit"], "hospital": {"name": "市人民医院"}}}
    assert settle_bill(SUQIAN, bill)["assumed"] == ["hospital_zone=in_city"]


def test_an_outpatient_visit_without_discharge_date_is_not_an_assumption() -> None:
    """A visit is one day by nature: only a stay without a discharge date is listed as assumed."""
    bill = {**FULL, "visit": {**FULL["visit"], "type": "outpatient"}}
    del bill["visit"]["discharge_date"]
    assert settle_bill(SUQIAN, bill)["assumed"] == []


def test_unchecked_rules_carry_their_citation() -> None:
    """SQ-17: with only a zone the designated-hospital check cannot be done — listed, with SQ-1/SQ-8 eligibility and
    the checks whose facts are absent, each with its source; with the hospital's name it is checked (not listed)."""
    r = settle_bill(SUQIAN, BARE)
    assert {"not_designated", "not_covered", "premium_unpaid", "no_preapproval", "late_claim"} <= set(r["unchecked"])
    assert set(r["unchecked_sources"]) == set(r["unchecked"])
    assert "SQ-17" in r["unchecked_sources"]["not_designated"]
    assert "SQ-1" in r["unchecked_sources"]["not_covered"] and "SQ-18" in r["unchecked_sources"]["no_preapproval"]
    named = settle_bill(SUQIAN, FULL)
    assert "not_designated" not in named["unchecked"] and "not_covered" in named["unchecked"]


def test_table_shows_assumed_and_unchecked_with_citations_in_both_languages() -> None:
    """The Rich table names each assumption and each unchecked rule with its short citation (zh and en)."""
    r = settle_bill(SUQIAN, BARE)
    for lang, words in (("en", "Assumed"), ("zh", "假定")):
        console = Console(file=io.StringIO(), width=160, color_system=None)
        console.print(settlement_table(r, lang))
        text = console.file.getvalue()
        assert words in text and "person_category=resident" in text and "no_preapproval  (SQ-18" in text


def test_calc_json_carries_assumed_and_sources(tmp_path: Path) -> None:
    """`calc --format json` has ``assumed`` and ``unchecked_sources`` (code → the policy's source)."""
    bill = tmp_path / "bill.json"
    bill.write_text(json.dumps(BARE), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "medins", "calc", str(bill), "-p", "suqian-2007", "-f", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    out = json.loads(proc.stdout)
    assert "person_category=resident" in out["assumed"] and "SQ-18" in out["unchecked_sources"]["no_preapproval"]


def test_batch_writes_assumed_after_unchecked(tmp_path: Path) -> None:
    """The batch output has an ``assumed`` column right after ``unchecked``, codes joined by ";" like it."""
    src = tmp_path / "claims.csv"
    src.write_text("claim_id,person_id,admit_date,hospital_zone,total\nC1,P1,2008-04-02,in_district,3000\n",
                   encoding="utf-8")
    out = tmp_path / "out.csv"
    run_batch(src, SUQIAN, out)
    written = pl.read_csv(out, infer_schema=False)
    assert OUTPUT_COLUMNS[-2:] == ("unchecked", "assumed")
    assert written.columns.index("assumed") == written.columns.index("unchecked") + 1
    assert written["assumed"].item() == "visit_type=inpatient;cause=illness;discharge_date=admit_date;" \
                                        "person_category=resident"


def test_policy_show_lists_the_rules_no_bill_can_show() -> None:
    """`policy show` lists admission.not_checkable entries (code, why, citation) beside the checks."""
    from medins.report.policies import policy_view

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(policy_view(SUQIAN, "en"))
    text = console.file.getvalue()
    assert "premium_unpaid" in text and "not on a bill: listed as unchecked" in text and "SQ-3, SQ-8" in text
