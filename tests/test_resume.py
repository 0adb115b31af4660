"""Work folders that cannot leak between runs, and a killed training run that resumes.

A models folder is reused only when it was made from the same inputs and configuration
(``fingerprint.json``, :func:`ra2.models_folder.training_fingerprint`); a killed ``ra2 train`` continues from its
complete ensemble members instead of starting over.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ra2.models_folder import FINGERPRINT_FILE, prepare, training_fingerprint
from ra2.profiles import regressor_profile


def _fingerprint(train_dir, profile="smoke", seed=0):
    return training_fingerprint(Path(train_dir), regressor_profile(profile), seed, None, False)


def test_fingerprint_follows_training_csv_films_profile_and_seed(phantom, tmp_path):
    import shutil

    train = tmp_path / "train"
    shutil.copytree(phantom / "train", train)
    base = _fingerprint(train)["key"]
    assert _fingerprint(train)["key"] == base  # deterministic
    assert _fingerprint(train, profile="demo")["key"] != base
    assert _fingerprint(train, seed=1)["key"] != base
    csv = train / "training.csv"
    csv.write_text(csv.read_text().replace("\n", "\n", 1) + "\n")  # one more byte: other data
    assert _fingerprint(train)["key"] != base
    csv.write_bytes((phantom / "train" / "training.csv").read_bytes())
    assert _fingerprint(train)["key"] == base
    next(train.glob("*-LF.jpg")).unlink()  # one film fewer
    assert _fingerprint(train)["key"] != base


def _models_with(folder: Path, fingerprint: dict | None):
    (folder / "regressors" / "narrowing").mkdir(parents=True)
    (folder / "regressors" / "narrowing" / "ensemble.json").write_text("{}")
    (folder / "pipeline.json").write_text("{}")
    if fingerprint is not None:
        (folder / FINGERPRINT_FILE).write_text(json.dumps(fingerprint))


def test_models_made_from_other_inputs_are_cleared_not_reused(tmp_path, caplog):
    models = tmp_path / "models"
    fp = {"key": "a" * 16, "parts": {"training_csv": "x", "profile": "smoke"}}
    _models_with(models, {"key": "b" * 16, "parts": {"training_csv": "y", "profile": "smoke"}})
    assert prepare(models, fp) is False
    assert not (models / "regressors").exists() and not (models / "pipeline.json").exists()
    assert json.loads((models / FINGERPRINT_FILE).read_text())["key"] == "a" * 16
    assert "made from other inputs or configuration (changed: training_csv)" in caplog.text


def test_models_without_a_fingerprint_are_moved_aside(tmp_path, caplog):
    models = tmp_path / "models"
    _models_with(models, None)
    assert prepare(models, {"key": "a" * 16, "parts": {}}) is False
    aside = [p for p in models.iterdir() if p.name.startswith("unverified-")]
    assert len(aside) == 1 and (aside[0] / "regressors" / "narrowing" / "ensemble.json").is_file()
    assert (aside[0] / "pipeline.json").is_file() and not (models / "regressors").exists()
    assert "moved to" in caplog.text


def test_models_from_the_same_inputs_are_reused(tmp_path):
    models = tmp_path / "models"
    fp = {"key": "a" * 16, "parts": {}}
    _models_with(models, fp)
    assert prepare(models, fp) is True
    assert (models / "regressors" / "narrowing" / "ensemble.json").is_file()


def _train_command(phantom, models):
    return [sys.executable, "-m", "ra2", "train", "--train", str(phantom / "train"), "--models", str(models),
            "--profile", "smoke", "--no-progress"]


@pytest.mark.thorough
def test_killed_training_resumes_from_its_complete_members(phantom, tmp_path):
    """Kill ``ra2 train`` (SIGKILL) once the first ensemble member is written; the restart reuses that member
    (same weights file, untouched) and trains only the rest."""
    models = tmp_path / "models"
    env = {k: v for k, v in os.environ.items() if k != "RA2_DETECTORS"}  # the shipped detectors
    first = models / "regressors" / "foot_erosion" / "member_0"
    proc = subprocess.Popen(_train_command(phantom, models), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env)
    deadline = time.time() + 600
    while not (first / "metadata.json").is_file():
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.time() < deadline, "no ensemble member written in 10 minutes"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (models / "pipeline.json").is_file()  # killed before the end
    weights_before = (first / "model.weights.h5").stat().st_mtime_ns

    done = subprocess.run(_train_command(phantom, models), capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "foot_erosion member 1/2: reused" in done.stderr
    assert "foot_erosion member 2/2: " in done.stderr and "member 2/2: reused" not in done.stderr
    assert (first / "model.weights.h5").stat().st_mtime_ns == weights_before
    summary = json.loads((models / "pipeline.json").read_text())
    assert summary["reused"] is True
    assert json.loads((models / FINGERPRINT_FILE).read_text())["key"] == summary["fingerprint"]
