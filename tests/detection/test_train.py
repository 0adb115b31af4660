"""ra2.detection.train through `ra2 train-detectors` (a real, smoke-sized training with a learning curve),
then `ra2 eval-detectors` on what it trained."""

import json

import numpy as np

from conftest import PHANTOM
from ra2 import contract
from ra2.cli import main
from ra2.phantom.dataset import GOLD_ANNOTATIONS_FILE


def test_train_detectors_then_eval_detectors_on_the_command_line(phantom, tmp_path, capsys):
    out = tmp_path / "detectors"
    assert main(["train-detectors", "--data", str(phantom / "train"), "--out", str(out), "--profile", "smoke",
                 "--val", str(phantom / "test"), "--val-annotations", str(phantom / GOLD_ANNOTATIONS_FILE),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "detectors written to" in printed and "held-out recall@IoU0.5" in printed
    for name in contract.DETECTORS:
        meta = json.loads((out / name / "metadata.json").read_text())
        assert meta["recipe"]["steps"] == 2 and meta["n_images"] == 2 * PHANTOM["train_patients"]
        [point] = meta["learning_curve"]  # smoke: one epoch of two steps
        assert point["step"] == 2 and 0.0 <= point["recall_iou50"] <= 1.0
        assert sum(point["sources"].values()) == PHANTOM["test_patients"] * (12 if name != "hands" else 22)
        assert all((out / name / f).is_file() for f in ("config.json", "model.weights.h5", "layout.json"))
    report = tmp_path / "eval.json"
    assert main(["eval-detectors", "--models", str(out), "--data", str(phantom / "test"), "--annotations",
                 str(phantom / GOLD_ANNOTATIONS_FILE), "--json", str(report), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(report.read_text())
    for name in contract.DETECTORS:
        r = result[name]
        assert r["n_sites"] == PHANTOM["test_patients"] * (20 if name == "hands" else 12)
        assert sum(r["sources"].values()) == r["n_sites"]  # every site gets a box, whatever its source
        assert np.isfinite(r["mean_iou"]) and r["worst_site"]["site"] in r["per_site"]
        assert f"{name:16s} sites" in printed
    assert main(["train-detectors", "--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "ra2: error:" in capsys.readouterr().err
