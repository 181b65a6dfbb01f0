"""Audit against batch on the same claims: ``medins audit`` must cost at most 1.3× ``medins batch``.

    python benchmarks/audit.py [--rows 1000000] [--runs 3] [--keep DIR] [--batch-args "--partitions 1"]

Generates the Suqian claims of ``benchmarks/batch.py`` (fixed seed), settles them once with ``medins
batch`` and joins the settled amounts back as the recorded columns of an export (统筹基金支付, 起付线,
个人负担 …), with one claim in a thousand given a wrong 统筹基金支付 so the audit has differences to
explain. Then runs, interleaved and each in a fresh process, on that one export file:

* ``medins batch EXPORT --policy suqian-2007 -o OUT.csv`` (reads the same file; ignores the recorded columns)
* ``medins audit EXPORT --policy suqian-2007 -o DIFF.csv`` (reads, settles and compares)

and prints the median wall time of each, their ratio (target ≤ 1.3×), the same for CPU time (user +
system, which a busy shared machine disturbs less than wall time) and each one's peak RSS.
``--batch-args`` passes options to batch only (``--partitions 1`` settles the file in one piece in
memory, as the audit does; by default batch chooses, partitioning a file above 32 MB).
"""

from __future__ import annotations

import argparse
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch import generate, run  # the claims and the measurement of benchmarks/batch.py

#: Settled fields → the Chinese headers a 医保 export records them under.
RECORDED = {"inscp_scp_amt": "符合范围金额", "act_pay_dedc": "起付线", "hifp_pay": "统筹基金支付",
            "fund_pay_sumamt": "基金支付总额", "psn_part_amt": "个人负担", "acct_pay": "个人账户支付",
            "psn_cash_pay": "个人现金支付"}


def make_export(claims: Path, export: Path, folder: Path) -> int:
    """The claims with batch's settlement joined back as recorded columns; returns how many were made wrong."""
    import subprocess

    settled = folder / "export-settled.csv"
    subprocess.run([sys.executable, "-m", "medins", "batch", str(claims), "--policy", "suqian-2007", "-o",
                    str(settled)], check=False, capture_output=True)
    out = pl.read_csv(settled, infer_schema=False).select("claim_id", *RECORDED).rename(RECORDED)
    frame = pl.read_csv(claims, infer_schema=False).join(out, left_on="结算单号", right_on="claim_id", how="left",
                                                         maintain_order="left")
    wrong = (pl.int_range(pl.len()) % 1000 == 7) & pl.col("统筹基金支付").is_not_null()
    frame = frame.with_columns(pl.when(wrong).then(pl.col("统筹基金支付").str.replace(r"\.", "1.")).otherwise(
        pl.col("统筹基金支付")).alias("统筹基金支付"))
    frame.write_csv(export)
    return int(frame.select(wrong.sum()).item())


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system of the command's processes) and peak RSS (MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, rss, _total = run(cmd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, help="default: rows / 5")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the files in this folder and keep them")
    parser.add_argument("--batch-args", default="", help='more medins batch options, e.g. "--partitions 1"')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        claims = folder / f"claims-{args.rows}.csv"
        export = folder / f"export-{args.rows}.csv"
        if not export.exists():
            t = time.perf_counter()
            if not claims.exists():
                generate(claims, args.rows, args.persons or max(1, args.rows // 5))
            wrong = make_export(claims, export, folder)
            print(f"generated {export} ({export.stat().st_size / 2**20:.0f} MiB, {wrong} claims recorded wrongly) "
                  f"in {time.perf_counter() - t:.1f} s")
        batch_cmd = [sys.executable, "-m", "medins", "batch", str(export), "--policy", "suqian-2007",
                     "-o", str(folder / "settled.csv"), *shlex.split(args.batch_args)]
        audit_cmd = [sys.executable, "-m", "medins", "audit", str(export), "--policy", "suqian-2007",
                     "-o", str(folder / "diff.csv")]
        print("batch:", shlex.join(batch_cmd))
        print("audit:", shlex.join(audit_cmd))
        walls: dict[str, list[float]] = {"batch": [], "audit": []}
        cpus: dict[str, list[float]] = {"batch": [], "audit": []}
        rss: dict[str, float] = {"batch": 0.0, "audit": 0.0}
        for _ in range(args.runs):
            for name, cmd in (("audit", audit_cmd), ("batch", batch_cmd)):
                wall, cpu, peak = timed(cmd)
                walls[name].append(wall)
                cpus[name].append(cpu)
                rss[name] = max(rss[name], peak)
        wall = {k: statistics.median(v) for k, v in walls.items()}
        cpu = {k: statistics.median(v) for k, v in cpus.items()}
        print(f"rows {args.rows:,}  runs {args.runs}  (medians; each run in a fresh process)")
        for name in ("batch", "audit"):
            print(f"medins {name}   {wall[name]:7.2f} s wall  {cpu[name]:7.2f} s CPU   peak RSS {rss[name]:7.0f} MiB")
        print(f"ratio          {wall['audit'] / wall['batch']:7.2f}× wall  {cpu['audit'] / cpu['batch']:7.2f}× CPU"
              "  (target ≤ 1.3×)")

if __name__ == "__main__":
    main()
