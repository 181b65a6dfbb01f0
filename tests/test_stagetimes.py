"""``medins.stagetimes``: per-stage wall and CPU, recorded only when MEDINS_STAGE_TIMES names a file."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from medins import stagetimes
from medins.stagetimes import ENV, StageTotal, since_start, stage, summarise, totals
from tests.cli_support import run

HEADER = "结算单号,个人编号,医疗类别,入院日期,出院日期,医院名称,参保缴费日期,是否备案,申报日期," \
    "医疗费总额,全自费金额,乙类金额,诊断名称\n"
CLAIMS = HEADER + """C1,P1,住院,2008-10-18,2008-10-26,宿迁市中医院,2008-03-15,是,2008-11-07,51296.57,0.00,12311.17,
C2,P2,门诊,2008-10-18,2008-10-18,珠江医院,2007-03-15,是,2008-10-20,120.00,0.00,0.00,
C3,P1,门诊大病,2008-11-02,2008-11-02,市人民医院,2008-03-15,是,2008-11-05,9000.00,100.00,500.00,dialysis
C4,P3,住院,2009-02-30,2008-10-26,宿迁市中医院,2008-03-15,是,2008-11-07,100.00,0.00,0.00,
"""
ENGINE = ("engine.order", "engine.prepare", "engine.scope", "engine.admissibility", "engine.rules", "engine.benefits",
          "engine.account", "engine.totals")


def test_without_the_variable_nothing_is_timed_or_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    first, second = stage("read/validate"), stage("write")
    assert first is second is stagetimes._OFF  # one shared do-nothing context: no clock, no file
    with first:
        pass
    assert list(tmp_path.iterdir()) == []


def test_each_stage_appends_its_wall_and_cpu_even_when_it_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "stages.tsv"
    monkeypatch.setenv(ENV, str(path))
    for _ in range(2):
        with stage("engine.benefits"):
            sum(range(10_000))
    with pytest.raises(ValueError, match="boom"), stage("write"):
        raise ValueError("boom")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[:2] for line in lines] == [[str(os.getpid()), "engine.benefits"]] * 2 + [
        [str(os.getpid()), "write"]]
    assert all(float(x) >= 0 for line in lines for x in line.split("\t")[2:])
    found = totals(path)
    assert [(t.name, t.calls, t.processes) for t in found] == [("engine.benefits", 2, 1), ("write", 1, 1)]


def test_totals_sum_by_stage_over_processes_and_skip_broken_lines() -> None:
    lines = ["10\tread/validate\t1.5\t2.0", "11\tread/validate\t0.5\t1.0", "10\twrite\t0.25\t0.5",
             "half a line", "12\twrite\tsoon\t1", "", "10\toutput table\t0.5\t0.5\tbeside",
             "10\tengine.order\t0.5\t0.5\taside"]
    assert summarise(lines) == [StageTotal("read/validate", 2.0, 3.0, 2, 2), StageTotal("write", 0.25, 0.5, 1, 1),
                                StageTotal("output table", 0.5, 0.5, 1, 1, beside=True)]


def test_a_stage_off_the_main_thread_is_marked_beside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stages on another thread overlap the main thread's: marked, so that the benchmark's "other" (wall minus
    the stages) does not count them twice."""
    path = tmp_path / "stages.tsv"
    monkeypatch.setenv(ENV, str(path))

    def finish() -> None:
        with stage("output table"):
            pass

    with stage("engine.rules"):
        thread = threading.Thread(target=finish)
        thread.start()
        thread.join()
    assert [(t.name, t.beside) for t in totals(path)] == [("output table", True), ("engine.rules", False)]


def test_start_up_is_timed_from_the_process_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``since_start`` records the process's age and its CPU so far (nothing without the variable)."""
    monkeypatch.delenv(ENV, raising=False)
    since_start("start-up")  # no file, no error
    path = tmp_path / "stages.tsv"
    monkeypatch.setenv(ENV, str(path))
    since_start("start-up")
    if not path.exists():  # no /proc: nothing is recorded
        assert stagetimes._process_age() is None
        return
    (found,) = totals(path)
    assert found.name == "start-up" and found.calls == 1 and not found.beside
    assert found.wall > 0 and 0 < found.cpu <= time.process_time()


@pytest.mark.parametrize(("partitions", "threads"), [("1", 2), ("2", 1), ("2", 2)])
def test_a_batch_run_records_reading_every_engine_stage_and_writing(tmp_path: Path, capsys,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   partitions: str, threads: int) -> None:
    import medins.partitioned

    monkeypatch.setattr(medins.partitioned, "SETTLE_THREADS", threads)
    claims = tmp_path / "claims.csv"
    claims.write_text(CLAIMS, encoding="utf-8")
    monkeypatch.delenv(ENV, raising=False)
    args = ["batch", str(claims), "--policy", "suqian-2007", "--partitions", partitions, "--jobs", "1"]
    code, _out, err = run(capsys, *args, "-o", str(tmp_path / "plain.csv"))
    assert code == 1, err  # one malformed row
    path = tmp_path / "stages.tsv"
    monkeypatch.setenv(ENV, str(path))
    code, _out, err = run(capsys, *args, "-o", str(tmp_path / "timed.csv"))
    assert code == 1, err
    found = totals(path)
    # the main thread's stages, in order, cover the whole run (start-up to summary); in one process the
    # partitioned read pass is timed once, spilling included (its pieces are parsed on threads) ...
    main = [t.name for t in found if not t.beside]
    per_partition = ["partition load", *ENGINE, "output table"]
    expected = ["read/validate", *ENGINE, "write"] if partitions == "1" else \
        ["read/validate", *per_partition, "write"] if threads == 1 else ["read/validate", "engine", "write"]
    assert main == ["start-up", "policy", *expected, "finish", "summary"]
    # ... and partitions settled on threads (two at a time) are timed there, beside the main thread's ``engine``
    assert [t.name for t in found if t.beside] == (per_partition if partitions == "2" and threads > 1 else [])
    assert all(t.wall >= 0 and t.cpu >= 0 for t in found)
    # timing changes nothing that is written
    assert (tmp_path / "timed.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert (tmp_path / "timed.rejects.csv").read_bytes() == (tmp_path / "plain.rejects.csv").read_bytes()
