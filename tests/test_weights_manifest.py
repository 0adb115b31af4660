"""weights/: every shipped file is listed in manifest.json with its size and sha256, nothing else ships, the
four detectors are complete, load, and find the joints of a phantom film they never saw."""

import hashlib
import json
import math
from pathlib import Path

import pytest

from ra2 import contract
from ra2.models_folder import DETECTOR_FILES

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
DOCS = {"manifest.json", "MODEL_CARD.md"}


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


CARD_ROWS = {"feet": "feet", "hands": "hands (10 joints)", "carpus": "hands: carpus box",
             "wrist_erosion": "wrist erosion", "wrist_narrowing": "wrist narrowing"}
CARD_SCALES = (0.35, 1.0)


def card_recall() -> dict[float, dict[str, float]]:
    """The model card's held-out recall (IoU >= 0.5) per size scale and detector (``carpus``: the hand
    detector's carpus box), read from its "Measured performance" table, so the guard follows the card."""
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    table = card[card.index("## Measured performance"):]
    found: dict[float, dict[str, float]] = {s: {} for s in CARD_SCALES}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for key, label in CARD_ROWS.items():
            if cells[0] == label and key not in found[CARD_SCALES[0]]:
                for scale, cell in zip(CARD_SCALES, cells[2:4]):
                    found[scale][key] = float(cell)
    assert all(set(v) == set(CARD_ROWS) for v in found.values()), f"the card's recall table changed: {found}"
    return found


def recall_on_held_out(detector, folder, patients: int, scale: float, seed: int) -> dict[str, float]:
    from ra2.detection.detect import evaluate_detection
    from ra2.phantom import generate_dataset

    generate_dataset(folder, train_patients=0, test_patients=patients, seed=seed, size_scale=scale, workers=1)
    result = evaluate_detection(None, folder / "test", folder / "gold_annotations.json", detector=detector)
    assert result["films_with_default_layout"] == 0
    got = {name: result[name]["hit_rate_iou50"] for name in contract.DETECTORS}
    got["carpus"] = result["hands"]["carpus"]["hit_rate_iou50"]
    got["n_sites"] = {name: result[name]["n_sites"] for name in contract.DETECTORS}
    return got


def test_card_recall_table_is_read():
    card = card_recall()
    assert all(0.9 <= v <= 1.0 for scale in card.values() for v in scale.values())


@pytest.mark.parametrize("scale", CARD_SCALES)
def test_shipped_detectors_find_the_joints_of_an_unseen_phantom_patient(shipped_detector, tmp_path, scale):
    """Fast tier: one patient of seed 777 (never used for training or validation) at each of the card's two
    scales; each detector's recall at least the card's rate rounded down to what the patient's sites can show,
    less one site: one patient is a small sample of a rate the card measured on 20 (12 foot sites: 1.000 -> 11
    of 12; the retrained feet detector misses one MTP box of this patient at 0.35 with IoU < 0.5). A detector
    that stops working misses far more (weights perturbed by 0.7 x their spread also place films by the
    default layout, which fails the check in ``recall_on_held_out``); the thorough tier holds the card's
    20-patient figures to 0.005."""
    got = recall_on_held_out(shipped_detector, tmp_path, patients=1, scale=scale, seed=777)
    for key, want in card_recall()[scale].items():
        sites = got["n_sites"].get(key, 2)  # the carpus: one box per hand film
        floor = (math.floor(want * sites + 1e-9) - 1) / sites
        assert got[key] >= floor - 1e-9, (key, scale, got[key], want)


@pytest.mark.thorough
@pytest.mark.parametrize("scale", CARD_SCALES)
def test_shipped_detectors_reach_the_model_cards_held_out_recall(shipped_detector, tmp_path, scale):
    """Thorough tier: the card's own measurement (seed 3003, 20 patients at each scale, `ra2 eval-detectors`)
    reproduced within 0.005 (two hand sites of 400): the card and the weights must agree."""
    got = recall_on_held_out(shipped_detector, tmp_path, patients=20, scale=scale, seed=3003)
    for key, want in card_recall()[scale].items():
        assert abs(got[key] - want) <= 0.005, (key, scale, got[key], want)


def test_model_card_exists_and_disclaims_diagnostic_use():
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    assert "not for diagnostic use" in card.lower()
    assert "phantom" in card.lower() and "retrain" in card.lower()
