"""`ra2 demo` (what `make demo` runs) on a tiny phantom with the smoke regressors: the files a user is promised,
valid and scored, and the lines it prints. Thorough tier (about 2 minutes);
`make demo` itself (the demo profile, 15 minutes) runs in CI after the tests, gated on its scores (.ci/demo_gate.py)."""

import json

import pytest

from ra2 import io
from ra2.cli import main
from ra2.metrics import SCORE_KEYS


@pytest.mark.thorough
def test_demo_writes_valid_predictions_scores_and_sheet(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--train-patients", "3", "--test-patients", "2",
               "--size-scale", "0.15", "--profile", "smoke"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "DETECTOR + REGRESSOR PIPELINE" in printed  # the demo says plainly which predictor it ran
    assert "baseline (training means)" in printed and "better than the baseline by" in printed
    assert "detectors: shipped" in printed and f"outputs in {out}/" in printed
    assert io.validate_predictions(out / "predictions.csv", out / "phantom/test/template.csv") == []
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["model"]) == set(SCORE_KEYS) and set(scores["baseline"]) == set(SCORE_KEYS)
    assert scores["model"]["sc1"] > 0 and scores["profile"] == "smoke"
    assert (out / "phantom_contact_sheet.png").stat().st_size > 10_000
    assert (out / "models" / "pipeline.json").is_file() and (out / "run.json").is_file()
    assert json.loads((out / "run.json").read_text())["command"] == "ra2 demo"
    # the per-joint spread beside the predictions, and the report, whose path is the last line printed
    assert (out / "predictions_uncertainty.csv").is_file() and (out / "detections.json").is_file()
    assert printed.strip().splitlines()[-1] == f"[demo] report: {out / 'report' / 'report.html'}"
    assert (out / "report" / "report.html").stat().st_size > 50_000 and (out / "report" / "metrics.json").is_file()
