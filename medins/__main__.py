"""``python -m medins`` and the ``medins`` command run the command line (:func:`run`)."""

import sys


def run() -> None:
    """Set the collector for the command (:mod:`medins.quietgc`), then import the command line and run it.

    Why in this order: the command line's imports (Typer, Polars, the engine) would otherwise trigger collections
    that walk every object created so far, again and again, for a ``calc`` that needs none. Left off at the end:
    the process ends with the command.
    """
    from medins.quietgc import quiet_gc

    quiet_gc(sys.argv[1:2])
    from medins.cli import main

    main()


if __name__ == "__main__":
    run()
