"""The ``medins`` command's entry point: the console script and ``python -m medins`` both start here.

Why not ``medins.cli:main`` directly: a small command (``calc``, see :data:`medins.SMALL_COMMANDS`) runs with
the garbage collector off, and that pays most during the CLI's own imports (typer, click, rich run about
twenty collections walking every object imported so far, for garbage that is not there). Only code that runs
before ``medins.cli`` is imported can turn it off that early; :func:`medins.cli.main` then decides for itself
and turns it on again when it returns.
"""

import gc
import sys

from medins import SMALL_COMMANDS


def main() -> None:
    """Run the command line, with the collector off during the CLI's imports for a small command."""
    small = bool(sys.argv[1:2]) and sys.argv[1] in SMALL_COMMANDS and gc.isenabled()
    if small:
        gc.disable()
    try:
        from medins.cli import main as cli_main
    finally:
        if small:
            gc.enable()
    cli_main()
