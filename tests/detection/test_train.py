"""ra2.detection.train through `ra2 train-detectors` (a real, smoke-sized training with a learning curve),
then `ra2 eval-detectors` on what it trained."""

import json

import numpy as np
import pytest

from ra2 import contract
from ra2.cli import main
from ra2.phantom.dataset import GOLD_ANNOTATIONS_FILE

from conftest import PHANTOM


@pytest.mark.thorough
def test_train_detectors_then_eval_detectors_on_the_command_line(phantom, tmp_path, capsys):
    out = tmp_path / "detectors"
    assert main(["train-detectors", "--data", str(phantom / "train"), "--out", str(out), "--profile", "smoke",
                 "--val", str(phantom / "test"), "--val-annotations", str(phantom / GOLD_ANNOTATIONS_FILE),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "detectors written to" in printed and "held-out recall@IoU0.5" in printed
    curves = {}
    for name in contract.DETECTORS:
        meta = json.loads((out / name / "metadata.json").read_text())
        assert meta["recipe"]["steps"] == 2 and meta["n_images"] == 2 * PHANTOM["train_patients"]
        [point] = meta["learning_curve"]  # smoke: one epoch of two steps
        n = PHANTOM["test_patients"] * (12 if name != "hands" else 22)  # every class once per held-out film
        assert point["step"] == 2 and sum(point["sources"].values()) == n
        # the recall is a count of the n held-out boxes, the mean of the per-class recalls (each class n / classes
        # times), and a hit has IoU >= 0.5, so the mean IoU is at least half the recall
        hits = point["recall_iou50"] * n
        assert abs(hits - round(hits)) < 1e-6, (name, point["recall_iou50"])
        assert point["recall_iou50"] == pytest.approx(np.mean(list(point["per_class"].values())))
        assert 0.5 * point["recall_iou50"] <= point["mean_iou"] <= 1.0
        curves[name] = point
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
        # the hit rate is a count of the sites, the mean of the per-site rates (each site once per film), the
        # worst site's rate is the lowest, and hits have IoU >= 0.5
        hits = r["hit_rate_iou50"] * r["n_sites"]
        assert abs(hits - round(hits)) < 1e-6, (name, r["hit_rate_iou50"])
        assert r["hit_rate_iou50"] == pytest.approx(np.mean(list(r["per_site"].values())))
        assert r["worst_site"]["hit_rate_iou50"] == min(r["per_site"].values())
        assert 0.5 * r["hit_rate_iou50"] <= r["mean_iou"] <= 1.0
        assert f"{name:16s} sites" in printed
    # the same final model on the same held-out films: the feet detector's learning-curve recall (whole films)
    # is what eval-detectors measures
    assert curves["feet"]["recall_iou50"] == pytest.approx(result["feet"]["hit_rate_iou50"])
    assert main(["train-detectors", "--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "ra2: error:" in capsys.readouterr().err


LANDMARK_LABELS = {"mcp__ip": "0_mcp_ip", "pip__2": "1_pip_2", "pip__3": "2_pip_3", "pip__4": "3_pip_4",
                   "pip__5": "4_pip_5", "mcp__1": "5_mcp_1", "mcp__2": "6_mcp_2", "mcp__3": "7_mcp_3",
                   "mcp__4": "8_mcp_4", "mcp__5": "9_mcp_5"}


def _landmark_files(phantom, folder, drop=()):
    """labelme point files of the phantom's hand films as the public RA2 landmark files are written: one point
    per hand joint (the box centre), w1-w3 at three corners of the carpus; feet and wrist areas left out."""
    from ra2.annotations import read_annotations

    folder.mkdir()
    for film in read_annotations(phantom / "train"):
        if film.limb not in contract.HAND_LIMBS:
            continue
        shapes = []
        for o in film.objects_of("hands"):
            y1, x1, y2, x2 = o.box
            if o.class_name == contract.CARPUS_CLASS:
                corners = [[x1 + 1, y1 + 1], [x2 - 1, y1 + 1], [(x1 + x2) / 2, y2 - 1]]
                shapes += [{"label": f"w{i + 1}", "points": [p], "shape_type": "point"} for i, p in enumerate(corners)]
            elif o.class_name not in drop:
                shapes.append({"label": LANDMARK_LABELS[o.class_name], "points": [[(x1 + x2) / 2, (y1 + y2) / 2]],
                               "shape_type": "point"})
        doc = {"shapes": shapes, "imagePath": f"..\\{film.file_name}", "imageData": "", "imageHeight": film.height,
               "imageWidth": film.width}
        (folder / f"{film.file_name[:-4]}.json").write_text(json.dumps(doc))


@pytest.mark.thorough
def test_train_detectors_on_imported_partial_annotations(phantom, tmp_path, capsys):
    """Landmark points of the hand films only: import, then train-detectors trains the hand detector alone and
    says why the others are not trained; a joint never annotated is a one-line error."""
    _landmark_files(phantom, tmp_path / "lm")
    ann = tmp_path / "imported.json"
    assert main(["annotations", "import", "--format", "labelme", "--src", str(tmp_path / "lm"), "--films",
                 str(phantom / "train"), "--out", str(ann)]) == 0
    out = tmp_path / "detectors"
    assert main(["train-detectors", "--films", str(phantom / "train"), "--annotations", str(ann), "--out", str(out),
                 "--profile", "smoke", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in ("feet", "wrist_erosion", "wrist_narrowing"):
        assert f"{name:16s} not trained: no annotated film carries its objects" in printed
        assert not (out / name).exists()
    meta = json.loads((out / "hands" / "metadata.json").read_text())
    assert meta["n_images"] == 2 * PHANTOM["train_patients"]  # the hand films
    _landmark_files(phantom, tmp_path / "lm2", drop=("pip__5",))
    assert main(["annotations", "import", "--format", "labelme", "--src", str(tmp_path / "lm2"), "--films",
                 str(phantom / "train"), "--out", str(ann)]) == 0
    capsys.readouterr()
    assert main(["train-detectors", "--films", str(phantom / "train"), "--annotations", str(ann), "--out", str(out),
                 "--profile", "smoke", "--no-progress"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ra2: error: detector hands: class pip__5 never annotated on a film together with another class; each "
        "class needs annotated examples (annotate it, or leave this detector out with --detectors)")
