"""``python -m medins`` and the ``medins`` command run the command line (:func:`run`)."""

import os
import sys


def run() -> None:
    """Set the collector for the command (:mod:`medins.quietgc`), then import the command line and run it.

    Why in this order: the command line's imports (Typer, Polars, the engine) would otherwise trigger collections
    that walk every object created so far, again and again, for a ``calc`` that needs none. Left off at the end:
    the process ends with the command.

    Why NumPy's BLAS gets one thread (unless the user chose otherwise): medins does no linear algebra, yet
    OpenBLAS starts a server thread per CPU when NumPy is imported, and those threads spin waiting for work that
    never comes — 2.4 % of the CPU samples of a 1,000,000-claim batch (``perf``), taken from Polars' threads on
    a small machine. The variable must be set before NumPy is first imported; worker processes inherit it.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from medins.quietgc import quiet_gc

    quiet_gc(sys.argv[1:2])
    from medins.cli import main

    main()


if __name__ == "__main__":
    run()
