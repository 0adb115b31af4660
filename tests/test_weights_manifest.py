"""weights/: every shipped file is listed in manifest.json with its size and sha256, nothing else ships, the
four detectors are complete, load, and find the joints of a phantom film they never saw."""

import hashlib
import json
from pathlib import Path

from ra2 import contract

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
DOCS = {"manifest.json", "MODEL_CARD.md"}
DETECTOR_FILES = ("config.json", "model.weights.h5", "layout.json", "metadata.json")


def test_manifest_lists_exactly_the_shipped_files():
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    listed = {entry["path"]: entry for entry in manifest["files"]}
    on_disk = {p.relative_to(WEIGHTS).as_posix() for p in WEIGHTS.rglob("*")
               if p.is_file() and p.name not in DOCS}
    assert on_disk, "nothing ships: weights/detectors must hold the trained detectors"
    assert set(listed) == on_disk, "weights/ and manifest.json disagree"
    for path, entry in listed.items():
        data = (WEIGHTS / path).read_bytes()
        assert len(data) == entry["bytes"], path
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], path
    total = sum(entry["bytes"] for entry in listed.values())
    assert total == manifest["total_bytes"] and total <= 40e6, f"{total / 1e6:.1f} MB: the weights must stay small"


def test_the_four_detectors_ship_complete_with_their_provenance():
    for name in contract.DETECTORS:
        folder = WEIGHTS / "detectors" / name
        assert all((folder / f).is_file() for f in DETECTOR_FILES), name
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["detector"] == name and meta["profile"] == "cpu"
        data = meta["training_data"]
        assert data["source"].startswith("phantom") and data["size_scales"] == [0.35, 0.6, 1.0]
        assert meta["learning_curve"] and meta["learning_curve"][-1]["step"] == meta["recipe"]["steps"]


def test_shipped_detectors_find_the_joints_of_an_unseen_phantom_patient(tmp_path):
    """Seed 777 was never used for training or validation: one patient at the smallest trained scale."""
    from ra2.detection.detect import JointDetector, evaluate_detection
    from ra2.phantom import generate_dataset

    generate_dataset(tmp_path, train_patients=0, test_patients=1, seed=777, size_scale=0.35, workers=1)
    result = evaluate_detection(None, tmp_path / "test", tmp_path / "gold_annotations.json",
                                detector=JointDetector.load(WEIGHTS / "detectors"))
    for name in contract.DETECTORS:
        assert result[name]["hit_rate_iou50"] >= 0.9, (name, result[name])
    assert result["hands"]["carpus"]["hit_rate_iou50"] == 1.0
    assert result["films_with_default_layout"] == 0


def test_model_card_exists_and_disclaims_diagnostic_use():
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    assert "not for diagnostic use" in card.lower()
    assert "phantom" in card.lower() and "retrain" in card.lower()
