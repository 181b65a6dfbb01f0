"""The ``medins`` command gives NumPy's BLAS one thread unless the user set ``OPENBLAS_NUM_THREADS``.

Why: medins does no linear algebra, and OpenBLAS' idle server threads spin on a small machine, taking CPU from
Polars (``medins/__main__.py``). The setting only works before NumPy is imported, so it is checked in a fresh
interpreter that goes through the real entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = """
import os, sys
sys.argv = ["medins", "--help"]
from medins.__main__ import run
try:
    run()
except SystemExit:
    pass
import numpy
sys.stderr.write("BLAS=" + os.environ.get("OPENBLAS_NUM_THREADS", "unset"))
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("3", "3")])
def test_the_command_sets_one_blas_thread_unless_the_user_chose(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    assert done.stderr.endswith("BLAS=" + expected)


def test_numpy_is_not_imported_before_the_setting() -> None:
    """Were NumPy imported by ``medins.__main__`` itself, OpenBLAS would have started its threads already."""
    probe = "import sys, medins.__main__; sys.stderr.write(str('numpy' in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stderr == "False"
