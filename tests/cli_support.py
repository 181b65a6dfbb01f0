"""Running ``medins`` in this process, the way a user's shell would, for the CLI tests of every module.

Why one helper: it goes through the real error boundary (``medins.cli.main``), so a test sees the exit
code and the framed message a user sees; copies of it had drifted (one read ``sys.exit()`` as exit 1).
"""

from __future__ import annotations

import sys

from medins.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``medins ARGS`` in-process; return the exit code, stdout and stderr (``SystemExit(None)`` is 0)."""
    argv, sys.argv = sys.argv, ["medins", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err
