"""The hand-written peers of ``medins batch`` (benchmarks/peer_polars.py, peer_duckdb.py) agree with it to the fen.

Why a test: the benchmark's comparison is only fair while the peers settle exactly what medins settles; a rule
medins changes (or a peer gets wrong) must show up here as differing claims, not as a silently faster peer.
The DuckDB peer needs the ``bench`` extra: without duckdb these tests skip on a user's machine and fail under
``CI=true`` (.ci/run installs the extra).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

from peer_common import OUTPUT_COLUMNS, REJECT_COLUMNS, diff  # noqa: E402

ROWS, PERSONS = 3000, 60  # ~25 claims a person over two years: caps, top-ups and the account's carry-over happen
#: Malformed rows (one reject code each, two for the last two) and rows a peer could misread, appended to the claims.
MALFORMED = """\
X1,P1,住院,2008-03-01,2008-13-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,0.00,0.00,""
X2,P1,住院,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.005,0.00,0.00,""
X3,P1,门诊,2008-03-01,2008-03-01,宿迁市中医院,2007-08-01,是,2008-03-20,abc,0.00,0.00,""
X4,P1,门诊,2008-03-01,2008-03-01,宿迁市中医院,2007-08-01,是,2008-03-20,10,1.5,0.00,""
X5,P1,住院,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,也许,2008-03-20,100.00,0.00,0.00,""
X6,P1,住院,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,200.00,0.00,""
X7,P1,住院,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,-100.00,0.00,0.00,""
X8,P1,住院,2008-03-01,2008-02-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,0.00,0.00,""
X9,P1,门诊,2008-03-01,2008-03-01,宿迁市中医院,2007-08-01,,2008-03-20,1000.00,0.00,50.00,""
Y1,P1,住院,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,10.00,95.00,""
,P1,住院,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,0.00,0.00,""
Y5,,住院,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,0.00,0.00,""
Y6,P1,住院,,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,0.00,0.00,""
Y7,P1,牙科,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,0.00,0.00,""
Y8,P1,住院,2008-03-01,2008-03-05,宿迁市中医院,2007-08-01,Y,2008-03-20,,0.00,0.00,""
Y9,P1,住院,2008-03-01,2008-03-05,未列名医院,2007-08-01,是,2008-03-20,100,,,""
Z1,P2,住院,2008-13-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,abc,x,0.00,""
Z2,P2,住院,2008-13-01,2008-03-05,宿迁市中医院,2007-08-01,是,2008-03-20,100.00,-1.00,0.00,""
"""


def _require_duckdb() -> None:
    """Skip without duckdb on a user's machine; under CI=true its absence is a failure (the peer must be checked)."""
    if importlib.util.find_spec("duckdb") is not None:
        return
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail("CI must check the DuckDB peer, but duckdb is not installed: pip install '.[bench]'", pytrace=False)
    pytest.skip("duckdb is not installed (pip install '.[bench]')")


def _claims(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("bench_batch", BENCH / "batch.py")
    assert spec and spec.loader
    batch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(batch)
    path = folder / f"claims-{ROWS}.csv"
    batch.generate(path, ROWS - len(MALFORMED.splitlines()), PERSONS)
    with path.open("a", encoding="utf-8") as out:
        out.write(MALFORMED)
    return path


def test_both_peers_settle_every_generated_claim_and_reject_as_medins_does(tmp_path: Path) -> None:
    _require_duckdb()
    _claims(tmp_path)
    done = subprocess.run([sys.executable, str(BENCH / "batch.py"), "--check", "--rows", str(ROWS), "--keep",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for peer in ("polars peer", "duckdb peer"):
        assert re.search(rf"^{peer}\s+0 claims differ from medins$", done.stdout, re.MULTILINE), done.stdout
    # The claims exercise every rule the peers hand-write, so agreement means something.
    settled = pl.read_csv(tmp_path / "settled.csv", infer_schema=False)
    money = {c: pl.col(c).str.replace(".", "", literal=True).cast(pl.Int64) for c in ("act_pay_dedc", "hifp_pay",
                                                                                   "acct_pay")}
    reasons = set(settled["reasons"].drop_nulls().str.split(";").explode())
    assert {"waiting_period", "no_preapproval", "late_claim", "not_designated"} <= reasons
    assert settled.filter(pl.col("unchecked").str.starts_with("no_preapproval")).height  # blank 是否备案: unchecked
    by_year = settled.with_columns(**money).join(
        pl.read_csv(tmp_path / f"claims-{ROWS}.csv", infer_schema=False).select(
            claim_id="结算单号", kind="医疗类别", year=pl.col("入院日期").str.slice(0, 4)), on="claim_id")
    special_ded = by_year.filter((pl.col("kind") == "门诊大病") & (pl.col("act_pay_dedc") > 0))
    assert special_ded.filter(pl.col("act_pay_dedc") < 50_000).height  # a yearly deductible's rest or top-up
    totals = by_year.group_by("person_id", "year").agg(pl.col("hifp_pay").sum(), pl.col("acct_pay").sum())
    assert totals.filter(pl.col("hifp_pay") == 4_000_000).height  # the yearly cap binds
    assert totals.filter(pl.col("acct_pay") > 5_000).height  # a balance carried over into the next year
    rejects = pl.read_csv(tmp_path / "settled.rejects.csv", infer_schema=False)
    ours = rejects.filter(~pl.col("claim_id").fill_null("").str.starts_with("C"))["claim_id"].fill_null("")
    assert set(ours) == {"X1", "X2", "X3", "X5", "X6", "X7", "X8", "Y1", "", "Y5", "Y6", "Y7", "Y8", "Z1", "Z2"}


def test_the_diff_counts_each_differing_claim_and_reject(tmp_path: Path) -> None:
    base = pl.DataFrame({c: [f"{c}-{i}" for i in range(3)] for c in OUTPUT_COLUMNS}).with_columns(
        claim_id=pl.Series(["A", "B", "C"]))
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    base.write_csv(ours)
    pl.DataFrame({"row": ["1", "7"], "claim_id": ["R1", "R7"], "reason": ["bad_date:admit_date", "x"]}).write_csv(
        tmp_path / "ours.rejects.csv")
    assert diff(ours, ours) == (0, dict.fromkeys(["missing", *OUTPUT_COLUMNS[1:], "rejects"], 0))
    base.with_columns(hifp_pay=pl.Series(["hifp_pay-0", "1.00", "hifp_pay-2"]),
                      status=pl.Series(["status-0", "rejected", "status-2"])).filter(pl.col("claim_id") != "C") \
        .write_csv(theirs)
    pl.DataFrame({"row": ["1"], "claim_id": ["R1"], "reason": ["bad_date:admit_date"]}).select(REJECT_COLUMNS) \
        .write_csv(tmp_path / "theirs.rejects.csv")
    differing, fields = diff(ours, theirs)
    assert differing == 3  # B (two fields), C (settled by one side only), the reject of row 7
    assert (fields["hifp_pay"], fields["status"], fields["missing"], fields["rejects"]) == (1, 1, 1, 1)
    assert fields["acct_pay"] == fields["person_id"] == 0


def test_the_batch_benchmark_times_both_peers_and_profiles_medins_by_stage(tmp_path: Path) -> None:
    _require_duckdb()
    out = subprocess.run([sys.executable, str(BENCH / "batch.py"), "--rows", "2000", "--runs", "1", "--keep",
                          str(tmp_path), "--policy", "suqian-2007", "--policy", "cq-yubei-2023-resident"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    for label in ("medins batch", r"medins batch \(cq-yubei-2023-resident\)", "polars floor", "I/O bound",
                  "polars peer", "duckdb peer"):
        assert re.search(rf"^{label}\s+\d+\.\d\d s\s+\d+\.\d\d× floor\s+CPU\s+\d+\.\d\d s \(\s*\d+\.\d\d×\)\s+"
                         r"peak RSS\s+\d+ MiB, all processes\s+\d+ MiB$", out, re.MULTILINE), (label, out)
    assert re.search(r"^cq-yubei-2023-resident: \d+\.\d\d× the suqian-2007 figure", out, re.MULTILINE), out
    for stage in ("read/validate", "engine.order", "engine.admissibility", "engine.benefits", "engine.account",
                  "write", "other"):
        assert re.search(rf"^  {re.escape(stage)}\s+\d+\.\d\d s wall", out, re.MULTILINE), (stage, out)
    assert re.search(r"^polars peer\s+0 claims differ from medins$", out, re.MULTILINE), out
    assert re.search(r"^duckdb peer\s+0 claims differ from medins$", out, re.MULTILINE), out
    # the three-payer claims: the assistance layers pay on about half of them
    three = pl.read_csv(tmp_path / "settled-cq-yubei-2023-resident.csv", infer_schema=False)
    assert three.filter(pl.col("maf_pay") != "0.00").height > three.height / 4
