"""Start-up cost of the CLI, as a ratio to importing the libraries it cannot avoid.

    python benchmarks/cli.py [--runs 15]

Prints the median wall time (and the median CPU time, user + sys, of the child) of interleaved runs of
  * ``medins calc examples/bill.json --policy suqian-2007.yaml`` against ``python -c "import typer, rich, polars"``
    (target ≤ 1.3×), the policy taken from the compiled-policy cache (filled by the warm-up run, in a
    temporary ``MEDINS_CACHE_DIR``, so the user's cache is neither used nor touched);
  * the same ``calc`` with the cache off (``MEDINS_NO_CACHE=1``): what the first run of a policy costs;
  * ``medins --help`` against ``python -c "import typer, rich"`` (target ≤ 2×: heavy imports are lazy).
Interleaving (A, B, A, B …) keeps machine noise from favouring either side.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _time(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(name: str, ours: list[str], floor: list[str], runs: int, target: float, env: dict[str, str]) -> None:
    a, b = [], []
    _time(ours, env), _time(floor, env)  # warm the file cache (and the policy cache)
    for _ in range(runs):
        a.append(_time(ours, env))
        b.append(_time(floor, env))
    wa, wb = statistics.median(w for w, _ in a), statistics.median(w for w, _ in b)
    ca, cb = statistics.median(c for _, c in a), statistics.median(c for _, c in b)
    verdict = "ok" if wa / wb <= target else "ABOVE TARGET"
    print(f"{name:<28} {wa * 1000:7.0f} ms   floor {wb * 1000:7.0f} ms   ratio {wa / wb:5.2f}×  "
          f"(target ≤ {target}×) {verdict}   cpu {ca * 1000:5.0f} / {cb * 1000:5.0f} ms = {ca / cb:4.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # Bytecode first: otherwise the first run of each side pays for compiling (and a tree never run before
    # would charge it to whichever command imports the module first).
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "medins")], cwd=ROOT, stdout=subprocess.DEVNULL,
                   check=False)
    medins = [PY, "-m", "medins"]
    calc = [*medins, "calc", "examples/bill.json", "--policy", "suqian-2007.yaml"]
    with tempfile.TemporaryDirectory(prefix="medins-bench-cache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "MEDINS_NO_CACHE"}
        env["MEDINS_CACHE_DIR"] = cache
        compare("medins calc", calc, [PY, "-c", "import typer, rich, polars"], args.runs, 1.3, env)
        compare("medins calc (cache off)", calc, [PY, "-c", "import typer, rich, polars"], args.runs, 1.3,
                {**env, "MEDINS_NO_CACHE": "1"})
        compare("medins --help", [*medins, "--help"], [PY, "-c", "import typer, rich"], args.runs, 2.0, env)


if __name__ == "__main__":
    main()
