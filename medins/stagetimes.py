"""Wall and CPU seconds per named stage of a run, recorded only when ``MEDINS_STAGE_TIMES=path`` is set.

Why: ``benchmarks/batch.py`` prints where ``medins batch`` spends its time (read/validate, each engine
stage, write) beside the whole run's figures, in the same interleaved run — without a profiler's overhead
and without a second code path. Call sites are single ``with stage("name"):`` lines at the stage
boundaries of ``medins/commands/batch.py``, ``medins/batch.py``, ``medins/partitioned.py`` and
``medins/engine/settle.py``.

Stages cover the whole run, so that wall minus their sum is what no stage accounts for: ``start-up``
(the interpreter, imports and argument parsing, from the process's start: :func:`since_start`),
``policy`` (loading the policy), the read, engine and write stages (partitioned: ``partition load``,
putting a partition's pieces together for the engine, and ``output table``, finishing it for the write),
``finish`` (the rejects, the summary table, renaming the outputs into place) and ``summary`` (printing it). A
stage timed on a thread beside the main one (the partitioned batch's settling threads: ``partition load``, the
engine's stages and ``output table`` of two partitions at once) overlaps the main thread's stages; its line
carries a fifth field ``beside``, and it is left out of that sum: the main thread's ``engine`` stage, its wait
for those threads, covers them.

Zero cost otherwise: without the variable, :func:`stage` returns one shared do-nothing context manager
(an environment lookup, no clock read, no file). With it, each stage appends one line
``pid<TAB>name<TAB>wall<TAB>cpu`` to the file; worker processes (``--jobs N``) inherit the variable and
append their own lines (single short appends: whole lines, never interleaved). CPU is the process's
(all its threads: Polars works on several, and a stage timed beside another counts the other's CPU too), so a
stage's CPU may exceed its wall time; the ``engine`` stage's CPU is the settling threads' together.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import NamedTuple

ENV = "MEDINS_STAGE_TIMES"
_OFF = nullcontext()


class _Timed(AbstractContextManager):
    """Times one stage and appends it to ``path`` when it ends (also when it raises)."""

    __slots__ = ("cpu", "name", "path", "wall")

    def __init__(self, name: str, path: str) -> None:
        self.name, self.path = name, path

    def __enter__(self) -> _Timed:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        _record(self.path, self.name, time.perf_counter() - self.wall, time.process_time() - self.cpu)


def _record(path: str, name: str, wall: float, cpu: float) -> None:
    beside = "" if threading.current_thread() is threading.main_thread() else "\tbeside"
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()}\t{name}\t{wall:.6f}\t{cpu:.6f}{beside}\n")


def stage(name: str) -> AbstractContextManager:
    """``with stage("engine.benefits"): …`` — recorded when ``MEDINS_STAGE_TIMES`` names a file."""
    path = os.environ.get(ENV)
    return _Timed(name, path) if path else _OFF


def since_start(name: str) -> None:
    """Record ``name`` as a stage from the process's start until now (``start-up``: the interpreter, imports).

    The start is the kernel's (``/proc/self/stat``, Linux): where it cannot be read, nothing is recorded.
    """
    path = os.environ.get(ENV)
    if not path:
        return
    started = _process_age()
    if started is not None:
        _record(path, name, started, time.process_time())


def _process_age() -> float | None:
    """Seconds since this process started, from ``/proc`` (clock ticks since boot); None elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, AttributeError):
        return None
    return age if age >= 0 else None


class StageTotal(NamedTuple):
    """One stage's figures summed over its calls and processes; ``beside``: timed on a thread beside the
    main one, so overlapping the main thread's stages."""

    name: str
    wall: float
    cpu: float
    calls: int
    processes: int
    beside: bool = False


def totals(path: Path | str) -> list[StageTotal]:
    """The stages recorded in ``path``, summed by name, in the order each was first recorded."""
    return summarise(Path(path).read_text(encoding="utf-8").splitlines())


def summarise(lines: Iterable[str]) -> list[StageTotal]:
    """Sum ``pid<TAB>name<TAB>wall<TAB>cpu[<TAB>beside]`` lines by name (first-seen order); malformed lines are
    skipped."""
    walls: dict[str, float] = {}
    cpus: dict[str, float] = {}
    calls: dict[str, int] = {}
    pids: dict[str, set[str]] = {}
    beside: set[str] = set()
    for line in lines:
        fields = line.split("\t")
        if len(fields) == 5 and fields[4] == "beside":
            beside.add(fields[1])
            fields = fields[:4]
        if len(fields) != 4:
            continue
        pid, name, wall, cpu = fields
        try:
            w, c = float(wall), float(cpu)
        except ValueError:
            continue
        walls[name] = walls.get(name, 0.0) + w
        cpus[name] = cpus.get(name, 0.0) + c
        calls[name] = calls.get(name, 0) + 1
        pids.setdefault(name, set()).add(pid)
    return [StageTotal(n, walls[n], cpus[n], calls[n], len(pids[n]), n in beside) for n in walls]
