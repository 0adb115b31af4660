"""CI's demo gate (``.ci/demo_gate.py``): ``.ci/run`` fails when the demo's ``scores.json`` is not at least 20%
better than the training-mean baseline on each of SC1-3; here on fake score files (the sabotage check)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

GATE = Path(__file__).resolve().parents[1] / ".ci" / "demo_gate.py"
BASELINE = {"sc1": 2.128, "sc2": 0.817, "sc3": 0.909}


def gate(tmp_path, model, baseline=BASELINE):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"model": model, "baseline": baseline, "profile": "demo"}))
    done = subprocess.run([sys.executable, str(GATE), str(path)], capture_output=True, text=True)
    return done.returncode, done.stderr


def test_the_readme_demo_passes(tmp_path):
    assert gate(tmp_path, {"sc1": 0.740, "sc2": 0.560, "sc3": 0.690})[0] == 0


@pytest.mark.parametrize("key", ["sc1", "sc2", "sc3"])
def test_a_score_less_than_20_percent_better_fails(tmp_path, key):
    model = {"sc1": 0.740, "sc2": 0.560, "sc3": 0.690}
    model[key] = BASELINE[key] * 0.81  # 19% better
    rc, err = gate(tmp_path, model)
    assert rc == 1 and f"FAIL {key.upper()}:" in err and "better by 19.0%" in err


def test_a_model_worse_than_the_baseline_or_without_a_score_fails(tmp_path):
    rc, err = gate(tmp_path, {"sc1": 2.5, "sc2": 0.9, "sc3": None})
    assert rc == 1 and err.count("FAIL") == 3 and "SC3: no usable score" in err
    rc, err = subprocess.run([sys.executable, str(GATE), str(tmp_path / "none.json")], capture_output=True,
                             text=True).returncode, ""
    assert rc == 1
