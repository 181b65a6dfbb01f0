"""The stage benchmark still runs (it is how the engine's stages are measured, never the test suite)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stage_benchmark_reports_every_stage_on_the_example_claims() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stages.py"), str(ROOT / "examples" / "claims.csv"),
                          "--runs", "1"], capture_output=True, text=True, timeout=300, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    for stage in ("settle (all)", "check_admissibility", "settle_benefits", "clamped_cumsum", "settle_account"):
        assert re.search(rf"^{re.escape(stage)}\s+\d+\.\d{{3}}\s+\d+\.\d{{3}}$", out, re.MULTILINE), (stage, out)
