"""Start-up cost of the CLI, as a ratio to importing the libraries it cannot avoid.

    python benchmarks/cli.py [--runs 15]

Prints the median wall time of interleaved runs of
  * ``medins calc examples/bill.json --policy suqian-2007.yaml`` against ``python -c "import typer, rich, polars"``
    (target ≤ 1.3×), and
  * ``medins --help`` against ``python -c "import typer, rich"`` (target ≤ 2×: heavy imports are lazy).
Interleaving (A, B, A, B …) keeps machine noise from favouring either side.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def compare(name: str, ours: list[str], floor: list[str], runs: int, target: float) -> None:
    a, b = [], []
    _time(ours), _time(floor)  # warm the file cache
    for _ in range(runs):
        a.append(_time(ours))
        b.append(_time(floor))
    ma, mb = statistics.median(a), statistics.median(b)
    verdict = "ok" if ma / mb <= target else "ABOVE TARGET"
    print(f"{name:<28} {ma * 1000:7.0f} ms   floor {mb * 1000:7.0f} ms   ratio {ma / mb:5.2f}×  "
          f"(target ≤ {target}×) {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    medins = [PY, "-m", "medins"]
    compare("medins calc", [*medins, "calc", "examples/bill.json", "--policy", "suqian-2007.yaml"],
            [PY, "-c", "import typer, rich, polars"], args.runs, 1.3)
    compare("medins --help", [*medins, "--help"], [PY, "-c", "import typer, rich"], args.runs, 2.0)


if __name__ == "__main__":
    main()
