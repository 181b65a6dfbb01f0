"""The benchmark scripts still run (they are how speed and memory are measured, never the test suite)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_batch_benchmark_runs_on_a_small_file_and_reports_every_figure(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "batch.py"), "--rows", "3000", "--runs", "1",
                          "--keep", str(tmp_path)], capture_output=True, text=True, timeout=300, check=True).stdout
    for label in ("medins batch", "polars floor", "ratio", "I/O bound"):
        assert re.search(rf"^{label}\s+\d+\.\d\d", out, re.MULTILINE), (label, out)
    settled = (tmp_path / "settled.csv").read_text().splitlines()
    rejects = (tmp_path / "settled.rejects.csv").read_text().splitlines()
    assert len(settled) - 1 + len(rejects) - 1 == 3000  # the generated claims all accounted for
    assert (tmp_path / "bound.csv").read_text().splitlines()[0] == settled[0]  # the bound wrote medins' table


def test_audit_benchmark_runs_on_a_small_file_and_reports_the_ratio(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "audit.py"), "--rows", "2000", "--runs", "1",
                          "--keep", str(tmp_path)], capture_output=True, text=True, timeout=300, check=True).stdout
    for label in ("medins batch", "medins audit", "ratio"):
        assert re.search(rf"^{label}\s+\d+\.\d\d", out, re.MULTILINE), (label, out)
    differences = (tmp_path / "diff.csv").read_text().splitlines()
    assert len(differences) > 1 and ",hifp_pay," in differences[1]  # the claims recorded wrongly are found
