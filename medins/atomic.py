"""All-or-nothing files: write to a temporary file beside the target, then rename over it.

Why: an interrupted run (Ctrl-C, a full disk, a bug) must never leave a half-written settlement,
chart or workbook that looks complete. ``os.replace`` within one folder is atomic.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def _umask() -> int:
    """The process umask (read by setting it, then putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success, remove it on failure."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a settlement file is shared like any other
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
