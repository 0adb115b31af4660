"""The walkthrough notebooks execute top to bottom in a real Jupyter kernel (nbclient + ipykernel, the `test`
extra) against the current library; they are committed without outputs."""

import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.thorough
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_in_a_kernel(path, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    assert not [c for c in nb.cells if c.get("outputs")], "commit notebooks without outputs"
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's scratch folder
    # the kernel imports this checkout's ra2, whatever the installed one
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 6  # the contact sheet, the overlay, the crops and the report's figures, inline


def test_there_is_a_notebook():
    assert NOTEBOOKS
