"""Batch throughput and memory against the floor of reading and writing the same CSV with Polars.

    python benchmarks/batch.py [--rows 1000000] [--persons N] [--runs 3] [--keep DIR] [--extra-args "..."]

Generates Suqian claims from a fixed seed — inpatient stays, 门诊大病 (dialysis) and outpatient bills
of many persons over 2008–2009, with enrolment, registration and claim dates, designated hospitals,
class-B and out-of-catalogue amounts and a few malformed rows, so every stage works (waiting periods,
deadlines, deductibles, cumulative bands, the yearly cap, the account, rejects). Then runs, interleaved
and each in a fresh process,

* ``medins batch CLAIMS --policy suqian-2007 -o OUT.csv`` (the whole policy, exit 1: some rows rejected)
* the floor: ``pl.read_csv(CLAIMS, infer_schema=False).write_csv(FLOOR.csv)``
* the I/O bound (``BOUND``): Python with medins' imports, the same read, and a Polars write of a table
  shaped like medins' output — what any engine in this stack pays before validating or settling a claim

and prints the median wall time of each, the ratio of medins to the floor (target ≤ 1.5×), the
bound's ratio (how low any engine could go), and each command's own peak RSS
(``resource.getrusage(RUSAGE_CHILDREN)`` of a wrapper process; target ≤ 1 GiB at 1,000,000 rows,
≤ 2 GiB at 10,000,000). The exact commands are printed too.
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

import numpy as np
import polars as pl

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
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


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


def run(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, the largest single process's peak RSS and the peak of all its processes' RSS summed
    (sampled every 100 ms: ``medins batch --jobs N`` settles in worker processes), both in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, *cmd], stdout=subprocess.PIPE, text=True)
    peak_sum = 0
    while proc.poll() is None:
        peak_sum = max(peak_sum, _tree_rss(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    return wall, int(out.strip() or 0) / 1024, peak_sum / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, help="default: rows / 5")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the claims and outputs in this folder and keep them")
    parser.add_argument("--extra-args", default="", help='more medins batch options, e.g. "--partitions 1"')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / f"claims-{args.rows}.csv"
        if not src.exists():
            t = time.perf_counter()
            generate(src, args.rows, args.persons or max(1, args.rows // 5))
            print(f"generated {src} ({src.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
        ours_cmd = [sys.executable, "-m", "medins", "batch", str(src), "--policy", "suqian-2007",
                    "-o", str(folder / "settled.csv"), *shlex.split(args.extra_args)]
        floor_cmd = [sys.executable, "-c", FLOOR, str(src), str(folder / "floor.csv")]
        print("medins:", shlex.join(ours_cmd))
        print("floor: ", shlex.join(floor_cmd))
        excluded = folder / "bound-load-seconds.txt"
        bound_cmd = [sys.executable, "-c", BOUND, str(src), str(folder / "settled.csv"), str(folder / "bound.csv"),
                     str(excluded)]
        ours, floor, bound, rss_ours, rss_floor, sum_ours, sum_floor = [], [], [], 0.0, 0.0, 0.0, 0.0
        for _ in range(args.runs):
            wall, rss, total = run(ours_cmd)
            ours.append(wall)
            rss_ours, sum_ours = max(rss_ours, rss), max(sum_ours, total)
            wall, rss, total = run(floor_cmd)
            floor.append(wall)
            rss_floor, sum_floor = max(rss_floor, rss), max(sum_floor, total)
            wall, _rss, _total = run(bound_cmd)
            bound.append(wall - float(excluded.read_text() or 0))
        mo, mf, mb = statistics.median(ours), statistics.median(floor), statistics.median(bound)
        target = 1024 if args.rows <= 1_000_000 else 2048
        print(f"rows {args.rows:,}  runs {args.runs}  (medians; each run in a fresh process)")
        print(f"medins batch   {mo:7.2f} s   peak RSS {rss_ours:7.0f} MiB, all processes {sum_ours:7.0f} MiB"
              f"  (target ≤ {target} MiB)")
        print(f"polars floor   {mf:7.2f} s   peak RSS {rss_floor:7.0f} MiB, all processes {sum_floor:7.0f} MiB")
        print(f"ratio          {mo / mf:7.2f}×  (target ≤ 1.5×)")
        print(f"I/O bound      {mb:7.2f} s = {mb / mf:.2f}× the floor: medins' imports, reading the claims and "
              "writing its output, with no validation and no settlement")


if __name__ == "__main__":
    main()
