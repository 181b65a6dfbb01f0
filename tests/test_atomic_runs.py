"""Nothing lost, ever (issue 12, deliverable 2): a batch's settlements and rejects are replaced together or not
at all; a full disk or a refused permission exits 2 with nothing replaced; one run per output; Ctrl-C, SIGTERM
and kill -9 leave no temporary, spill file or worker process behind (kill -9: the next run removes them)."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import medins.atomic
import medins.batch
import medins.partitioned
from medins.atomic import LEFTOVER
from medins.errors import OutputError
from medins.policy.loader import load_policy
from tests.cli_support import run as run_medins

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples/claims.csv"

#: ``medins ARGS`` that stops before writing its output (the workers alive, the spill folder full, the
#: settlement's temporary created) and tells the test so by creating the file READY.
PAUSED = '''
import pathlib, sys, time
if __name__ == "__main__":  # spawned workers import this file too: they must not run it
    import medins.partitioned
    original, ready = medins.partitioned._write_ranges, pathlib.Path(sys.argv[1])

    def paused(*args, **kwargs):
        ready.write_text("ready")
        time.sleep(120)
        return original(*args, **kwargs)

    medins.partitioned._write_ranges = paused
    sys.argv = ["medins", *sys.argv[2:]]
    from medins.cli import main
    main()
'''


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``medins ARGS`` in this process, through the real error boundary (main); stderr's lines joined."""
    code, out, err = run_medins(capsys, *args)
    return code, out, _flat(err)


def _flat(text: str) -> str:
    """The text of a Rich panel without its frame and line breaks (words compared with their spaces removed)."""
    return re.sub(r"[\s│╭╮╰╯─]+", "", text)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medins", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (None: no such process)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _gone(pids: list[int], seconds: float = 10) -> list[int]:
    """The pids still running (not ended, not a zombie) after waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        running = [p for p in pids if _state(p) not in (None, "Z")]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A generated claims file (the benchmark's generator, fixed seed) of a few thousand claims."""
    from benchmarks.batch import generate

    path = tmp_path_factory.mktemp("claims") / "claims.csv"
    generate(path, 3000, 500)
    return path


def _paused(tmp_path: Path, claims: Path, out: Path, *extra: str) -> tuple[subprocess.Popen, list[int]]:
    """A partitioned run with two workers, stopped just before writing; returns it and its worker pids."""
    script, ready = tmp_path / "paused.py", tmp_path / "ready"
    script.write_text(PAUSED, encoding="utf-8")
    ready.unlink(missing_ok=True)
    # output to a file, not a pipe: an orphaned worker holding the pipe would make reading it wait forever
    with open(tmp_path / "stderr.txt", "w", encoding="utf-8") as stderr:
        proc = subprocess.Popen([sys.executable, str(script), str(ready), "batch", str(claims), "-p", "suqian-2007",
                                 "-o", str(out), "--partitions", "3", "--jobs", "2", "--lang", "en", *extra],
                                cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"the run did not reach its write: {_stderr(tmp_path)}")
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) >= 2, workers  # two workers (and multiprocessing's resource tracker)
    return proc, workers


def _stderr(tmp_path: Path) -> str:
    return (tmp_path / "stderr.txt").read_text(encoding="utf-8")


def _no_orphans(workers: list[int]) -> list[int]:
    """The workers still running after their parent ended (killed here, so that a failing test leaves none)."""
    running = _gone(workers)
    for pid in running:
        os.kill(pid, signal.SIGKILL)
    return running


def test_kill_9_mid_run_leaves_no_worker_and_the_next_run_cleans_up(tmp_path, generated) -> None:
    """kill -9 of a partitioned run with --jobs 2: its workers die with it (no orphan in /proc); its spill
    folder and temporary stay, and the next run on the output removes them and writes the same bytes as a
    run that was never interrupted."""
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "out.csv"
    proc, workers = _paused(tmp_path, generated, out)
    leftovers = [n for n in _names(folder) if LEFTOVER.match(n)]
    assert any(n.endswith(".spill") for n in leftovers) and any(".tmp" in n for n in leftovers), leftovers
    proc.kill()
    proc.wait()
    assert _no_orphans(workers) == []
    assert not out.exists()
    again = cli("batch", str(generated), "-p", "suqian-2007", "-o", str(out), "--partitions", "3", "--jobs", "2")
    reference = cli("batch", str(generated), "-p", "suqian-2007", "-o", str(tmp_path / "ref.csv"), "--jobs", "1")
    assert again.returncode == reference.returncode, again.stderr
    assert _names(folder) == ["out.csv", "out.rejects.csv"]  # leftovers and the stale lock file gone
    assert out.read_bytes() == (tmp_path / "ref.csv").read_bytes()
    assert (folder / "out.rejects.csv").read_bytes() == (tmp_path / "ref.rejects.csv").read_bytes()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_clean_up_and_exit_143_130(tmp_path, generated, signum, code) -> None:
    """SIGTERM/SIGINT mid-run: the workers are ended, every temporary, spill folder and lock file removed, the
    earlier output left as it was, exit 128 + signal with a message, not a traceback."""
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "out.csv"
    out.write_text("earlier run\n", encoding="utf-8")
    (folder / "out.rejects.csv").write_text("earlier rejects\n", encoding="utf-8")
    proc, workers = _paused(tmp_path, generated, out)
    proc.send_signal(signum)
    proc.wait(timeout=60)
    stderr = _stderr(tmp_path)
    assert proc.returncode == code, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert _no_orphans(workers) == []
    assert _names(folder) == ["out.csv", "out.rejects.csv"]
    assert out.read_text(encoding="utf-8") == "earlier run\n"
    assert (folder / "out.rejects.csv").read_text(encoding="utf-8") == "earlier rejects\n"


def test_a_second_run_on_the_same_output_is_refused_naming_the_first(tmp_path, generated) -> None:
    """Two processes on one output: the second exits 2 at once with the first's pid and writes nothing; the
    first is not disturbed; another output in the same folder is not locked."""
    out = tmp_path / "out.csv"
    first, workers = _paused(tmp_path, generated, out)
    try:
        second = cli("batch", "examples/claims.csv", "-p", "suqian-2007", "-o", str(out), "--lang", "en")
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        zh = cli("batch", "examples/claims.csv", "-p", "suqian-2007", "-o", str(out), "--lang", "zh")
        assert zh.returncode == 2 and "正在写出" in zh.stderr and str(first.pid) in zh.stderr
        other = cli("batch", "examples/claims.csv", "-p", "suqian-2007", "-o", str(tmp_path / "other.csv"))
        assert other.returncode == 1, other.stderr  # some example rows are rejected: exit 1, not refused
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    assert first.returncode == 143 and _no_orphans(workers) == []


#: ``medins ARGS`` killed (as by kill -9: no cleanup at all) right after it renamed its rejects into place.
KILLED_BETWEEN_RENAMES = '''
import os, sys
if __name__ == "__main__":
    rename = os.replace

    def replace(src, dst):
        rename(src, dst)
        if str(dst).endswith(".rejects.csv"):
            os._exit(137)

    os.replace = replace
    sys.argv = ["medins", *sys.argv[1:]]
    from medins.cli import main
    main()
'''


def test_killed_between_the_two_renames_the_next_run_completes_the_pair(tmp_path) -> None:
    """A run dies after renaming its rejects and before its settlements: the next run on that output — even
    one that then fails on its own input — first completes the dead run's renames, so the settlements and
    rejects on disk are again one run's (here: equal to an uninterrupted run's), and nothing is left over."""
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "out.csv"
    out.write_text("earlier run\n", encoding="utf-8")
    script = tmp_path / "killed.py"
    script.write_text(KILLED_BETWEEN_RENAMES, encoding="utf-8")
    killed = subprocess.run([sys.executable, str(script), "batch", "examples/claims.csv", "-p", "suqian-2007", "-o",
                             str(out)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr
    assert out.read_text(encoding="utf-8") == "earlier run\n"  # the mismatched pair the kill left
    broken = tmp_path / "broken.csv"
    broken.write_text("claim_id,person_id,admit_date\nC1,P1,2008-01-01\n", encoding="utf-8")
    after = cli("batch", str(broken), "-p", "suqian-2007", "-o", str(out))
    assert after.returncode == 2, after.stderr
    cli("batch", "examples/claims.csv", "-p", "suqian-2007", "-o", str(tmp_path / "ref.csv"))
    assert _names(folder) == ["out.csv", "out.rejects.csv"]
    assert out.read_bytes() == (tmp_path / "ref.csv").read_bytes()
    assert (folder / "out.rejects.csv").read_bytes() == (tmp_path / "ref.rejects.csv").read_bytes()


# --- a failed write: exit 2, nothing replaced, nothing left --------------------------------------

def _earlier(folder: Path) -> None:
    (folder / "out.csv").write_text("earlier run\n", encoding="utf-8")
    (folder / "out.rejects.csv").write_text("earlier rejects\n", encoding="utf-8")


def _unchanged(folder: Path) -> bool:
    return (_names(folder) == ["out.csv", "out.rejects.csv"]
            and (folder / "out.csv").read_text(encoding="utf-8") == "earlier run\n"
            and (folder / "out.rejects.csv").read_text(encoding="utf-8") == "earlier rejects\n")


def _full_disk_in_rejects(monkeypatch) -> None:
    """Every write of a rejects file puts a first part on the disk, then fails as a full disk does."""
    original = pl.DataFrame.write_csv

    def write_csv(self, file=None, **kwargs):
        if isinstance(file, str | Path) and ".rejects." in Path(file).name:
            original(self.head(1), file, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, file, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_csv", write_csv)


@pytest.mark.parametrize("partitions", ["1", "3"])
def test_a_full_disk_while_writing_the_rejects_replaces_nothing(tmp_path, monkeypatch, capsys, partitions) -> None:
    """The disk fills while the rejects are written (the settlements already complete): exit 2 with the cause
    in the user's language, no traceback, the earlier settlements and rejects as they were, no temporary."""
    _earlier(tmp_path)
    _full_disk_in_rejects(monkeypatch)
    for lang, words in (("en", "the disk is full"), ("zh", "磁盘已满")):
        code, _out, err = run(capsys, "batch", str(EXAMPLE), "-p", "suqian-2007", "-o", str(tmp_path / "out.csv"),
                              "--partitions", partitions, "--jobs", "1", "--lang", lang)
        assert code == 2 and _flat(words) in err and "Traceback" not in err, err
        assert _unchanged(tmp_path)


def test_a_full_disk_while_spilling_in_a_worker_replaces_nothing(tmp_path, monkeypatch) -> None:
    """A spill file that cannot be written (here in this process's tasks) is the same bilingual error."""
    _earlier(tmp_path)
    monkeypatch.setattr(medins.batch, "IN_MEMORY_BYTES", 0)

    def write_ipc(self, file, **kwargs):
        raise OSError("No space left on device (os error 28)")  # as Polars raises it: no errno

    monkeypatch.setattr(pl.DataFrame, "write_ipc", write_ipc)
    with pytest.raises(OutputError, match="disk is full"):
        medins.batch.run_batch(EXAMPLE, load_policy("suqian-2007"), tmp_path / "out.csv", partitions=3)
    assert _unchanged(tmp_path)


def test_no_permission_for_the_rejects_folder_replaces_nothing(tmp_path, monkeypatch, capsys) -> None:
    """The rejects go to a folder this user may not write in: exit 2, "permission denied", the settlements
    not replaced either (the files of a run are replaced together or not at all)."""
    _earlier(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    real = medins.atomic.new_temp

    def new_temp(target, suffix=""):
        if Path(target).parent == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(target))
        return real(target, suffix)

    monkeypatch.setattr(medins.atomic, "new_temp", new_temp)
    code, _out, err = run(capsys, "batch", str(EXAMPLE), "-p", "suqian-2007", "-o", str(tmp_path / "out.csv"),
                          "--rejects", str(locked / "bad.csv"), "--lang", "en")
    assert code == 2 and "permissiondenied" in err and "Traceback" not in err, err
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == "earlier run\n"
    assert _names(locked) == [] and not [n for n in _names(tmp_path) if n.startswith(".")]


def test_a_failed_rename_of_the_settlements_is_an_output_error(tmp_path, monkeypatch, capsys) -> None:
    """Even the last rename failing (the folder changed under the run), after the rejects were renamed into
    place, is exit 2 with a message and nothing replaced: the earlier rejects are put back."""
    _earlier(tmp_path)
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == "out.csv":
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(medins.atomic.os, "replace", replace)
    code, _out, err = run(capsys, "batch", str(EXAMPLE), "-p", "suqian-2007", "-o", str(tmp_path / "out.csv"),
                          "--lang", "en")
    assert code == 2 and "Input/outputerror" in err and "Traceback" not in err, err
    assert _unchanged(tmp_path)
    (tmp_path / "out.rejects.csv").unlink()  # a first run: the new rejects are removed again
    code, _out, err = run(capsys, "batch", str(EXAMPLE), "-p", "suqian-2007", "-o", str(tmp_path / "out.csv"))
    assert code == 2 and _names(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("case", ["rejects is the output", "output is the claims file", "rejects is the claims file",
                                  "output is a folder", "rejects format unknown"])
def test_outputs_that_would_destroy_a_file_are_refused_before_reading(tmp_path, capsys, case) -> None:
    """-o and --rejects naming one file (the rejects would be renamed over the settlements), an output that is
    the claims file itself, a folder, or a rejects name of no known format: exit 2, every file as it was."""
    claims = tmp_path / "claims.csv"
    claims.write_bytes(EXAMPLE.read_bytes())
    out, rejects = {
        "rejects is the output": (tmp_path / "out.csv", tmp_path / "out.csv"),
        "output is the claims file": (claims, tmp_path / "r.csv"),
        "rejects is the claims file": (tmp_path / "out.csv", claims),
        "output is a folder": (tmp_path / "folder", tmp_path / "r.csv"),
        "rejects format unknown": (tmp_path / "out.csv", tmp_path / "r.txt2"),
    }[case]
    if case == "output is a folder":
        out.mkdir()
        args = ["--format", "csv"]
    else:
        args = []
    code, _out, err = run(capsys, "batch", str(claims), "-p", "suqian-2007", "-o", str(out), "--rejects", str(rejects),
                          "--lang", "en", *args)
    assert code == 2 and "Traceback" not in err, err
    assert claims.read_bytes() == EXAMPLE.read_bytes()
    assert sorted(n for n in _names(tmp_path)) == sorted(["claims.csv", *(["folder"] if "folder" in case else [])])


def test_an_error_ends_the_workers_at_once_rather_than_waiting_for_their_tasks() -> None:
    """Leaving ``workers_for`` with an error (or a signal) kills workers busy with a long task: the run stops
    in seconds, not when the partition in flight would have been settled."""
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), medins.partitioned.workers_for(2) as pool:
        pool.submit(time.sleep, 60)
        pids = list(pool._processes)
        raise KeyboardInterrupt
    assert time.monotonic() - started < 30 and _gone(pids, 5) == []
