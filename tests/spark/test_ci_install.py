"""CI installs the Spark extra (and a JRE when there is no Java) before the README's exact test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README_TEST = 'pip install ".[test]" && python -m pytest -q'


def test_ci_runs_the_readme_test_command_after_installing_spark() -> None:
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert README_TEST in (ROOT / "README.md").read_text(encoding="utf-8")
    lines = ci.splitlines()
    assert README_TEST in lines
    spark = lines.index('pip install ".[test,spark]"')
    assert spark < lines.index(README_TEST)
    assert re.search(r"command -v java.*\n.*\n.*\n.*apt-get install -y .*openjdk-17-jre-headless", ci)
    assert 'export CI="${CI:-true}"' in ci  # the Spark tests fail rather than skip under .ci/run
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^spark = \["pyspark>=4\.0,<5"', pyproject, re.MULTILINE)
