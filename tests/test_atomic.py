"""All-or-nothing files: a failure while writing leaves neither a half file nor a temporary file."""

from __future__ import annotations

import os
import stat

import pytest

from medins.atomic import atomic_path


def test_success_replaces_the_target(tmp_path) -> None:
    """The finished temporary file is renamed over the target."""
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    with atomic_path(target, ".csv") as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write("new")
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path) -> None:
    """An exception mid-write leaves the previous file untouched and no temporary behind."""
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(target, ".csv") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("half")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_the_written_file_has_the_usual_permissions_not_mkstemps_private_0600(tmp_path):
    target = tmp_path / "out.csv"
    old = os.umask(0o022)
    try:
        with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            handle.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
