"""`medins batch`: nothing lost, the same numbers as `calc`, atomic and safe outputs, exit codes."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medins.api import settle_bill
from medins.batch import run_batch
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[1]
SUQIAN = load_policy("suqian-2007")
HEADER = "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,total,self_pay,class_b\n"


def medins(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medins", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_shipped_gbk_example_accounts_for_every_row(tmp_path) -> None:
    """examples/claims.csv (GBK, Chinese headers): 27 rows read = 25 settled + 2 rejected, with row numbers."""
    result = run_batch(ROOT / "examples/claims.csv", SUQIAN, tmp_path / "out.csv")
    assert (result.rows_read, result.claims_settled, result.rows_rejected) == (27, 25, 2)
    assert result.encoding in ("gb18030", "gbk")
    out = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    assert out.height == 25 and out["claim_id"].to_list()[:2] == ["SQ2008-0001", "SQ2008-0002"]
    rejects = pl.read_csv(tmp_path / "out.rejects.csv", infer_schema=False)
    assert rejects.select("row", "reason").rows() == [("26", "bad_date:admit_date"), ("27", "not_a_number:total")]
    fund = [Decimal(x) for x in out["fund_pay_sumamt"].to_list()]
    patient = [Decimal(x) for x in out["psn_part_amt"].to_list()]
    total = [Decimal(x) for x in out["medfee_sumamt"].to_list()]
    assert all(f + p == t for f, p, t in zip(fund, patient, total, strict=True))


def test_yearly_cap_runs_across_the_file(tmp_path) -> None:
    """P01's third 2008 stay gets what is left of the 40,000 cap; 2009 starts afresh."""
    run_batch(ROOT / "examples/claims.csv", SUQIAN, tmp_path / "out.csv")
    out = pl.read_csv(tmp_path / "out.csv", infer_schema=False).filter(pl.col("person_id") == "P01")
    paid = [Decimal(x) for x in out["hifp_pay"].to_list()]
    assert sum(paid[:3]) == Decimal("40000.00") and paid[3] == Decimal("11000.00")


def test_exit_codes(tmp_path) -> None:
    """Exit 1 when rows were rejected, 0 when all settled, 2 when the file lacks a required column."""
    assert medins("batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", str(tmp_path / "a.csv")).returncode == 1
    clean = tmp_path / "clean.csv"
    clean.write_text(HEADER + "C1,P1,inpatient,2008-04-02,in_district,true,12000,0,0\n", encoding="utf-8")
    proc = medins("batch", str(clean), "--policy", "suqian-2007", "-o", str(tmp_path / "b.csv"), "--lang", "en")
    assert proc.returncode == 0, proc.stderr
    assert "rows read 1 = settled 1 + rejected 0" in proc.stdout
    broken = tmp_path / "broken.csv"
    broken.write_text("claim_id,person_id,admit_date\nC1,P1,2008-01-01\n", encoding="utf-8")
    proc = medins("batch", str(broken), "--policy", "suqian-2007", "-o", str(tmp_path / "c.csv"))
    assert proc.returncode == 2 and "total" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize("suffix", [".parquet", ".xlsx"])
def test_other_output_formats(tmp_path, suffix) -> None:
    """Parquet keeps money as exact decimals; XLSX is written too."""
    out = tmp_path / f"out{suffix}"
    run_batch(ROOT / "examples/claims.csv", SUQIAN, out)
    assert out.exists() and out.stat().st_size > 0
    if suffix == ".parquet":
        frame = pl.read_parquet(out)
        assert isinstance(frame.schema["fund_pay_sumamt"], pl.Decimal)


def test_injection_guard_and_line_items(tmp_path) -> None:
    """A claim id starting with '=' is neutralised; a line-item export is grouped into claims."""
    path = tmp_path / "items.csv"
    path.write_text(
        "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,item_category,item_class,item_amount\n"
        "=HYPERLINK(1),P1,inpatient,2008-04-02,in_district,true,drug,A,8000\n"
        "=HYPERLINK(1),P1,inpatient,2008-04-02,in_district,true,drug,C,2000\n"
        "=HYPERLINK(1),P1,inpatient,2008-04-02,in_district,true,exam,,4000\n",
        encoding="utf-8",
    )
    result = run_batch(path, SUQIAN, tmp_path / "out.csv")
    assert (result.shape, result.rows_read, result.claims_settled) == ("items", 3, 1)
    out = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    assert out["claim_id"][0] == "'=HYPERLINK(1)"
    assert (out["fulamt_ownpay_amt"][0], out["inscp_scp_amt"][0], out["fund_pay_sumamt"][0]) == (
        "2000.00", "12000.00", "6200.00")


claim = st.tuples(
    st.sampled_from(["A", "B"]),
    st.dates(min_value=__import__("datetime").date(2008, 1, 1), max_value=__import__("datetime").date(2009, 12, 31)),
    st.sampled_from(["in_district", "in_city", "out_of_city"]),
    st.integers(0, 6_000_000),
    st.integers(0, 100),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(claim, min_size=1, max_size=12))
def test_every_batch_row_equals_calc_with_its_history(tmp_path, claims) -> None:
    """Batch = calc: each claim settled alone with history = the fund its person was paid earlier that year."""
    lines = []
    for i, (person, day, zone, fen, b_pct) in enumerate(claims):
        total = f"{fen // 100}.{fen % 100:02d}"
        b = fen * b_pct // 100
        lines.append(f"C{i},{person},inpatient,{day.isoformat()},{zone},true,{total},0,{b // 100}.{b % 100:02d}\n")
    path = tmp_path / "seq.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    result = run_batch(path, SUQIAN, tmp_path / "seq-out.csv")
    rows = result.settlement.with_row_index("i").to_dicts()
    order = sorted(range(len(claims)), key=lambda i: (claims[i][0], claims[i][1], i))
    paid: dict[tuple, int] = {}
    for i in order:
        person, day, zone, fen, b_pct = claims[i]
        key = (person, day.year)
        b = fen * b_pct // 100
        bill = {"id": f"C{i}", "person": {"id": person},
                "visit": {"type": "inpatient", "admit_date": day.isoformat(), "hospital": {"zone": zone},
                          "preapproved": True},
                "amounts": {"total": f"{fen // 100}.{fen % 100:02d}", "class_b": f"{b // 100}.{b % 100:02d}"},
                "history": {"fund_paid": f"{paid.get(key, 0) // 100}.{paid.get(key, 0) % 100:02d}"}}
        alone = settle_bill(SUQIAN, bill)
        got = rows[i]["fund_pay_sumamt"]
        assert Decimal(alone["fund_pay_sumamt"]) * 100 == got, (i, alone, rows[i])
        paid[key] = paid.get(key, 0) + got


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_partitioned_path_gives_the_same_bytes(tmp_path, suffix) -> None:
    """Settling by person-hash partitions (bounded memory) writes exactly what the in-memory path writes."""
    whole = run_batch(ROOT / "examples/claims.csv", SUQIAN, tmp_path / f"whole{suffix}")
    parts = run_batch(ROOT / "examples/claims.csv", SUQIAN, tmp_path / f"parts{suffix}", partitions=3)
    assert (parts.rows_read, parts.rows_rejected, parts.claims_settled) == (
        whole.rows_read, whole.rows_rejected, whole.claims_settled)
    if suffix == ".csv":
        assert (tmp_path / f"parts{suffix}").read_bytes() == (tmp_path / f"whole{suffix}").read_bytes()
    else:
        assert pl.read_parquet(tmp_path / f"parts{suffix}").equals(pl.read_parquet(tmp_path / f"whole{suffix}"))
    assert (tmp_path / "parts.rejects.csv").read_bytes() == (tmp_path / "whole.rejects.csv").read_bytes()


def test_partitioned_summary_matches(tmp_path) -> None:
    """The partitioned run's summary (pre-aggregated) shows the same totals and not-paid reasons."""
    import io

    from rich.console import Console

    from medins.report.summary import summary_view

    def text(result) -> str:
        console = Console(file=io.StringIO(), width=200, color_system=None)
        console.print(summary_view(result, "en"))
        return "\n".join(line for line in console.file.getvalue().splitlines() if "written to" not in line
                         and "rows read" not in line)

    whole = run_batch(ROOT / "examples/claims.csv", SUQIAN, tmp_path / "w.csv")
    parts = run_batch(ROOT / "examples/claims.csv", SUQIAN, tmp_path / "p.csv", partitions=4)
    assert text(whole) == text(parts)


def test_partitioned_path_refuses_a_wrong_encoding(tmp_path) -> None:
    """A GBK file declared UTF-8 is refused with a clear input error, not a traceback."""
    from medins.errors import InputError

    with pytest.raises(InputError, match="UTF-8"):
        run_batch(ROOT / "examples/claims.csv", SUQIAN, tmp_path / "o.csv", partitions=2, encoding="utf-8")
