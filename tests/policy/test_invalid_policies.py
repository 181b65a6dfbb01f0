"""One invalid policy per validation error kind, each with its golden location and message.

The fixtures in ``invalid/`` differ from a valid policy by one mistake; ``invalid/expected.yaml``
holds what a policy author is told: code, line, column, key path, message and hint.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from medins.errors import PolicyError
from medins.policy.loader import check_policy_file

HERE = Path(__file__).parent / "invalid"
EXPECTED = yaml.safe_load((HERE / "expected.yaml").read_text(encoding="utf-8"))


def test_every_fixture_has_a_golden_message() -> None:
    """No fixture without an expectation, no expectation without a fixture."""
    assert sorted(p.stem for p in HERE.glob("*.yaml") if p.name != "expected.yaml") == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_invalid_policy_is_located_and_explained(case: str) -> None:
    """The error names file:line:col, the key path, the problem and the hint exactly as expected."""
    with pytest.raises(PolicyError) as info:
        check_policy_file(str(HERE / f"{case}.yaml"))
    got = [{"code": i.code, "line": i.line, "column": i.column, "key_path": i.key_path, "message_en": i.message_en,
            "hint_en": i.hint_en} for i in info.value.issues]
    assert got == EXPECTED[case]
    for issue in info.value.issues:
        assert issue.message_zh and issue.file.endswith(f"{case}.yaml")


def test_policy_check_exits_2_without_traceback() -> None:
    """`medins policy check` on a broken file exits 2 and prints the location, never a traceback."""
    proc = subprocess.run([sys.executable, "-m", "medins", "policy", "check", str(HERE / "unknown_key.yaml"),
                           "--lang", "en"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown_key.yaml:7:40" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_builtin_policies_all_check_clean() -> None:
    """Every built-in policy passes its own validation."""
    from medins.policy.loader import builtin_policies

    for name, path in builtin_policies().items():
        assert check_policy_file(str(path)).id == name
