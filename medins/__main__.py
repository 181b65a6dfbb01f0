"""``python -m medins`` runs the command line."""

from medins.cli import main

main()
