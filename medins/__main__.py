"""``python -m medins`` runs the command line.

A small command (``calc``) has the garbage collector off from here, not only from :func:`medins.cli.main`
on: the CLI's own imports (typer, click) are a good part of the objects it would walk for nothing.
"""

import gc
import sys

from medins import SMALL_COMMANDS

_small = sys.argv[1:2] and sys.argv[1] in SMALL_COMMANDS and gc.isenabled()
if _small:
    gc.disable()

from medins.cli import main  # noqa: E402  (after the collector is off)

if _small:
    gc.enable()  # main() decides for itself, and turns it on again when it returns
main()
