"""All-or-nothing files: a failure while writing leaves neither a half file nor a temporary file; the files of a
run are renamed together; one run per output; leftovers of dead runs are removed."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from medins import atomic
from medins.atomic import OutputFiles, atomic_path
from medins.errors import OutputError, OutputLocked
from medins.runlock import RunLock


def test_success_replaces_the_target(tmp_path) -> None:
    """The finished temporary file is renamed over the target."""
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    with atomic_path(target, ".csv") as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write("new")
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path) -> None:
    """An exception mid-write leaves the previous file untouched and no temporary behind."""
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(target, ".csv") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("half")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_the_written_file_has_the_usual_permissions_not_mkstemps_private_0600(tmp_path):
    target = tmp_path / "out.csv"
    old = os.umask(0o022)
    try:
        with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            handle.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


# --- the files of one run, put in place together (issue 12, "nothing lost") -----------------------

def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_output_files_rename_every_target_only_at_commit_rejects_first(tmp_path, monkeypatch) -> None:
    """Before the commit the targets keep their old content; the commit syncs every temporary, then renames
    them in the order given (rejects first, settlements last: the commit point)."""
    out, rejects = tmp_path / "out.csv", tmp_path / "out.rejects.csv"
    out.write_text("old out", encoding="utf-8")
    rejects.write_text("old rejects", encoding="utf-8")
    events = []
    real_replace, real_fsync = os.replace, atomic.fsync_path
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append(("rename", Path(b).name)), real_replace(a, b)))
    monkeypatch.setattr(atomic, "fsync_path", lambda p, **k: (events.append(("fsync", Path(p).name[:5])),
                                                            real_fsync(p, **k)))
    with OutputFiles([rejects, out]) as files:
        files.temp(out).write_text("new out", encoding="utf-8")
        files.temp(rejects).write_text("new rejects", encoding="utf-8")
        assert out.read_text(encoding="utf-8") == "old out"
        assert any(atomic.LEFTOVER.match(n) for n in _names(tmp_path))
        files.commit()
    assert (out.read_text(encoding="utf-8"), rejects.read_text(encoding="utf-8")) == ("new out", "new rejects")
    folder = ("fsync", tmp_path.name[:5])  # the folder: after the journal, after the renames
    assert events == [("fsync", ".out."), ("fsync", ".out."), folder, ("rename", "out.rejects.csv"),
                      ("rename", "out.csv"), folder]
    assert _names(tmp_path) == ["out.csv", "out.rejects.csv"]  # no temporary, no lock file


def test_output_files_without_commit_replace_nothing_and_leave_nothing(tmp_path) -> None:
    """An error (or Ctrl-C) inside the block: old files untouched, temporaries and scratch folder removed."""
    out, rejects = tmp_path / "out.csv", tmp_path / "out.rejects.csv"
    out.write_text("old", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt), OutputFiles([rejects, out]) as files:
        files.temp(out).write_text("new", encoding="utf-8")
        (files.scratch() / "claims-0-0.arrow").write_bytes(b"x" * 100)
        raise KeyboardInterrupt
    assert out.read_text(encoding="utf-8") == "old" and _names(tmp_path) == ["out.csv"]


@pytest.mark.parametrize(("number", "words_en", "words_zh"), [
    (errno.ENOSPC, "the disk is full", "磁盘已满"), (errno.EACCES, "permission denied", "没有写入权限")])
def test_a_failed_write_is_a_bilingual_output_error(tmp_path, number, words_en, words_zh) -> None:
    """A write failing in the block becomes an OutputError naming the folder and the cause, in both languages."""
    with pytest.raises(OutputError) as caught, atomic_path(tmp_path / "chart.png", ".png") as tmp:
        Path(tmp).write_bytes(b"half")
        raise OSError(number, os.strerror(number))
    assert words_en in caught.value.message_en and str(tmp_path) in caught.value.message_en
    assert words_zh in caught.value.message_zh and caught.value.hint_en and caught.value.hint_zh
    assert caught.value.exit_code == 2 and _names(tmp_path) == []


def test_polars_disk_errors_are_read_from_their_text(tmp_path) -> None:
    """Polars reports a full disk as an OSError or ComputeError without errno, "(os error 28)" in its text."""
    import polars as pl

    error = atomic.output_error(pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device "
                                                           "(os error 28)"), tmp_path)
    assert error is not None and "disk is full" in error.message_en
    assert atomic.output_error(pl.exceptions.ComputeError("cannot compare"), tmp_path) is None  # a bug keeps its trace
    assert atomic.output_error(ValueError("x"), tmp_path) is None


def test_leftovers_of_dead_processes_are_removed_and_a_live_ones_kept(tmp_path) -> None:
    """At the start of a run, temporaries and spill folders of pids that no longer run are removed;
    a running process's, the lock file and the user's own files are not."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        names = [f".out.csv.medins-{dead_pid}.abc123_x.tmp.csv", f".out.csv.medins-{live.pid}.k9.tmp.csv",
                 ".out.csv.medins.lock", "out.csv", ".out.csv.medins-12x.tmp", "notes.medins-1.txt"]
        for name in names:
            (tmp_path / name).write_text("x", encoding="utf-8")
        spill = tmp_path / f".out.csv.medins-{dead_pid}.q1w2e3.spill"
        spill.mkdir()
        (spill / "claims-0-0.arrow").write_bytes(b"x")
        assert sorted(atomic.remove_leftovers(tmp_path)) == sorted([names[0], spill.name])
        assert _names(tmp_path) == sorted(names[1:])
    finally:
        live.kill()
        live.wait()


def test_a_lock_refuses_a_second_holder_names_its_pid_and_is_taken_over_after(tmp_path) -> None:
    """Two locks on one output: the second is refused with the first's pid; once released it can be taken;
    a lock file left by a dead process (flock released by the kernel) is simply taken over."""
    first, second = RunLock(tmp_path / "out.csv"), RunLock(tmp_path / "out.csv")
    first.acquire()
    with pytest.raises(OutputLocked) as caught:
        second.acquire()
    assert caught.value.pid == os.getpid() and f"pid {os.getpid()}" in caught.value.message_en
    assert "pid" in caught.value.message_zh and caught.value.exit_code == 2
    first.release()
    assert _names(tmp_path) == []
    (tmp_path / ".out.csv.medins.lock").write_text("99999999 2026-01-01 00:00:00 UTC\n", encoding="utf-8")
    second.acquire()  # stale: nobody holds its flock
    assert (tmp_path / ".out.csv.medins.lock").read_text(encoding="utf-8").split()[0] == str(os.getpid())
    second.release()
    assert _names(tmp_path) == []


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout)


def test_a_dead_runs_commit_journal_is_completed_by_the_next_run_on_its_outputs(tmp_path) -> None:
    """Killed between its two renames (rejects renamed, settlements not), a run leaves its journal; the next
    run holding the same outputs finishes the renames, so the pair is one run's again; a run on another
    output in the folder leaves the journal and its temporaries alone."""
    import json

    out, rejects = tmp_path / "out.csv", tmp_path / "out.rejects.csv"
    out.write_text("old out", encoding="utf-8")
    rejects.write_text("new rejects", encoding="utf-8")  # already renamed when the run was killed
    pid = _dead_pid()
    tmp_out = tmp_path / f".out.csv.medins-{pid}.a1b2.tmp.csv"
    tmp_out.write_text("new out", encoding="utf-8")
    journal = tmp_path / f".out.csv.medins-{pid}.c3d4.commit"
    journal.write_text(json.dumps({"renames": [[str(tmp_path / f".out.rejects.csv.medins-{pid}.e5.tmp.csv"),
                                                str(rejects)], [str(tmp_out), str(out)]]}), encoding="utf-8")
    with OutputFiles([tmp_path / "other.rejects.csv", tmp_path / "other.csv"]):
        pass
    assert _names(tmp_path) == sorted([journal.name, tmp_out.name, "out.csv", "out.rejects.csv"])
    with OutputFiles([rejects, out]):
        assert out.read_text(encoding="utf-8") == "new out"
    assert _names(tmp_path) == ["out.csv", "out.rejects.csv"]


def test_a_half_written_journal_is_only_a_leftover(tmp_path) -> None:
    """A journal cut short (killed while writing it, before any rename): removed, nothing renamed."""
    pid = _dead_pid()
    (tmp_path / f".out.csv.medins-{pid}.c3d4.commit").write_text('{"renames": [["', encoding="utf-8")
    (tmp_path / f".out.csv.medins-{pid}.a1b2.tmp.csv").write_text("half", encoding="utf-8")
    with OutputFiles([tmp_path / "out.rejects.csv", tmp_path / "out.csv"]):
        pass
    assert _names(tmp_path) == []


def test_a_chart_run_removes_what_a_killed_chart_run_left(tmp_path) -> None:
    """``atomic_path`` (charts, workbooks) also removes a dead process's temporaries in the folder."""
    left = tmp_path / f".chart.png.medins-{_dead_pid()}.x1.tmp.png"
    left.write_bytes(b"half a chart")
    with atomic_path(tmp_path / "chart.png", ".png") as tmp:
        Path(tmp).write_bytes(b"chart")
    assert _names(tmp_path) == ["chart.png"]


def test_a_signal_after_the_commit_says_the_outputs_are_whole(tmp_path) -> None:
    """SIGTERM while the workers stop, after the renames: the message must not claim nothing was replaced."""
    from medins.interrupts import Interrupted

    out = tmp_path / "out.csv"
    with pytest.raises(Interrupted) as caught, OutputFiles([tmp_path / "r.csv", out]) as files:
        files.temp(out).write_text("new", encoding="utf-8")
        files.commit()
        raise Interrupted(15)
    assert caught.value.after_commit and "written in full" in caught.value.message("en")
    assert "完整" in caught.value.message("zh") and caught.value.exit_code == 143
    assert "no output was replaced" in Interrupted(2).message("en") and Interrupted(2).exit_code == 130


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this system")
def test_the_old_outputs_cached_pages_are_dropped_at_the_start_and_nothing_else_changes(tmp_path, monkeypatch):
    """Entering a run drops the cached pages of the targets that exist (the files the commit replaces), on a thread:
    advice only, every byte stays; a folder (Spark's output), a pipe and a missing target are left alone."""
    old = tmp_path / "out.csv"
    old.write_bytes(b"claim_id\n" + b"C1\n" * 10_000)
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    folder = tmp_path / "spark-out"
    folder.mkdir()
    advised: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((os.fstat(fd).st_ino, advice))
        real(fd, offset, length, advice)

    monkeypatch.setattr(atomic.os, "posix_fadvise", spy)
    thread = atomic.forget_cached([old, pipe, folder, tmp_path / "missing.csv"])
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()  # a pipe opened for reading would have blocked it
    assert advised == [(old.stat().st_ino, os.POSIX_FADV_DONTNEED)]
    assert old.read_bytes() == b"claim_id\n" + b"C1\n" * 10_000
    assert atomic.forget_cached([folder, tmp_path / "missing.csv"]) is None

    advised.clear()
    with OutputFiles([tmp_path / "out.rejects.csv", old]) as files:
        files.temp(old).write_bytes(b"new\n")
        for thread in [t for t in threading.enumerate() if t.name == "medins-forget-cached"]:
            thread.join(10)
        assert advised == [(old.stat().st_ino, os.POSIX_FADV_DONTNEED)]
        files.commit()
    assert old.read_bytes() == b"new\n"
