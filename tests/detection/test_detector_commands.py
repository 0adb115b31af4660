"""`ra2 train-detectors` and `ra2 eval-detectors`: a real (smoke-sized) training with a learning curve, and
the evaluation's numbers checked against an oracle that returns the ground truth with known errors."""

import json

import numpy as np
import pytest

from ra2 import contract
from ra2.cli import main
from ra2.detection.detect import FilmDetection, evaluate_detection
from ra2.phantom import generate_dataset, read_annotations
from ra2.phantom.dataset import GOLD_ANNOTATIONS_FILE


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    generate_dataset(root, train_patients=2, test_patients=1, seed=7, size_scale=0.15, workers=1)
    return root


class ShiftingOracle:
    """The ground truth of each film, with the boxes of ``shifted`` sites moved right by their own width
    (IoU 0 with the truth)."""

    def __init__(self, films, shifted):
        self.truth = {(a.height, a.width, a.limb): a for a in films}
        self.shifted = set(shifted)

    def detect_film(self, film, limb):
        ann = self.truth[(film.shape[0], film.shape[1], limb)]
        out = FilmDetection(limb=limb, carpus_box=ann.carpus_box)
        for o in ann.objects:
            if o.site_id is None:
                continue
            y1, x1, y2, x2 = o.box
            if o.site_id in self.shifted:
                x1, x2 = x2, x2 + (x2 - x1)
            out.boxes[o.site_id] = (y1, x1, y2, x2)
            out.sources[o.site_id] = "detected"
        return out


def test_evaluate_detection_counts_hits_and_names_the_worst_site(phantom):
    films = read_annotations(phantom / GOLD_ANNOTATIONS_FILE)
    oracle = ShiftingOracle(films, shifted={"LH_pip__3", "RF_mtp__4"})
    result = evaluate_detection(None, phantom / "test", phantom / GOLD_ANNOTATIONS_FILE, detector=oracle)
    assert result["films"] == 4
    hands, feet = result["hands"], result["feet"]
    assert hands["n_sites"] == 20 and hands["hit_rate_iou50"] == pytest.approx(19 / 20)
    assert hands["worst_site"] == {"site": "LH_pip__3", "hit_rate_iou50": 0.0, "mean_iou": 0.0}
    assert hands["per_site"]["RH_pip__3"] == 1.0 and hands["mean_iou"] == pytest.approx(19 / 20)
    assert feet["hit_rate_iou50"] == pytest.approx(11 / 12) and feet["worst_site"]["site"] == "RF_mtp__4"
    for name in contract.CARPUS_DETECTORS:
        assert result[name]["hit_rate_iou50"] == 1.0 and result[name]["n_sites"] == 12
    assert hands["carpus"] == {"n": 2, "hit_rate_iou50": 1.0, "mean_iou": 1.0}
    assert hands["sources"] == {"detected": 20}


def test_train_detectors_then_eval_detectors_on_the_command_line(phantom, tmp_path, capsys):
    out = tmp_path / "detectors"
    assert main(["train-detectors", "--data", str(phantom / "train"), "--out", str(out), "--profile", "smoke",
                 "--val", str(phantom / "test"), "--val-annotations", str(phantom / GOLD_ANNOTATIONS_FILE),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "detectors written to" in printed and "held-out recall@IoU0.5" in printed
    for name in contract.DETECTORS:
        meta = json.loads((out / name / "metadata.json").read_text())
        assert meta["recipe"]["steps"] == 2 and meta["n_images"] == 4  # two patients: two films each
        [point] = meta["learning_curve"]  # smoke: one epoch of two steps
        assert point["step"] == 2 and 0.0 <= point["recall_iou50"] <= 1.0
        assert sum(point["sources"].values()) == (12 if name != "hands" else 22)
        assert all((out / name / f).is_file() for f in ("config.json", "model.weights.h5", "layout.json"))
    report = tmp_path / "eval.json"
    assert main(["eval-detectors", "--models", str(out), "--data", str(phantom / "test"), "--annotations",
                 str(phantom / GOLD_ANNOTATIONS_FILE), "--json", str(report), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(report.read_text())
    for name in contract.DETECTORS:
        r = result[name]
        assert r["n_sites"] == (20 if name == "hands" else 12)
        assert sum(r["sources"].values()) == r["n_sites"]  # every site gets a box, whatever its source
        assert np.isfinite(r["mean_iou"]) and r["worst_site"]["site"] in r["per_site"]
        assert f"{name:16s} sites" in printed
    assert main(["train-detectors", "--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "ra2: error:" in capsys.readouterr().err
