"""Batch throughput and memory against the floor of reading and writing the same CSV with Polars, and against
two hand-written peers, in one interleaved run.

    python benchmarks/batch.py [--rows 1000000] [--persons N] [--runs 3] [--keep DIR] [--extra-args "..."]
                               [--policy suqian-2007] [--policy cq-yubei-2023-resident] [--no-peers]
    python benchmarks/batch.py --check [--rows N] [--keep DIR]   # peers vs medins, field by field; no timing

Generates Suqian claims from a fixed seed — inpatient stays, 门诊大病 (dialysis) and outpatient bills
of many persons over 2008–2009, with enrolment, registration and claim dates, designated hospitals,
class-B and out-of-catalogue amounts and a few malformed rows, so every stage works (waiting periods,
deadlines, deductibles, cumulative bands, the yearly cap, the account, rejects). Then runs, interleaved
and each in a fresh process,

* ``medins batch CLAIMS --policy suqian-2007 -o OUT.csv`` (the whole policy, exit 1: some rows rejected),
  with ``MEDINS_STAGE_TIMES`` set so it records its stages (``medins/stagetimes.py``)
* the floor: ``pl.read_csv(CLAIMS, infer_schema=False).write_csv(FLOOR.csv)``
* the I/O bound (``BOUND``): Python with medins' imports, the same read, and a Polars write of a table
  shaped like medins' output — what any engine in this stack pays before validating or settling a claim
* the peers: ``peer_polars.py`` (vectorised Polars) and ``peer_duckdb.py`` (DuckDB SQL, the ``bench`` extra;
  left out when duckdb is not installed), the Suqian rules written by hand for this one policy

and prints for each the median wall time, its ratio to the floor, CPU seconds (user + sys of all its
processes, and its ratio to the floor's: steadier than wall time on a shared machine), the largest
process's peak RSS (``RUSAGE_CHILDREN`` of a wrapper process: worker processes included) and the peak of
all its processes' RSS at once (sampled from /proc); medins' ratio (target ≤ 2.0×, peak RSS ≤ 1 GiB at
1,000,000 rows, ≤ 2 GiB at 10,000,000); medins' stages (start-up, policy, read/validate, each engine stage,
output table, write, finish, summary; "other" is the wall time no main-thread stage covers); and how many
claims each peer settles differently from medins (0 required: ``peer_common.diff`` compares every field of
every claim and reject).
``--policy cq-yubei-2023-resident`` adds medins under a three-payer chain (basic fund, large-expense and
tilted assistance) on claims generated for it, and its time as a ratio to the Suqian figure (target ≤ 1.2×).
The exact commands are printed too.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

#: the peers (peer_common) and this checkout's medins, which every measured command runs too (PYTHONPATH)
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

SEED = 20071
HOSPITALS = ("宿迁市中医院", "珠江医院", "工人医院", "市人民医院", "省人民医院")


def generate(path: Path, rows: int, persons: int, seed: int = SEED, block: int = 1_000_000) -> None:
    """Write ``rows`` claims of ``persons`` persons to ``path`` (UTF-8 CSV), the same for the same seed."""
    rng = np.random.default_rng(seed)

    def day(offsets: np.ndarray) -> pl.Series:  # days after 2008-01-01
        return pl.Series(np.datetime64("2008-01-01") + offsets.astype("timedelta64[D]")).cast(pl.Date)

    enrolment_day = rng.integers(-200, 200, persons)  # days after 2008-01-01 each person paid
    with path.open("wb") as out:
        for first in range(0, rows, block):
            n = min(block, rows - first)
            kind = rng.choice(np.array(["住院", "门诊", "门诊大病"]), n, p=[0.6, 0.3, 0.1])
            person = rng.integers(0, persons, n)
            admit = rng.integers(0, 731, n)
            stay = np.where(kind == "住院", rng.integers(1, 30, n), 0)
            inpatient = kind != "门诊"
            total = np.where(inpatient, rng.integers(2_000, 6_000_000, n), rng.integers(500, 30_000, n))
            self_pay = (total * rng.integers(0, 11, n)) // 100
            class_b = ((total - self_pay) * rng.integers(0, 26, n)) // 100
            frame = pl.DataFrame({
                "结算单号": pl.Series([f"C{first + i}" for i in range(n)]),
                "个人编号": pl.Series(person).cast(pl.String).str.zfill(7).str.replace(r"^", "P"),
                "医疗类别": kind,
                "入院日期": day(admit),
                "出院日期": day(admit + stay),
                "医院名称": np.array(HOSPITALS)[rng.integers(0, len(HOSPITALS), n)],
                "参保缴费日期": day(enrolment_day[person]),
                "是否备案": rng.choice(np.array(["是", "否", ""]), n, p=[0.9, 0.02, 0.08]),
                "申报日期": day(admit + stay + rng.integers(0, 20, n)),
                "医疗费总额": pl.Series(total), "全自费金额": pl.Series(self_pay), "乙类金额": pl.Series(class_b),
                "诊断名称": np.where(kind == "门诊大病", "dialysis", ""),
            }).with_columns(
                pl.col("入院日期", "出院日期", "参保缴费日期", "申报日期").cast(pl.String),
                *(pl.format("{}.{}", pl.col(c) // 100, (pl.col(c) % 100).cast(pl.String).str.zfill(2)).alias(c)
                  for c in ("医疗费总额", "全自费金额", "乙类金额")),
            )
            bad = rng.random(n) < 0.0001  # about one row in ten thousand is malformed
            frame = frame.with_columns(pl.when(pl.Series(bad)).then(pl.lit("2009-02-30")).otherwise(pl.col("入院日期"))
                                       .alias("入院日期"))
            frame.write_csv(out, include_header=first == 0)


FLOOR = "import polars as pl, sys; pl.read_csv(sys.argv[1], infer_schema=False).write_csv(sys.argv[2])"
#: What no engine in this stack avoids: starting Python with medins' imports, reading the claims, and
#: writing a table shaped like the settlement (medins' own output, typed as medins writes it: 14
#: Decimal(18, 2) money columns and 6 text columns). Loading that table is timed apart and subtracted.
BOUND = """
import sys, time
import medins.cli, medins.commands.batch, medins.batch, medins.partitioned, medins.engine.settle
import polars as pl
from medins.engine.settle import MONEY_OUTPUTS
pl.read_csv(sys.argv[1], infer_schema=False)
start = time.perf_counter()
out = pl.read_csv(sys.argv[2], infer_schema=False).with_columns(
    pl.col(MONEY_OUTPUTS).str.to_decimal(scale=2).cast(pl.Decimal(18, 2)))
open(sys.argv[4], "w").write(str(time.perf_counter() - start))
out.write_csv(sys.argv[3])
"""
_WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(u.ru_maxrss, u.ru_utime + u.ru_stime)")
#: The policies ``--policy`` knows how to generate claims for (each claim file made from the same seed).
POLICIES = ("suqian-2007", "cq-yubei-2023-resident")


class Measured(NamedTuple):
    """One run of one command: wall seconds, CPU seconds (user + sys of every process it started), the largest
    single process's peak RSS and the peak of all its processes' RSS summed (both MiB)."""

    wall: float
    cpu: float
    rss: float
    rss_all: float


def _tree_rss(root: int) -> int:
    """Bytes resident in process ``root`` and all its descendants now (Linux /proc; 0 elsewhere)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return sum(rss.get(pid, 0) for pid in tree)


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` in a fresh wrapper process and measure it.

    The wrapper's ``RUSAGE_CHILDREN`` covers every descendant that was waited for — ``medins batch --jobs N``'s
    worker processes included (the pool joins them, then the wrapper waits for medins): its ``ru_maxrss`` is the
    largest single process, its CPU the sum of all. The sum of all processes' RSS at once is sampled from /proc
    every 100 ms.
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, *cmd], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": _pythonpath(), **(env or {})})
    peak_sum = 0
    while proc.poll() is None:
        peak_sum = max(peak_sum, _tree_rss(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    out = (proc.stdout.read() if proc.stdout else "").split()
    maxrss, cpu = (int(out[0]), float(out[1])) if len(out) == 2 else (0, 0.0)
    return Measured(wall, cpu, maxrss / 1024, peak_sum / 2**20)


def _pythonpath() -> str:
    """This checkout first, so ``python -m medins`` measures the code beside this script wherever it is run from."""
    root = str(Path(__file__).resolve().parents[1])
    rest = os.environ.get("PYTHONPATH")
    return root + (os.pathsep + rest if rest else "")


def run(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, the largest single process's peak RSS and the peak of all its processes' RSS summed (MiB)."""
    m = measure(cmd)
    return m.wall, m.rss, m.rss_all


def generate_for(policy: str, path: Path, rows: int, persons: int) -> None:
    """Claims for ``policy``: the Suqian claims of :func:`generate`, or for ``cq-yubei-2023-resident`` (basic fund,
    large-expense assistance and tilted assistance: a three-payer chain) the same claims as inpatient stays at a
    level-2 hospital, about half of them of persons of a family at the dibao margin (救助类别 低保边缘家庭成员)."""
    if policy == "suqian-2007":
        generate(path, rows, persons)
        return
    suqian = path.with_name(path.stem + ".suqian.csv")
    generate(suqian, rows, persons)
    frame = pl.read_csv(suqian, infer_schema=False)
    person = frame["个人编号"].str.slice(1).cast(pl.Int64)
    assisted = pl.Series(np.random.default_rng(SEED + 1).random(persons) < 0.5).gather(person)
    frame.select("结算单号", "个人编号", "入院日期", "出院日期", "医疗费总额", "全自费金额", "乙类金额").with_columns(
        医疗类别=pl.lit("住院"), 医院等级=pl.lit("2"), 人员类别=pl.lit("resident"),
        救助类别=pl.when(assisted).then(pl.lit("低保边缘家庭成员")).otherwise(pl.lit("")),
    ).write_csv(path)
    suqian.unlink()


def _stage_lines(files: list[Path], total: float | None = None) -> list[str]:
    """Per stage, the median over runs of its wall and CPU seconds (``medins.stagetimes`` records)."""
    from medins.stagetimes import totals

    per_run = [totals(f) for f in files if f.exists()]
    if not per_run:
        return ["  (no stage times recorded)"]
    names = list(dict.fromkeys(t.name for run_totals in per_run for t in run_totals))
    lines = []
    for name in names:
        found = [t for run_totals in per_run for t in run_totals if t.name == name]
        wall = statistics.median(t.wall for t in found)
        cpu = statistics.median(t.cpu for t in found)
        calls, procs = max(t.calls for t in found), max(t.processes for t in found)
        beside = ", on a thread beside the others" if any(t.beside for t in found) else ""
        lines.append(f"  {name:<22} {wall:7.2f} s wall  {cpu:7.2f} s CPU   ({calls} call{'s' if calls > 1 else ''}, "
                     f"{procs} process{'es' if procs > 1 else ''}{beside})")
    if total is not None and all(t.processes == 1 for run_totals in per_run for t in run_totals):
        # stages timed on a thread beside the main one overlap its stages: the main thread's stages add up
        staged = statistics.median(sum(t.wall for t in run_totals if not t.beside) for run_totals in per_run)
        lines.append(f"  {'other':<22} {total - staged:7.2f} s wall  (what no stage covers: the main thread "
                     "between stages, the interpreter's exit)")
    return lines


def _have_duckdb() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def check(folder: Path, claims: Path, medins_out: Path, *, run_medins: bool = True) -> int:
    """Settle ``claims`` with medins and both peers and print, per peer, how many claims differ (0 required)."""
    from peer_common import diff

    if run_medins:
        subprocess.run([sys.executable, "-m", "medins", "batch", str(claims), "--policy", "suqian-2007",
                        "-o", str(medins_out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": _pythonpath()})
    worst = 0
    for name, script in PEERS:
        if script == "peer_duckdb.py" and not _have_duckdb():
            print(f"{name:<14} skipped: duckdb is not installed (pip install -e '.[bench]')")
            continue
        out = folder / f"{script.removesuffix('.py')}.csv"
        if run_medins or not out.exists():
            subprocess.run([sys.executable, str(HERE / script), str(claims), str(out)], check=False)
        differing, fields = diff(medins_out, out)
        detail = ", ".join(f"{k} {v}" for k, v in fields.items() if v)
        print(f"{name:<14} {differing} claims differ from medins" + (f" ({detail})" if detail else ""))
        worst = max(worst, differing)
    return worst


HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = (("polars peer", "peer_polars.py"), ("duckdb peer", "peer_duckdb.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, help="default: rows / 5")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the claims and outputs in this folder and keep them")
    parser.add_argument("--extra-args", default="", help='more medins batch options, e.g. "--partitions 1"')
    parser.add_argument("--policy", action="append", choices=POLICIES,
                        help="benchmark medins under this policy too (repeatable; default suqian-2007); the "
                             "peers settle Suqian claims only")
    parser.add_argument("--check", action="store_true",
                        help="no timing: settle the Suqian claims with medins and both peers once and print how "
                             "many claims each peer settles differently (exit 1 unless all 0)")
    parser.add_argument("--no-peers", action="store_true", help="leave the hand-written peers out of the run")
    args = parser.parse_args()
    policies = list(dict.fromkeys(args.policy or ["suqian-2007"]))
    persons = args.persons or max(1, args.rows // 5)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        sources = {}
        for policy in policies if not args.check else ["suqian-2007"]:
            name = f"claims-{args.rows}.csv" if policy == "suqian-2007" else f"claims-{policy}-{args.rows}.csv"
            src = sources[policy] = folder / name
            if not src.exists():
                t = time.perf_counter()
                generate_for(policy, src, args.rows, persons)
                print(f"generated {src} ({src.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
        if args.check:
            sys.exit(1 if check(folder, sources["suqian-2007"], folder / "settled.csv") else 0)

        def settled(policy: str) -> Path:
            return folder / ("settled.csv" if policy == "suqian-2007" else f"settled-{policy}.csv")

        commands: list[tuple[str, list[str], Path | None]] = []  # (label, command, stage-times file)
        for policy in policies:
            label = "medins batch" if policy == policies[0] else f"medins batch ({policy})"
            cmd = [sys.executable, "-m", "medins", "batch", str(sources[policy]), "--policy", policy,
                   "-o", str(settled(policy)), *shlex.split(args.extra_args)]
            commands.append((label, cmd, folder / f"stages-{policy}.tsv"))
        first = sources[policies[0]]
        excluded = folder / "bound-load-seconds.txt"
        commands.append(("polars floor", [sys.executable, "-c", FLOOR, str(first), str(folder / "floor.csv")], None))
        commands.append(("I/O bound", [sys.executable, "-c", BOUND, str(first), str(settled(policies[0])),
                                       str(folder / "bound.csv"), str(excluded)], None))
        peers = [] if args.no_peers or "suqian-2007" not in sources else [
            (name, script) for name, script in PEERS if script != "peer_duckdb.py" or _have_duckdb()]
        for name, script in peers:
            commands.append((name, [sys.executable, str(HERE / script), str(sources["suqian-2007"]),
                                    str(folder / f"{script.removesuffix('.py')}.csv")], None))
        for label, cmd, _stages in commands:
            print(f"{label + ':':<15}", shlex.join(cmd))
        if not args.no_peers and "suqian-2007" not in sources:
            print("peers:          left out (they settle suqian-2007 claims only)")
        elif not args.no_peers and not _have_duckdb():
            print("duckdb peer:    left out (duckdb is not installed: pip install '.[bench]')")
        results: dict[str, list[Measured]] = {label: [] for label, _cmd, _stages in commands}
        stage_files: dict[str, list[Path]] = {label: [] for label, _cmd, stages in commands if stages}
        for n in range(args.runs):
            for label, cmd, stages in commands:
                env = None
                if stages is not None:
                    stages = stages.with_name(f"{stages.stem}-{n}.tsv")
                    stages.unlink(missing_ok=True)
                    stage_files[label].append(stages)
                    env = {"MEDINS_STAGE_TIMES": str(stages)}
                m = measure(cmd, env)
                if label == "I/O bound":  # loading medins' output to write it again is not the bound's work
                    m = m._replace(wall=m.wall - float(excluded.read_text() or 0))
                results[label].append(m)
        med = {label: Measured(*(statistics.median(getattr(m, f) for m in runs) for f in ("wall", "cpu")),
                               max(m.rss for m in runs), max(m.rss_all for m in runs))
               for label, runs in results.items()}
        floor, floor_cpu = med["polars floor"].wall, max(med["polars floor"].cpu, 1e-9)
        target = 1024 if args.rows <= 1_000_000 else 2048
        print(f"rows {args.rows:,}  runs {args.runs}  (medians, interleaved; each run in a fresh process; CPU = user + "
              "sys of all its processes; RSS: largest process, and all processes at once)")
        width = max(14, *(len(label) for label in med))
        for label, m in med.items():
            print(f"{label:<{width}} {m.wall:7.2f} s  {m.wall / floor:5.2f}× floor  CPU {m.cpu:6.2f} s "
                  f"({m.cpu / floor_cpu:5.2f}×)  "
                  f"peak RSS {m.rss:6.0f} MiB, all processes {m.rss_all:6.0f} MiB")
        main_label = commands[0][0]
        print(f"ratio          {med[main_label].wall / floor:7.2f}×  ({main_label} / polars floor; target ≤ 2.0×; "
              f"peak RSS target ≤ {target} MiB)")
        print(f"I/O bound      {med['I/O bound'].wall:7.2f} s = {med['I/O bound'].wall / floor:.2f}× the floor: medins' "
              "imports, reading the claims and writing its output, with no validation and no settlement")
        if "suqian-2007" in policies:
            base = med["medins batch" if policies[0] == "suqian-2007" else "medins batch (suqian-2007)"].wall
            for policy in policies:
                if policy != "suqian-2007":
                    label = "medins batch" if policy == policies[0] else f"medins batch ({policy})"
                    print(f"{policy}: {med[label].wall / base:.2f}× the suqian-2007 figure (target ≤ 1.2×)")
        for label, files in stage_files.items():
            print(f"stages of {label} (MEDINS_STAGE_TIMES; medians over runs; wall and CPU summed over processes):")
            for line in _stage_lines(files, med[label].wall):
                print(line)
        if peers:
            print("agreement with medins (field by field, every claim and reject):")
            check(folder, sources["suqian-2007"], settled("suqian-2007"), run_medins=False)


if __name__ == "__main__":
    main()
