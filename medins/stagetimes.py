"""Wall and CPU seconds per named stage of a run, recorded only when ``MEDINS_STAGE_TIMES=path`` is set.

Why: ``benchmarks/batch.py`` prints where ``medins batch`` spends its time (read/validate, each engine
stage, write) beside the whole run's figures, in the same interleaved run — without a profiler's overhead
and without a second code path. Call sites are single ``with stage("name"):`` lines at the stage
boundaries of ``medins/batch.py``, ``medins/partitioned.py`` and ``medins/engine/settle.py``.

Zero cost otherwise: without the variable, :func:`stage` returns one shared do-nothing context manager
(an environment lookup, no clock read, no file). With it, each stage appends one line
``pid<TAB>name<TAB>wall<TAB>cpu`` to the file; worker processes (``--jobs N``) inherit the variable and
append their own lines (single short appends: whole lines, never interleaved). CPU is the process's
(all its threads: Polars works on several), so a stage's CPU may exceed its wall time.
"""

from __future__ import annotations

import os
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
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()}\t{self.name}\t{wall:.6f}\t{cpu:.6f}\n")


def stage(name: str) -> AbstractContextManager:
    """``with stage("engine.benefits"): …`` — recorded when ``MEDINS_STAGE_TIMES`` names a file."""
    path = os.environ.get(ENV)
    return _Timed(name, path) if path else _OFF


class StageTotal(NamedTuple):
    """One stage's figures summed over its calls and processes."""

    name: str
    wall: float
    cpu: float
    calls: int
    processes: int


def totals(path: Path | str) -> list[StageTotal]:
    """The stages recorded in ``path``, summed by name, in the order each was first recorded."""
    return summarise(Path(path).read_text(encoding="utf-8").splitlines())


def summarise(lines: Iterable[str]) -> list[StageTotal]:
    """Sum ``pid<TAB>name<TAB>wall<TAB>cpu`` lines by name (first-seen order); malformed lines are skipped."""
    walls: dict[str, float] = {}
    cpus: dict[str, float] = {}
    calls: dict[str, int] = {}
    pids: dict[str, set[str]] = {}
    for line in lines:
        fields = line.split("\t")
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
    return [StageTotal(n, walls[n], cpus[n], calls[n], len(pids[n])) for n in walls]
