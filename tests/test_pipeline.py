"""The whole pipeline: Predictor wiring with fake stages (fast), Trainer/Predictor end to end (slow)."""

import json
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from ra2 import contract, io
from ra2.cli import main
from ra2.detection.detect import FilmDetection
from ra2.phantom import generate_dataset, read_annotations
from ra2.phantom.annotations import write_annotations
from ra2.pipeline import Predictor, detection_annotation

FAKE_SCORE = {"foot_erosion": 1.5, "hand_erosion": 2.0, "narrowing": 0.5}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    generate_dataset(root, train_patients=2, test_patients=2, seed=11, size_scale=0.15, workers=1)
    return root


class OracleDetector:
    """Returns the ground-truth site boxes of each film; records the calls."""

    def __init__(self, annotations):
        self.truth = {(a.patient_id, a.limb): a for a in annotations}
        self.calls = []

    def detect_film(self, film, limb):
        pid = next(p for (p, l), a in self.truth.items() if l == limb and (a.height, a.width) == film.shape
                   and (p, l) not in {c[:2] for c in self.calls})
        self.calls.append((pid, limb, film.shape))
        ann = self.truth[(pid, limb)]
        return FilmDetection(limb=limb, boxes={o.site_id: o.box for o in ann.objects if o.site_id},
                             sources={o.site_id: "detected" for o in ann.objects if o.site_id})


class ConstantEnsemble:
    def __init__(self, dataset):
        self.dataset, self.input_size, self.margin = dataset, 16, 0.2
        self.batches = []

    def predict(self, images, tta=None):
        self.batches.append(images.shape)
        return np.full(len(images), FAKE_SCORE[self.dataset])

    predict_clipped = predict


@contextmanager
def film_removed(path):
    """``path`` deleted for the duration of the block, restored byte for byte afterwards."""
    kept = path.read_bytes()
    path.unlink()
    try:
        yield
    finally:
        path.write_bytes(kept)


def test_predictor_wires_detections_crops_and_ensembles(phantom):
    ensembles = {d: ConstantEnsemble(d) for d in contract.DATASETS}
    detector = OracleDetector(read_annotations(phantom / "gold_annotations.json"))
    template = io.read_template_csv(phantom / "test" / "template.csv")
    with film_removed(phantom / "test" / f"{template[contract.PATIENT_COLUMN][1]}-RF.jpg"):
        means = {c: 0.25 for c in contract.JOINT_COLUMNS}
        frame = Predictor(detector, ensembles, training_means=means).predict(phantom / "test", template)
    assert list(frame.columns) == list(contract.COLUMNS)
    assert frame[contract.PATIENT_COLUMN].tolist() == template[contract.PATIENT_COLUMN].tolist()
    assert len(detector.calls) == 7  # 2 patients x 4 limbs, one film missing
    for row in range(2):
        for score in contract.SCORES:
            expected = 0.25 if (row == 1 and score.limb == "RF") else FAKE_SCORE[score.dataset]
            assert frame.loc[row, score.column] == expected, score.column
    erosion = frame[list(contract.EROSION_COLUMNS)].sum(axis=1)
    narrowing = frame[list(contract.NARROWING_COLUMNS)].sum(axis=1)
    assert np.allclose(frame[contract.OVERALL_EROSION], erosion)
    assert np.allclose(frame[contract.OVERALL_TOTAL], erosion + narrowing)
    # every crop has the ensemble's input size; 56 sites x 2 patients minus the missing foot's 6 sites
    assert all(shape[1:] == (16, 16) for e in ensembles.values() for shape in e.batches)
    n_scores = sum(shape[0] for e in ensembles.values() for shape in e.batches)
    assert n_scores == 2 * 86 - len(contract.limb_columns("RF"))


def test_predictor_applies_the_context_model_before_the_missing_film_means(phantom):
    from ra2.scoring.context import FEATURES, ContextModel

    # log2(y + 1) = log2(p + 1) + 1, i.e. y = 2p + 1: every joint with a crop moves from p to 2p + 1
    w = [1.0] + [0.0] * (len(FEATURES) - 1) + [1.0]
    model = ContextModel(weights={d: w for d in contract.DATASETS}, thresholds={d: 0.0 for d in contract.DATASETS},
                         fill={c: 0.0 for c in contract.JOINT_COLUMNS})
    detector = OracleDetector(read_annotations(phantom / "gold_annotations.json"))
    template = io.read_template_csv(phantom / "test" / "template.csv")
    with film_removed(phantom / "test" / f"{template[contract.PATIENT_COLUMN][0]}-LH.jpg"):
        frame = Predictor(detector, {d: ConstantEnsemble(d) for d in contract.DATASETS},
                          training_means={c: 0.25 for c in contract.JOINT_COLUMNS}, context=model
                          ).predict(phantom / "test", template)
    for row in range(2):
        for score in contract.SCORES:
            expected = 0.25 if (row == 0 and score.limb == "LH") else 2 * FAKE_SCORE[score.dataset] + 1
            assert frame.loc[row, score.column] == pytest.approx(expected), score.column
    assert np.allclose(frame[contract.OVERALL_EROSION], frame[list(contract.EROSION_COLUMNS)].sum(axis=1))


def test_detected_boxes_round_trip_through_the_annotation_format(tmp_path):
    boxes = {s.id: (10.0 + i, 20.0, 30.5 + i, 44.25) for i, s in enumerate(contract.sites_of_limb("RH"))}
    found = FilmDetection(limb="RH", boxes=boxes, carpus_box=(50.2, 60.7, 90.1, 99.9))
    ann = detection_annotation("P1", "RH", "P1-RH.jpg", (120, 100), found)
    write_annotations(tmp_path / "a.json", [ann])
    back = read_annotations(tmp_path / "a.json")[0]
    assert back.carpus_box == (50, 60, 91, 100)
    assert {o.site_id for o in back.objects} == set(boxes)
    for o in back.objects:
        assert o.box == pytest.approx(boxes[o.site_id], abs=0.005)  # written to 0.01 px
    for o in back.objects:
        assert o.detector == contract.SITE_BY_ID[o.site_id].detector


def test_run_without_joint_annotations_keeps_the_fallback(phantom, tmp_path, monkeypatch, caplog):
    train = tmp_path / "train"
    train.mkdir()
    (train / "training.csv").write_bytes((phantom / "train" / "training.csv").read_bytes())
    monkeypatch.setenv("RA2_PROFILE", "smoke")
    monkeypatch.delenv("RA2_DETECTORS", raising=False)
    out = tmp_path / "output"
    assert main(["run", "--train", str(train), "--test", str(phantom / "test"), "--output", str(out),
                 "--work", str(tmp_path / "work")]) == 0
    pred = io.read_predictions_csv(out / "predictions.csv")
    train_df = io.read_training_csv(train / "training.csv")
    assert pred["LH_pip_E__2"].tolist() == pytest.approx([train_df["LH_pip_E__2"].mean()] * 2)
    assert "annotations" in caplog.text


@pytest.mark.slow
def test_smoke_trainer_and_predictor_end_to_end(phantom, tmp_path, monkeypatch):
    """ra2 run with the smoke profile: detectors and regressors trained, predictions written (~6 min)."""
    monkeypatch.setenv("RA2_PROFILE", "smoke")
    out, work = tmp_path / "output", tmp_path / "work"
    assert main(["run", "--train", str(phantom / "train"), "--test", str(phantom / "test"),
                 "--output", str(out), "--work", str(work)]) == 0
    assert io.validate_predictions(out / "predictions.csv", phantom / "test" / "template.csv") == []
    models = work / "models"
    summary = json.loads((models / "pipeline.json").read_text())
    assert summary["profile"] == "smoke" and summary["films"] == 8
    assert (models / "environment.json").is_file()
    for d in contract.DETECTORS:
        for f in ("config.json", "model.weights.h5", "layout.json", "metadata.json"):
            assert (models / "detectors" / d / f).is_file()
    assert (models / "regressors" / "context.json").is_file()  # the patient context stage was fitted
    assert set(summary["context"]["cross_fitted"]) == set(contract.DATASETS)
    run = json.loads((models / "prediction_run.json").read_text())
    assert sum(run["box_sources"].values()) == 2 * len(contract.SITES)
    pred = io.read_predictions_csv(out / "predictions.csv")
    gold = pd.read_csv(phantom / "gold.csv")
    assert pred.shape == gold.shape
    # the model's numbers, not the fallback's: the fallback would be the exact training means
    train_df = io.read_training_csv(phantom / "train" / "training.csv")
    means = train_df[list(contract.JOINT_COLUMNS)].mean().to_numpy()
    assert not np.allclose(pred[list(contract.JOINT_COLUMNS)].to_numpy()[0], means)


def test_shipped_detectors_come_from_the_environment_or_a_complete_folder(tmp_path, monkeypatch):
    import ra2.pipeline as pipeline

    assert pipeline.shipped_detectors({"RA2_DETECTORS": str(tmp_path)}) == tmp_path
    monkeypatch.setattr(pipeline, "SHIPPED_DETECTORS", (tmp_path / "none", tmp_path / "ship"))
    assert pipeline.shipped_detectors({}) is None
    for d in contract.DETECTORS:
        (tmp_path / "ship" / d).mkdir(parents=True)
        for f in ("config.json", "model.weights.h5", "layout.json", "metadata.json"):
            (tmp_path / "ship" / d / f).write_text("{}")
    assert pipeline.shipped_detectors({}) == tmp_path / "ship"
