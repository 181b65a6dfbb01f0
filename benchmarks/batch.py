"""Batch throughput against the floor of reading and writing the same CSV with Polars.

    python benchmarks/batch.py [--rows 1000000] [--runs 3] [--persons 200000]

Generates Suqian claims from a fixed seed (inpatient stays, 门诊大病 and outpatient bills of many
persons over two years, so the per-person cap, deductibles and account all work), then runs,
interleaved, ``medins batch`` (in a subprocess, full policy) and the floor — ``pl.read_csv`` +
``write_csv`` of the same file in a subprocess — and prints the median wall times, their ratio
(target ≤ 1.5×) and the peak RSS of each (target ≤ 1 GiB at 1,000,000 rows).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZONES = ("in_district", "in_city", "out_of_city")


def generate(path: Path, rows: int, persons: int, seed: int = 20071) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write("claim_id,person_id,visit_type,admit_date,discharge_date,hospital_zone,preapproved,total,self_pay,"
                  "class_b,diagnosis\n")
        for i in range(rows):
            kind = rnd.choices(("inpatient", "outpatient", "outpatient_special"), (6, 3, 1))[0]
            year = rnd.choice((2008, 2009))
            month, day = rnd.randint(1, 12), rnd.randint(1, 28)
            total = rnd.randint(2_000, 6_000_000) if kind != "outpatient" else rnd.randint(500, 30_000)
            self_pay = rnd.randint(0, total // 10)
            class_b = rnd.randint(0, (total - self_pay) // 4)
            diagnosis = "dialysis" if kind == "outpatient_special" else ""
            out.write(f"C{i},P{rnd.randrange(persons)},{kind},{year}-{month:02d}-{day:02d},{year}-{month:02d}-{day:02d},"
                      f"{rnd.choice(ZONES)},true,{total / 100:.2f},{self_pay / 100:.2f},{class_b / 100:.2f},{diagnosis}\n")


FLOOR = "import polars as pl, sys; pl.read_csv(sys.argv[1], infer_schema=False).write_csv(sys.argv[2])"


_WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and that command's own peak RSS in MiB (measured by a fresh wrapper process)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    return wall, int(out.stdout.strip() or 0) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "claims.csv"
        generate(src, args.rows, args.persons)
        ours_cmd = [sys.executable, "-m", "medins", "batch", str(src), "--policy", "suqian-2007",
                    "-o", str(Path(tmp) / "out.csv")]
        floor_cmd = [sys.executable, "-c", FLOOR, str(src), str(Path(tmp) / "floor.csv")]
        ours, floor, rss_ours, rss_floor = [], [], 0.0, 0.0
        for _ in range(args.runs):
            wall, rss = run(ours_cmd)
            ours.append(wall)
            rss_ours = max(rss_ours, rss)
            wall, rss = run(floor_cmd)
            floor.append(wall)
            rss_floor = max(rss_floor, rss)
        mo, mf = statistics.median(ours), statistics.median(floor)
        print(f"rows {args.rows:,}  persons {args.persons:,}  runs {args.runs}")
        print(f"medins batch   {mo:7.2f} s   peak RSS {rss_ours:7.0f} MiB  (target ≤ 1024 MiB at 1,000,000 rows)")
        print(f"polars floor   {mf:7.2f} s   peak RSS {rss_floor:7.0f} MiB")
        print(f"ratio          {mo / mf:7.2f}×  (target ≤ 1.5×)")


if __name__ == "__main__":
    main()
