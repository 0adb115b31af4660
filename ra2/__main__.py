"""``python -m ra2`` runs the command-line interface."""

from ra2.cli import entry

entry()
