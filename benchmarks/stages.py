"""CPU seconds of each stage of ``medins.engine.settle.settle`` on a claims file, and the whole settle.

    python benchmarks/stages.py CLAIMS.csv [--policy suqian-2007] [--runs 3] [--rows N]

Reads CLAIMS once (as ``medins batch`` would), settles it ``--runs`` times after a warm-up on 1,000 claims,
and prints per stage the median CPU seconds (``time.process_time``: all threads of this process) and wall
seconds. Stages are timed by wrapping the stage functions settle calls (nothing in medins changes); a
stage nested in another (``clamped_cumsum`` in ``settle_benefits``) is counted in both. For a 250,000-claim
partition of the 1,000,000-row file, take ``--rows 250000``. Single-threaded figures, steadier on a
shared machine: ``POLARS_MAX_THREADS=1 python benchmarks/stages.py …``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import medins.engine.account as account
import medins.engine.benefits as benefits
import medins.engine.rules as rules
import medins.engine.settle as settle_module
from medins.batch import BATCH_KEEP
from medins.claims.aliases import with_values
from medins.claims.readers import read_claims
from medins.policy.checks import declared_values
from medins.policy.loader import load_policy

#: (module, function) pairs timed; settle.py imports its stages by name, so they are wrapped there (``check_history``
#: builds its part of the rules stage's query: only that building is timed, the query runs in ``select_rules``).
STAGES = [(settle_module, name) for name in (
    "claim_order", "add_derived", "split_scope", "check_admissibility", "select_rules",
    "settle_benefits", "settle_account", "_totals")] + [(rules, "check_history")] + [(benefits, name) for name in (
        "_deductible", "_basic_bands", "band_parts", "_cap", "clamped_cumsum")] + [(account, "clamped_cumsum")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("claims")
    parser.add_argument("--policy", default="suqian-2007")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, help="settle only the first N claims")
    args = parser.parse_args()
    policy = load_policy(args.policy)
    claims = read_claims(args.claims, mapping=with_values(None, declared_values(policy.model))).claims
    if args.rows:
        claims = claims.head(args.rows)
    times: dict[str, list[tuple[float, float]]] = defaultdict(list)
    current: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])

    def timed(name, function):
        def wrapper(*a, **k):
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                current[name][0] += time.process_time() - cpu
                current[name][1] += time.perf_counter() - wall
        return wrapper

    for module, name in STAGES:
        setattr(module, name, timed(name, getattr(module, name)))
    settle_module.settle(policy, claims.head(1000), keep=BATCH_KEEP)
    for _ in range(args.runs):
        current.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        settle_module.settle(policy, claims, keep=BATCH_KEEP)
        times["settle (all)"].append((time.process_time() - cpu, time.perf_counter() - wall))
        for name, (c, w) in current.items():
            times[name].append((c, w))
    print(f"{claims.height} claims, policy {args.policy}, {args.runs} runs (median)")
    print(f"{'stage':22s} {'cpu s':>8s} {'wall s':>8s}")
    for name, figures in sorted(times.items(), key=lambda kv: -statistics.median(c for c, _w in kv[1])):
        print(f"{name:22s} {statistics.median(c for c, _w in figures):8.3f} "
              f"{statistics.median(w for _c, w in figures):8.3f}")


if __name__ == "__main__":
    main()
