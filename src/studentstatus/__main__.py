"""``python -m studentstatus`` runs the command line."""

from studentstatus.cli import main

main()
