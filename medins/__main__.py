"""``python -m medins`` runs the command line, through the same entry point as the ``medins`` script."""

from medins.entry import main

main()
