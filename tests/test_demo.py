"""`make demo` and `ra2 run` on a tiny phantom: the files a user is promised, valid and scored.

Both train the whole pipeline (smoke profile: four detectors + three ensembles), which takes minutes on the
shared 2-core machine, hence ``slow``; ``tests/test_pipeline.py`` keeps fast versions of the wiring.
"""

import json

import pytest

from ra2 import io
from ra2.cli import main
from ra2.metrics import SCORE_KEYS


@pytest.mark.slow
def test_demo_writes_valid_predictions_scores_and_sheet(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--train-patients", "3", "--test-patients", "2",
               "--size-scale", "0.15", "--profile", "smoke"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "DETECTOR + REGRESSOR PIPELINE" in printed  # the demo says plainly which predictor it ran
    assert "baseline (training means)" in printed
    assert io.validate_predictions(out / "predictions.csv", out / "phantom/test/template.csv") == []
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["model"]) == set(SCORE_KEYS) and set(scores["baseline"]) == set(SCORE_KEYS)
    assert scores["model"]["sc1"] > 0
    assert (out / "phantom_contact_sheet.png").stat().st_size > 10_000
    assert (out / "models" / "pipeline.json").is_file()


@pytest.mark.slow
def test_run_on_a_phantom_challenge_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("RA2_PROFILE", "smoke")
    data, output = tmp_path / "data", tmp_path / "output"
    assert main(["phantom", "--out", str(data), "--train-patients", "2", "--test-patients", "2",
                 "--size-scale", "0.15", "--seed", "3"]) == 0
    assert main(["run", "--train", str(data / "train"), "--test", str(data / "test"),
                 "--output", str(output), "--work", str(tmp_path / "work")]) == 0
    assert io.validate_predictions(output / "predictions.csv", data / "test" / "template.csv") == []
    assert not [p for p in output.iterdir() if p.name != "predictions.csv"]  # no temporary left behind
    assert (tmp_path / "work" / "models" / "pipeline.json").is_file()  # the model step ran to the end
