"""The one small argument/error helper of the developer scripts in ``bench/`` (experiments, refits,
evaluations that the ``ra2`` command line does not expose).

    from experiment_cli import run_main
    if __name__ == "__main__":
        run_main(main)

:func:`run_main` puts the source tree on ``sys.path`` (the scripts run as ``python bench/<script>.py`` from a
checkout), runs ``main(argv)``, prints a user's mistake (:class:`ra2.Ra2Error`) as one ``ra2: error:`` line
and exits with ``main``'s status (1 on such an error).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def call(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """``main(argv)``, with a :class:`ra2.Ra2Error` printed as one line and turned into status 1."""
    from ra2 import Ra2Error

    try:
        return int(main(argv) or 0)
    except Ra2Error as exc:
        print(f"ra2: error: {exc}", file=sys.stderr)
        return 1


def run_main(main: Callable[[list[str] | None], int]) -> None:
    """Run a script's ``main`` from the command line and exit with its status."""
    from ra2.runinfo import quiet_native_logs

    quiet_native_logs()
    sys.exit(call(main))
