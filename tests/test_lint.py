"""ruff, configured in pyproject.toml ([tool.ruff]), finds nothing in ra2/, tests/ and bench/ (fast tier)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import require

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str] | None:
    """The ruff of this interpreter's environment (the `test` extra), else one on PATH, else None."""
    beside = Path(sys.executable).parent / "ruff"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("ruff")
    return [found] if found else None


def test_ruff_check_is_clean():
    ruff = _ruff()
    if ruff is None:
        require("ruff check", "ruff is not installed (pip install -e '.[test]')")
    done = subprocess.run(ruff + ["check", "--no-cache", "ra2", "tests", "bench"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
