"""Whether the Spark tests can run here: a printed skip on a user's machine without Java, a failure in CI.

Why fail under CI: the Spark tests are the proof that ``--engine spark`` equals the local engine; a CI
run that silently skipped them (pyspark or Java missing) would prove nothing, so there it fails.
"""

from __future__ import annotations

import os

import pytest


def spark_missing() -> str | None:
    """Why Spark cannot run here (None: it can)."""
    try:
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        return f"pyspark is not installed ({exc.name}): pip install \".[spark]\" to run the Spark tests"
    from medins.spark import java_available

    if not java_available():
        return "no Java (17 or 21) on this machine: the Spark tests need one (apt-get install openjdk-17-jre-headless)"
    return None


def skip_or_fail(reason: str | None, environ=os.environ) -> None:
    """Skip with ``reason`` on a user's machine; under CI (``CI=true``) fail instead."""
    if reason is None:
        return
    if environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"CI must run the Spark tests, but {reason}", pytrace=False)
    pytest.skip(reason)
