"""``--engine spark`` equals the local batch row for row and fen for fen, rejects included (issue 16).

One ``local[2]`` session serves every test (conftest); each comparison runs the local ``run_batch`` on
the same input and compares the union of Spark's part files, ordered by input row, with its output.
"""

from __future__ import annotations

import io
import random
import re
import sys
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

import medins.partitioned
from medins.batch import run_batch
from medins.errors import UsageError
from medins.policy.loader import load_policy
from medins.report.summary import summary_view
from tests.cli_support import run as run_medins
from tests.spark_support import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples/claims.csv"
ITEMS_EXAMPLE = ROOT / "examples/claims-items.csv"
SUQIAN = load_policy("suqian-2007")
#: Lingchuan's basic fund and 大额 layer (two payers); the rates are the fixture of seed-policies.md §8.3.
LINGCHUAN = load_policy("lingchuan", {"raise_date": "2013-07-01", "basic_rate": "100%", "basic_deductible": "0",
                                      "large_rate": "100%"})


def run(capsys, *args: str) -> tuple[int, str]:
    code, out, err = run_medins(capsys, *args)
    return code, out + err


def spark_output(folder: Path) -> pl.DataFrame:
    """The part files in name order (they must already be in input-row order), ``row`` as a number."""
    parts = sorted(p for p in folder.iterdir() if p.name.startswith("part-"))
    if parts[0].suffix == ".csv":
        frame = pl.concat([pl.read_csv(p, infer_schema=False) for p in parts])
    else:
        frame = pl.concat([pl.read_parquet(p) for p in parts])
    frame = frame.with_columns(pl.col("row").cast(pl.Int64))
    assert frame["row"].is_sorted(), "part files are not in input-row order"
    return frame


def local_output(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.read_parquet(path)


def assert_same(spark_folder: Path, local_file: Path, rejects_spark: Path, rejects_local: Path) -> pl.DataFrame:
    """Spark's union = the local output (money as text for CSV, Decimal(18, 2) for Parquet), and the
    rejects files are equal; every input row is in exactly one of them."""
    ours, theirs = spark_output(spark_folder), local_output(local_file)
    assert ours.drop("row").equals(theirs), (ours, theirs)
    rejected = pl.read_csv(rejects_spark, infer_schema=False)
    assert rejected.equals(pl.read_csv(rejects_local, infer_schema=False))
    rows = sorted([*ours["row"].to_list(), *map(int, rejected["row"].to_list())])
    assert rows == list(range(1, len(rows) + 1))
    return ours


def summary_text(result) -> str:
    console = Console(file=io.StringIO(), width=140)
    console.print(summary_view(result, "en"))
    return re.sub(r"\d+\.\d+ s\)", "s)", console.file.getvalue()).replace(str(result.output), "OUT").replace(
        str(result.rejects), "REJECTS")


# --- the shipped examples ------------------------------------------------------------------------

def test_gbk_example_in_pieces_equals_the_local_batch(spark, tmp_path, monkeypatch) -> None:
    """The GBK example, cut into pieces of a few records (several chunks to number), settled in three person
    partitions: the same rows, rejects, accounting line and summary as ``medins batch``."""
    from medins.spark.batch import run_spark_batch

    monkeypatch.setattr(medins.partitioned, "PIECE_BYTES", 300)
    ours = run_spark_batch(EXAMPLE, SUQIAN, tmp_path / "s.csv", partitions=3)
    theirs = run_batch(EXAMPLE, SUQIAN, tmp_path / "l.csv")
    assert_same(tmp_path / "s.csv", tmp_path / "l.csv", tmp_path / "s.rejects.csv", tmp_path / "l.rejects.csv")
    assert (ours.rows_read, ours.rows_rejected, ours.claims_settled, ours.encoding) == (27, 2, 25, "gb18030")
    assert summary_text(ours) == summary_text(theirs)


def test_cli_engine_spark_writes_a_folder_and_the_same_summary(spark, tmp_path, capsys) -> None:
    """``medins batch … --engine spark``: exit 1 (rows were rejected), the accounting line, a folder of parts;
    run twice, the second run replaces the first folder whole."""
    for _ in range(2):
        code, out = run(capsys, "batch", str(EXAMPLE), "--policy", "suqian-2007", "-o", str(tmp_path / "o.csv"),
                        "--engine", "spark", "--master", "local[2]", "--lang", "en")
        assert code == 1, out
        assert "rows read 27 = settled 25 + rejected 2" in out
    assert (tmp_path / "o.csv" / "_SUCCESS").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    code, out = run(capsys, "batch", str(EXAMPLE), "--policy", "suqian-2007", "-o", str(tmp_path / "l.csv"))
    assert_same(tmp_path / "o.csv", tmp_path / "l.csv", tmp_path / "o.rejects.csv", tmp_path / "l.rejects.csv")


# --- random multi-claim person sequences, files and folders, one and two payers -------------------

def random_claims(seed: int, n: int, *, persons: int, lingchuan: bool = False) -> str:
    """A CSV of ``n`` claims of a few persons (many claims each: caps, bands and accounts carry over), with
    same-day claims (input order decides) and a few malformed rows."""
    rng = random.Random(seed)
    lines = ["claim_id,person_id,person_category,visit_type,admit_date,hospital_zone,preapproved,total,self_pay,"
             "class_b"]
    for i in range(n):
        person = f"P{rng.randrange(persons)}"
        kind = "inpatient" if lingchuan else rng.choice(["inpatient"] * 3 + ["outpatient"])
        year = rng.choice([2013, 2014]) if lingchuan else rng.choice([2008, 2009])
        day = f"{year}-{rng.randint(1, 12):02d}-{rng.choice([3, 3, 17]):02d}"
        total = rng.choice([rng.randrange(0, 6_000_000), rng.randrange(3_000_000, 9_000_000)])
        if lingchuan:
            total = rng.randrange(1_000_000, 70_000_000)
        self_pay = total * rng.randint(0, 30) // 100
        class_b = (total - self_pay) * rng.randint(0, 100) // 100
        category = rng.choice(["in_service", "resident"]) if lingchuan else ""
        zone = rng.choice(["in_district", "in_city", "out_of_city", ""])
        flag = rng.choice(["true", "true", "false", ""])
        money = [f"{v // 100}.{v % 100:02d}" for v in (total, self_pay, class_b)]
        if rng.random() < 0.03:
            money[0] = rng.choice(["12a", "1.234", "-5"])
        if rng.random() < 0.02:
            day = f"{year}-02-30"
        lines.append(",".join([f"C{i}", person, category, kind, day, zone, flag, *money]))
    return "\n".join(lines) + "\n"


def test_random_person_sequences_through_the_api_equal_the_local_batch(spark, tmp_path) -> None:
    """``medins.spark.settle`` on a shuffled DataFrame with a ``row`` column: the same rows and rejects as the
    local batch of the same file — the person partitions are re-ordered by input row before settling."""
    from medins.spark import settle

    path = tmp_path / "seq.csv"
    path.write_text(random_claims(7, 400, persons=12), encoding="utf-8")
    run_batch(path, SUQIAN, tmp_path / "l.parquet")
    cells = pl.read_csv(path, infer_schema=False).with_row_index("row", offset=1)
    frame = spark.createDataFrame(cells.to_dicts(), "row long, " + ", ".join(f"{c} string" for c in cells.columns[1:]))
    settlements, rejects = settle(frame.repartition(3), SUQIAN, row="row", partitions=4)
    ours = pl.from_arrow(settlements.toArrow()).sort("row")
    assert ours.drop("row").equals(pl.read_parquet(tmp_path / "l.parquet"))
    assert dict(settlements.dtypes)["hifp_pay"] == "decimal(18,2)"
    theirs = pl.read_csv(tmp_path / "l.rejects.csv", infer_schema=False)
    got = pl.from_arrow(rejects.toArrow()).sort("row").with_columns(pl.col("row").cast(pl.String))
    assert got.equals(theirs)
    assert theirs.height > 0 and ours.height + theirs.height == 400


def test_a_folder_of_parquet_files_equals_the_local_batch_of_their_rows(spark, tmp_path) -> None:
    """A folder of two Parquet files (read by Spark, numbered by file name and index in the file) under the
    two-payer Lingchuan policy, written as Parquet: the local batch of the same rows in one file gives the same
    Decimal(18, 2) output, 大额 layer (hifob_pay) included."""
    from medins.spark.batch import run_spark_batch

    cells = pl.read_csv(io.StringIO(random_claims(11, 300, persons=8, lingchuan=True)), infer_schema=False)
    (tmp_path / "in").mkdir()
    cells.slice(180).write_parquet(tmp_path / "in" / "b.parquet")  # name order, not write order, decides
    cells.slice(0, 180).write_parquet(tmp_path / "in" / "a.parquet")
    (tmp_path / "in" / "_SUCCESS").write_text("")
    cells.write_parquet(tmp_path / "whole.parquet")
    ours = run_spark_batch(tmp_path / "in", LINGCHUAN, tmp_path / "s.parquet")
    theirs = run_batch(tmp_path / "whole.parquet", LINGCHUAN, tmp_path / "l.parquet")
    out = assert_same(tmp_path / "s.parquet", tmp_path / "l.parquet", tmp_path / "s.rejects.csv",
                      tmp_path / "l.rejects.csv")
    assert out.schema["hifob_pay"] == pl.Decimal(18, 2)
    assert out["hifob_pay"].sum() > 0  # the second payer really paid
    assert (ours.rows_read, ours.rows_rejected, ours.claims_settled) == (
        theirs.rows_read, theirs.rows_rejected, theirs.claims_settled)


def test_rows_are_numbered_in_dataframe_order_without_a_row_column(spark) -> None:
    """Without ``row``, rows are numbered partition by partition in the DataFrame's order."""
    from medins.spark import settle

    cells = pl.read_csv(io.StringIO(random_claims(3, 40, persons=3)), infer_schema=False)
    frame = spark.createDataFrame(spark.sparkContext.parallelize([tuple(r) for r in cells.rows()], 3),
                                  ", ".join(f"{c} string" for c in cells.columns))
    settlements, rejects = settle(frame, SUQIAN)
    ids = {r["row"]: r["claim_id"] for r in [*settlements.collect(), *rejects.collect()]}
    assert ids == {i + 1: f"C{i}" for i in range(40)}


# --- refusals and errors -------------------------------------------------------------------------

def test_line_items_are_refused_clearly(spark, tmp_path) -> None:
    from medins.spark.batch import run_spark_batch

    with pytest.raises(UsageError, match="line-item"):
        run_spark_batch(ITEMS_EXAMPLE, SUQIAN, tmp_path / "o.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_job_is_a_usage_error_not_a_traceback(spark, tmp_path) -> None:
    """A task that fails inside Spark (here: no policy to settle under) reaches the user as one message."""
    from medins.spark.batch import run_spark_batch

    with pytest.raises(UsageError, match="the Spark job failed"):
        run_spark_batch(EXAMPLE, None, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_a_missing_required_column_is_told_before_any_job(spark, tmp_path) -> None:
    from medins.errors import InputError
    from medins.spark.batch import run_spark_batch

    (tmp_path / "c.csv").write_text("claim_id,total\nC1,10\n", encoding="utf-8")
    with pytest.raises(InputError, match="person"):
        run_spark_batch(tmp_path / "c.csv", SUQIAN, tmp_path / "o.csv")


def test_inputs_and_outputs_spark_cannot_take(tmp_path) -> None:
    from medins.spark.batch import input_files, output_format

    (tmp_path / "a.csv").write_text("x\n")
    (tmp_path / "b.parquet").write_text("x")
    with pytest.raises(UsageError, match="one kind"):
        input_files(tmp_path)
    with pytest.raises(UsageError, match="one kind"):
        input_files(_xlsx(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no claims files"):
        input_files(tmp_path / "empty")
    with pytest.raises(UsageError, match="folder of CSV or Parquet"):
        output_format(tmp_path / "o.xlsx", None)
    with pytest.raises(UsageError, match="does not exist"):
        output_format(tmp_path / "missing" / "o.csv", None)
    assert output_format(tmp_path / "o", "parquet") == "parquet"


@pytest.mark.parametrize("case", ["output is the claims file", "output is the claims folder", "rejects is the output",
                                  "rejects inside the claims folder", "rejects format unknown"])
def test_outputs_that_would_destroy_the_input_are_refused_before_spark(tmp_path, case) -> None:
    """As ``run_batch``: exit 2 before a session starts, every file as it was."""
    from medins.spark.batch import run_spark_batch

    folder = tmp_path / "in"
    folder.mkdir()
    claims = folder / "claims.csv"
    claims.write_bytes(EXAMPLE.read_bytes())
    source, output, rejects = {
        "output is the claims file": (claims, claims, tmp_path / "r.csv"),
        "output is the claims folder": (folder, folder, tmp_path / "r.csv"),
        "rejects is the output": (claims, tmp_path / "o.csv", tmp_path / "o.csv"),
        "rejects inside the claims folder": (folder, tmp_path / "o.csv", folder / "r.csv"),
        "rejects format unknown": (claims, tmp_path / "o.csv", tmp_path / "r.txt2"),
    }[case]
    with pytest.raises(UsageError):
        run_spark_batch(source, SUQIAN, output, rejects=rejects)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["claims.csv", "in"]
    assert claims.read_bytes() == EXAMPLE.read_bytes()


def test_a_missing_parameter_stops_the_spark_run_before_any_output(spark, tmp_path, capsys) -> None:
    """Lingchuan without the rates its source does not give: exit 2 with how to supply them, as the local
    batch, and neither the output folder nor the rejects file is written."""
    path = tmp_path / "l.csv"
    path.write_text(random_claims(5, 20, persons=3, lingchuan=True), encoding="utf-8")
    code, out = run(capsys, "batch", str(path), "--policy", "lingchuan", "-o", str(tmp_path / "o.csv"),
                    "--engine", "spark", "--lang", "en")
    assert code == 2 and "--set" in out and "Traceback" not in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.csv"]


def _xlsx(folder: Path) -> Path:
    path = folder / "claims.xlsx"
    path.write_bytes(b"PK")
    return path


def test_cli_refusals(tmp_path, capsys) -> None:
    code, out = run(capsys, "batch", str(tmp_path), "--policy", "suqian-2007", "-o", str(tmp_path / "o.csv"))
    assert code == 2 and "--engine spark" in out and "Traceback" not in out
    code, out = run(capsys, "batch", str(EXAMPLE), "--policy", "suqian-2007", "-o", str(tmp_path / "o.csv"),
                    "--engine", "flink")
    assert code == 2 and "local" in out and "spark" in out and "flink" in out
    (tmp_path / "folder.csv").mkdir()  # a folder is --engine spark's output; the local engine refuses it
    code, out = run(capsys, "batch", str(EXAMPLE), "--policy", "suqian-2007", "-o", str(tmp_path / "folder.csv"))
    assert code == 2 and "folder" in out and "Traceback" not in out and list((tmp_path / "folder.csv").iterdir()) == []


def test_missing_pyspark_or_java_is_a_clear_usage_error(monkeypatch) -> None:
    import shutil

    from medins.spark import require_spark

    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "pyspark", None)  # what `import pyspark` meets without the extra
        with pytest.raises(UsageError, match=r"pip install \"medins\[spark\]\""):
            require_spark()
    pytest.importorskip("pyspark")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(UsageError, match="Java 17 or 21"):
        require_spark()


def test_spark_tests_skip_on_a_users_machine_and_fail_in_ci() -> None:
    """The skip prints its reason on a machine without Java; under CI=true it is a failure instead."""
    with pytest.raises(pytest.skip.Exception, match="no Java"):
        skip_or_fail("no Java here", {})
    with pytest.raises(pytest.fail.Exception, match="CI must run the Spark tests"):
        skip_or_fail("no Java here", {"CI": "true"})
    skip_or_fail(None, {"CI": "true"})


def test_master_urls() -> None:
    """Spark's master forms pass; anything else is refused before a JVM starts (with --engine local, any
    --master is refused: it would be ignored)."""
    from medins.spark import check_master

    for good in ("local", "local[2]", "local[*]", "local[4,3]", "yarn", "spark://h:7077", "k8s://https://h:443"):
        assert check_master(good) == good
    for bad in ("nonsense", "local[0]", "local[x]", "spark://", "yarn2"):
        with pytest.raises(UsageError, match="not a Spark master"):
            check_master(bad)


def test_cli_master_needs_spark(tmp_path, capsys) -> None:
    code, out = run(capsys, "batch", str(EXAMPLE), "--policy", "suqian-2007", "-o", str(tmp_path / "o.csv"),
                    "--master", "local[2]")
    assert code == 2 and "--engine spark" in out and list(tmp_path.iterdir()) == []
    code, out = run(capsys, "batch", str(EXAMPLE), "--policy", "suqian-2007", "-o", str(tmp_path / "o.csv"),
                    "--engine", "spark", "--master", "nonsense")
    assert code == 2 and "not a Spark master" in out and list(tmp_path.iterdir()) == []


def test_local_cores() -> None:
    from medins.spark import local_cores

    assert [local_cores(m) for m in ("local", "local[3]", "local[5,2]", "local[x]")] == [1, 3, 5, 1]
