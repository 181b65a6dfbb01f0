"""``medins batch --engine spark`` beside the local batch, on the same generated claims.

    python benchmarks/spark.py [--rows 1000000] [--master local[2]] [--runs 1] [--keep DIR]

Generates claims with ``benchmarks/batch.py``'s generator (fixed seed), then runs, interleaved and each
in a fresh process,

* ``medins batch CLAIMS --policy suqian-2007 -o local.csv`` (the local engine, its worker processes)
* ``medins batch CLAIMS --policy suqian-2007 -o spark.csv --engine spark --master MASTER``
* Spark's fixed cost: a session on MASTER and one trivial job (JVM start, Python workers)

and prints the median wall time and peak RSS (all processes, the JVM included) of each, and checks that
both runs settled and rejected the same number of rows. Why the fixed cost is measured apart: on one
machine Spark pays it before a single claim is read, and the Arrow transfer between the JVM and the
Python workers on top; it pays off only when there are more cores (executors) than one machine has.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/batch.py: the same claims, the same measuring
from batch import generate, run

STARTUP = """
import sys
from medins.spark import session
spark = session(sys.argv[1])
spark.range(1000).count()
spark.stop()
"""


def lines(folder: Path) -> int:
    """Data rows of a CSV file, or of a folder of CSV part files."""
    files = sorted(folder.glob("part-*.csv")) if folder.is_dir() else [folder]
    return sum(sum(1 for _ in f.open("rb")) - 1 for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the claims and outputs in this folder and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / f"claims-{args.rows}.csv"
        if not src.exists():
            t = time.perf_counter()
            generate(src, args.rows, max(1, args.rows // 5))
            print(f"generated {src} ({src.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
        batch = [sys.executable, "-m", "medins", "batch", str(src), "--policy", "suqian-2007"]
        commands = {
            "local batch": [*batch, "-o", str(folder / "local.csv")],
            f"spark {args.master}": [*batch, "-o", str(folder / "spark.csv"), "--engine", "spark",
                                     "--master", args.master],
            "spark fixed cost": [sys.executable, "-c", STARTUP, args.master],
        }
        for label, cmd in commands.items():
            print(f"{label}: {shlex.join(cmd)}")
        walls: dict[str, list[float]] = {label: [] for label in commands}
        rss: dict[str, float] = dict.fromkeys(commands, 0.0)
        for _ in range(args.runs):
            for label, cmd in commands.items():
                wall, _peak, total = run(cmd)
                walls[label].append(wall)
                rss[label] = max(rss[label], total)
        print(f"rows {args.rows:,}  runs {args.runs}  (medians; each run in a fresh process)")
        for label in commands:
            print(f"{label:<20} {statistics.median(walls[label]):8.2f} s   all processes {rss[label]:7.0f} MiB")
        local, spark = lines(folder / "local.csv"), lines(folder / "spark.csv")
        same = "same" if local == spark else "DIFFERENT"
        print(f"settled rows   local {local:,}   spark {spark:,}   ({same})")


if __name__ == "__main__":
    main()
