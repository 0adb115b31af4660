"""``python -m ra2`` runs the command-line interface."""

import sys

from ra2.cli import main

sys.exit(main())
