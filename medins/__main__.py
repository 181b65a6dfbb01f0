"""``python -m medins`` runs the command line.

The collector is set for the command (:mod:`medins.quietgc`) before the command line's imports, which it
would otherwise walk again and again during them.
"""

import sys

from medins.quietgc import quiet_gc

quiet_gc(sys.argv[1:2])  # left off: the process ends with the command

from medins.cli import main  # noqa: E402  (after the collector is set)

main()
