"""``python -m studentstatus`` runs the command line."""

from studentstatus.cli import main

if __name__ == "__main__":
    main()
