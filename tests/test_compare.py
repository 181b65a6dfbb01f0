"""Analyst views on hand-computed claims: totals, fee bands, age groups, catastrophic burden, reform, diff, curve."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from medins import compare as cmp
from medins.api import bills_to_tables
from medins.curve import curve, grid
from medins.policy.diff import policy_diff
from medins.policy.loader import load_policy
from medins.report.compare import bill_table, views_renderable, views_to_csv, views_to_json, views_to_xlsx

ROOT = Path(__file__).resolve().parents[1]
SUQIAN = load_policy("suqian-2007")
REFORM = load_policy("suqian-2007", {"inpatient_bands[0].rate": "60%"})  # a what-if reform of band 1


def stay(i: int, total: str, person: str, birth: str, income: str | None = None) -> dict:
    bill = {"id": f"C{i}", "person": {"id": person, "birth_date": birth},
            "visit": {"type": "inpatient", "admit_date": "2008-04-02", "hospital": {"zone": "in_district"},
                      "preapproved": True}, "amounts": {"total": total}}
    if income:
        bill["person"]["income"] = income
    return bill


@pytest.fixture
def comparison() -> cmp.Comparison:
    bills = [stay(1, "3000", "A", "1990-01-01", "10000"), stay(2, "12000", "B", "1940-01-01", "10000"),
             stay(3, "65000", "C", "2000-06-01", "200000")]
    claims, items = bills_to_tables(bills)
    return cmp.settle_under([SUQIAN, REFORM], claims, items)


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_totals_split_fund_and_self_pay(comparison) -> None:
    """Suqian: funds 1,250 + 6,200 + 40,000 (capped) = 47,450.00 of 80,000; 自付 = in-scope − fund."""
    t = cmp.totals(comparison).row(0, named=True)
    assert (t["claims"], t["total"], t["fund"], t["inscope_selfpay"], t["outscope_selfpay"]) == (
        3, 8_000_000, 4_745_000, 3_255_000, 0)
    assert t["fund_share"] == pytest.approx(47450 / 80000)


def test_reform_arithmetic(comparison) -> None:
    """Band 1 at 60 %: +250 (2,500 in band 1) and +450 (4,500); the third claim stays capped at 40,000."""
    claims, people = cmp.reform(comparison).to_dicts()
    assert (claims["gain"], claims["lose"], claims["unchanged"], claims["fund_change"]) == (2, 0, 1, 70_000)
    assert (claims["gain_mean"], claims["largest_gain"], claims["largest_loss"]) == (35_000, 45_000, 0)
    assert (people["count"], people["gain"], people["fund_change"]) == (3, 2, 70_000)


def test_fee_bands_and_age_groups(comparison) -> None:
    """3,000 ≤ 5,000; 12,000 in (10,000, 20,000]; 65,000 > 50,000 (§0.2 bands); ages 18, 68 and 7 on 2008-04-02."""
    bands = cmp.by_fee_band(comparison).filter(pl.col("policy") == "suqian-2007")
    assert dict(zip(bands["group"].to_list(), bands["claims"].to_list(), strict=True)) == {
        "≤ 5,000": 1, "10,000–20,000": 1, "> 50,000": 1}
    ages = cmp.by_age_group(comparison).filter(pl.col("policy") == "suqian-2007")
    assert dict(zip(ages["group"].to_list(), ages["claims"].to_list(), strict=True)) == {
        "0–17": 1, "18–59": 1, "60–69": 1}


def test_catastrophic_is_strictly_above_forty_percent(comparison) -> None:
    """1,750 and 5,800 out of pocket against 10,000 income: only B (58 %) is catastrophic; C's 12.5 % is not."""
    row = cmp.catastrophic(comparison).row(0, named=True)
    assert (row["persons"], row["with_income"], row["catastrophic"]) == (3, 3, 1)


def test_unsettleable_claims_are_reported_not_crashed() -> None:
    """Beijing employees cannot settle Suqian's 2008 resident claim (no category, year, level): reported with reasons."""
    claims, items = bills_to_tables([stay(1, "3000", "A", "1990-01-01")])
    comparison = cmp.settle_under([SUQIAN, load_policy("beijing-employee-2009")], claims, items)
    reasons = cmp.not_paid(comparison).filter(pl.col("policy") == "beijing-employee-2009")["reason"].to_list()
    assert set(reasons) == {"unknown_category", "policy_not_in_force", "no_rule"}


def test_views_render_and_export(comparison, tmp_path) -> None:
    """Every view renders as a table, JSON, CSV and one XLSX sheet each."""
    views = {"totals": cmp.totals(comparison), "reform": cmp.reform(comparison)}
    text = render(views_renderable(views, "en"))
    assert "Totals" in text and "47,450.00" in text and "Reform view" in text
    totals = json.loads(json.dumps(views_to_json(views), default=str))["totals"][0]
    assert totals["fund"] == "47450.00" and totals["fund_share"] == "59.31%"  # 47,450 ÷ 80,000 = 0.593125
    csv = views_to_csv(views)
    assert csv.splitlines()[0].startswith("view,policy") and "47450.00" in csv and "59.31%" in csv
    views_to_xlsx(views, tmp_path / "v.xlsx")
    sheets = pl.read_excel(tmp_path / "v.xlsx", sheet_id=0)
    assert set(sheets) == {"totals", "reform"}
    assert sheets["totals"]["fund"].to_list()[0] == "47450.00" and sheets["totals"]["fund_share"][0] == "59.31%"


def test_percentages_round_half_up_exactly() -> None:
    """Shares are rounded half up from the integer parts (1 ÷ 8 = 12.5 % → 12.50 %; 1 ÷ 3; 2 ÷ 3; 1 ÷ 0 → null)."""
    from medins.report.compare import percent_text

    frame = pl.DataFrame({"a": [1, 1, 2, 1, 1, 0], "b": [8, 3, 3, 0, 160000, 5]})
    assert frame.select(percent_text(pl.col("a"), pl.col("b")))["a"].to_list() == [
        "12.50%", "33.33%", "66.67%", None, "0.00%", "0.00%"]
    assert frame.select(percent_text(pl.col("a"), pl.col("b"), 1))["a"].to_list() == [
        "12.5%", "33.3%", "66.7%", None, "0.0%", "0.0%"]
    halves = pl.DataFrame({"a": [1], "b": [16]})  # 6.25 % → 6.3 % half up (a float prints 6.2 %)
    assert halves.select(percent_text(pl.col("a"), pl.col("b"), 1))["a"].item() == "6.3%"


def test_bill_side_by_side_highlights_differences() -> None:
    """One bill under two policies: both columns, in words."""
    results = cmp.bill_side_by_side([SUQIAN, REFORM], stay(1, "3000", "A", "1990-01-01"))
    text = render(bill_table(results, "zh"))
    assert "1,250.00" in text and "1,500.00" in text and "已结算" in text


def test_policy_diff_names_changes_with_sources() -> None:
    """diff shows the changed band with each side's citation; identical keys are left out."""
    rows = policy_diff(SUQIAN, REFORM)
    assert [r["key"] for r in rows] == ["inpatient_bands"]
    assert rows[0]["a"].startswith("≤5,000: 50%") and rows[0]["b"].startswith("≤5,000: 60%")
    assert rows[0]["a_source"].startswith("SQ-13") and rows[0]["b_source"].startswith("--set")


def test_curve_points_and_png(tmp_path, monkeypatch) -> None:
    """The curve settles one bill per total; the PNG is a real, non-trivial image, English when no CJK font."""
    totals = grid(__import__("decimal").Decimal(0), __import__("decimal").Decimal(20000), 5)
    data = curve([SUQIAN], totals, zone="in_district")
    assert data["fund"].to_list() == [0, 225_000, 500_000, 800_000, 1_100_000]
    from medins.report import plots

    for env, expected in (("1", "en"), (None, None)):
        plots.find_cjk_font.cache_clear()
        if env:
            monkeypatch.setenv("MEDINS_NO_CJK", env)
        else:
            monkeypatch.delenv("MEDINS_NO_CJK", raising=False)
        path = tmp_path / f"curve-{env}.png"
        used = plots.curve_png(data, path, "zh")
        assert used == (expected or ("zh" if plots.find_cjk_font() else "en"))
        blob = path.read_bytes()
        assert blob.startswith(b"\x89PNG") and len(blob) > 10_000


def test_compare_and_curve_commands(tmp_path) -> None:
    """The analyst commands of the README run on the shipped example year."""
    out = subprocess.run([sys.executable, "-m", "medins", "compare", "examples/claims.csv", "-p", "suqian-2007",
                          "-p", "beijing-resident", "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 1, out.stderr  # two malformed rows, as batch reports them
    assert "rows read 27 = settled 25 + rejected 2" in out.stderr or "读取 27 行 = 结算 25 行 + 拒收 2 行" in out.stderr
    assert set(json.loads(out.stdout)) == {"totals", "fee_bands", "age_groups", "catastrophic", "not_paid", "reform"}
    chart = subprocess.run([sys.executable, "-m", "medins", "curve", "-p", "suqian-2007", "--to", "30000",
                            "--png", str(tmp_path / "c.png")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert chart.returncode == 0 and "suqian-2007" in chart.stdout and (tmp_path / "c.png").exists()


def test_fee_band_edges_are_half_open() -> None:
    """A total of exactly 5,000.00 is in the first band, 5,000.01 in the second (§0.2)."""
    claims, items = bills_to_tables([stay(1, "5000.00", "A", "1990-01-01"), stay(2, "5000.01", "B", "1990-01-01")])
    bands = cmp.by_fee_band(cmp.settle_under([SUQIAN], claims, items))
    assert dict(zip(bands["group"].to_list(), bands["claims"].to_list(), strict=True)) == {
        "≤ 5,000": 1, "5,000–10,000": 1}


def test_AN_5_catastrophic_is_counted_per_person_and_benefit_year() -> None:
    """AN-5: income is yearly. A: 1,750 out of pocket in 2008 and 1,750 in 2009 against 5,000 (35 % each year) is
    not catastrophic — summed across years it would be 70 %; B: two 2008 stays, 3,500 (70 %) is."""
    bills = [stay(1, "3000", "A", "1990-01-01", "5000"), stay(2, "3000", "A", "1990-01-01", "5000"),
             stay(3, "3000", "B", "1990-01-01", "5000"), stay(4, "3000", "B", "1990-01-01", "5000")]
    bills[1]["visit"]["admit_date"] = "2009-04-02"
    bills[3]["visit"]["admit_date"] = "2008-09-02"
    claims, items = bills_to_tables(bills)
    row = cmp.catastrophic(cmp.settle_under([SUQIAN], claims, items)).row(0, named=True)
    assert (row["persons"], row["person_years"], row["with_income"], row["catastrophic"]) == (2, 3, 3, 1)
