"""The whole pipeline: Predictor wiring with fake stages, and `ra2 run` end to end (train, save, load, predict,
validate) with the shipped detectors and the smoke regressors."""

import json

import numpy as np
import pytest

from ra2 import contract, io
from ra2.annotations import read_annotations
from ra2.cli import main
from ra2.detection.detect import FilmDetection
from ra2.models_folder import shipped_detectors
from ra2.pipeline.predict import Predictor

from conftest import PHANTOM, film_removed, film_replaced

FAKE_SCORE = {"foot_erosion": 1.5, "hand_erosion": 2.0, "narrowing": 0.5}


class OracleDetector:
    """Returns the ground-truth site boxes of each film; records the calls."""

    def __init__(self, annotations):
        self.truth = {(a.patient_id, a.limb): a for a in annotations}
        self.calls = []

    def detect_film(self, film, limb):
        pid = next(p for (p, lb), a in self.truth.items() if lb == limb and (a.height, a.width) == film.shape
                   and (p, lb) not in {c[:2] for c in self.calls})
        self.calls.append((pid, limb, film.shape))
        ann = self.truth[(pid, limb)]
        return FilmDetection(limb=limb, boxes={o.site_id: o.box for o in ann.objects if o.site_id},
                             sources={o.site_id: "detected" for o in ann.objects if o.site_id},
                             carpus_box=ann.carpus_box)


class ConstantEnsemble:
    def __init__(self, dataset):
        self.dataset, self.input_size, self.margin = dataset, 16, 0.2
        self.batches = []

    def predict(self, images, tta=None):
        self.batches.append(images.shape)
        return np.full(len(images), FAKE_SCORE[self.dataset])

    predict_clipped = predict

    def predict_with_spread(self, images, tta=None, cut=True):
        return self.predict(images), np.full(len(images), 0.1)


def test_predictor_wires_detections_crops_and_ensembles(phantom):
    ensembles = {d: ConstantEnsemble(d) for d in contract.DATASETS}
    detector = OracleDetector(read_annotations(phantom / "gold_annotations.json"))
    template = io.read_template_csv(phantom / "test" / "template.csv")
    with film_removed(phantom / "test" / f"{template[contract.PATIENT_COLUMN][1]}-RF.jpg"):
        means = {c: 0.25 for c in contract.JOINT_COLUMNS}
        result = Predictor(detector, ensembles, training_means=means).predict(phantom / "test", template)
    frame = result.predictions
    assert list(frame.columns) == list(contract.COLUMNS)
    assert frame[contract.PATIENT_COLUMN].tolist() == template[contract.PATIENT_COLUMN].tolist()
    assert len(detector.calls) == 7  # 2 patients x 4 limbs, one film missing
    for row in range(2):
        for score in contract.SCORES:
            # the missing right foot: its left foot's prediction averaged with the training mean
            expected = (FAKE_SCORE[score.dataset] + 0.25) / 2 if (row == 1 and score.limb == "RF") \
                else FAKE_SCORE[score.dataset]
            assert frame.loc[row, score.column] == expected, score.column
    erosion = frame[list(contract.EROSION_COLUMNS)].sum(axis=1)
    narrowing = frame[list(contract.NARROWING_COLUMNS)].sum(axis=1)
    assert np.allclose(frame[contract.OVERALL_EROSION], erosion)
    assert np.allclose(frame[contract.OVERALL_TOTAL], erosion + narrowing)
    # every crop has the ensemble's input size; 56 sites x 2 patients minus the missing foot's 6 sites
    assert all(shape[1:] == (16, 16) for e in ensembles.values() for shape in e.batches)
    n_scores = sum(shape[0] for e in ensembles.values() for shape in e.batches)
    assert n_scores == 2 * 86 - len(contract.limb_columns("RF"))
    # the spread of every joint with a crop (the fake's 0.1), none where the film is missing
    spread = result.spread
    assert spread[contract.PATIENT_COLUMN].tolist() == frame[contract.PATIENT_COLUMN].tolist()
    rf = list(contract.limb_columns("RF"))
    assert spread.loc[1, rf].isna().all() and (spread.loc[0, rf] == 0.1).all()
    assert (spread.drop(columns=rf + [contract.PATIENT_COLUMN]) == 0.1).all().all()
    record = result.detections.to_dict()
    assert record["box_sources"][f"{template[contract.PATIENT_COLUMN][0]}-LH"]["LH_pip__2"] == "detected"
    # the hands detector's carpus box of every hand film, for `ra2 review export` (the carpus class's examples)
    hands = {f"{p}-{lb}": list(a.carpus_box) for (p, lb), a in detector.truth.items() if lb in contract.HAND_LIMBS}
    assert record["carpus"] == hands and len(hands) == 4


def test_predictor_applies_the_context_model_before_the_missing_film_fallback(phantom):
    from ra2.scoring.context import FEATURES, ContextModel

    # log2(y + 1) = log2(p + 1) + 1, i.e. y = 2p + 1: every joint with a crop moves from p to 2p + 1
    w = [1.0] + [0.0] * (len(FEATURES) - 1) + [1.0]
    # the totals: Overall_Tol = 2^(0.5 log2(S + 1) + 1) - 1 of the joints' sum S; the other two stay sums
    model = ContextModel(weights={d: w for d in contract.DATASETS}, thresholds={d: 0.0 for d in contract.DATASETS},
                         fill={c: 0.0 for c in contract.JOINT_COLUMNS}, totals={contract.OVERALL_TOTAL: [0.5, 1.0]})
    detector = OracleDetector(read_annotations(phantom / "gold_annotations.json"))
    template = io.read_template_csv(phantom / "test" / "template.csv")
    with film_removed(phantom / "test" / f"{template[contract.PATIENT_COLUMN][0]}-LH.jpg"):
        frame = Predictor(detector, {d: ConstantEnsemble(d) for d in contract.DATASETS},
                          training_means={c: 0.25 for c in contract.JOINT_COLUMNS}, context=model
                          ).predict(phantom / "test", template).predictions
    for row in range(2):
        for score in contract.SCORES:
            corrected = 2 * FAKE_SCORE[score.dataset] + 1
            expected = (corrected + 0.25) / 2 if (row == 0 and score.limb == "LH") else corrected
            assert frame.loc[row, score.column] == pytest.approx(expected), score.column
    assert np.allclose(frame[contract.OVERALL_EROSION], frame[list(contract.EROSION_COLUMNS)].sum(axis=1))
    assert np.allclose(frame[contract.OVERALL_NARROWING], frame[list(contract.NARROWING_COLUMNS)].sum(axis=1))
    total = frame[list(contract.JOINT_COLUMNS)].sum(axis=1).to_numpy()  # the fallback joints included
    assert np.allclose(frame[contract.OVERALL_TOTAL], 2.0 * np.sqrt(total + 1) - 1)


class FailingDetector(OracleDetector):
    """The oracle, except that detection raises on one (patient, limb) and one site's box is not finite."""

    def __init__(self, annotations, fail_on, nan_site):
        super().__init__(annotations)
        self.fail_on, self.nan_site = fail_on, nan_site

    def detect_film(self, film, limb):
        found = super().detect_film(film, limb)
        if self.calls[-1][:2] == self.fail_on:
            raise RuntimeError("Incompatible shapes: [0,14,14,16] vs. [256]")
        if self.nan_site in found.boxes:
            found.boxes[self.nan_site] = (float("nan"),) * 4
        return found


class BrokenEnsemble(ConstantEnsemble):
    def predict(self, images, tta=None):
        raise MemoryError("out of memory")

    predict_clipped = predict


@pytest.mark.parametrize("patients_per_chunk", [16, 1])
def test_predictor_costs_the_smallest_unit_of_each_failure(phantom, caplog, patients_per_chunk):
    """An unreadable film costs its limb, a detection failure its limb, a bad box its joint, a failing ensemble
    its data set; each joint takes the other side's estimate where the other side was predicted, else the
    training mean; nothing else changes and the run goes on."""
    template = io.read_template_csv(phantom / "test" / "template.csv")
    p0, p1 = template[contract.PATIENT_COLUMN].tolist()
    detector = FailingDetector(read_annotations(phantom / "gold_annotations.json"), fail_on=(p1, "LF"),
                               nan_site="LH_pip__3")
    ensembles = {d: ConstantEnsemble(d) for d in ("foot_erosion", "narrowing")}
    ensembles["hand_erosion"] = BrokenEnsemble("hand_erosion")
    means = {c: 0.25 for c in contract.JOINT_COLUMNS}
    good = phantom / "test" / f"{p0}-RH.jpg"
    with film_replaced(good, good.read_bytes()[:300]):  # a truncated JPEG
        predictor = Predictor(detector, ensembles, training_means=means,
                              patients_per_chunk=patients_per_chunk)  # one patient at a time: the same answer
        result = predictor.predict(phantom / "test", template)
    frame = result.predictions
    # the frame is complete: no NaN anywhere, sums consistent
    assert not frame[list(contract.COLUMNS[1:])].isna().any().any()
    assert np.allclose(frame[contract.OVERALL_TOTAL], frame[list(contract.JOINT_COLUMNS)].sum(axis=1))

    def expected(row, score):
        lost_limb = (row == 0 and score.limb == "RH") or (row == 1 and score.limb == "LF")
        other_limb = {"LH": "RH", "RH": "LH", "LF": "RF", "RF": "LF"}[score.limb]
        other_lost = (row == 0 and other_limb == "RH") or (row == 1 and other_limb == "LF")
        other_column = other_limb + score.column[2:]
        other_site_bad = row in (0, 1) and other_column.startswith("LH_pip_") and other_column.endswith("__3")
        own_bad = score.dataset == "hand_erosion" or lost_limb or \
            (score.column.startswith("LH_pip_") and score.column.endswith("__3"))
        if not own_bad:
            return FAKE_SCORE[score.dataset]
        other_bad = score.dataset == "hand_erosion" or other_lost or other_site_bad
        return 0.25 if other_bad else (FAKE_SCORE[score.dataset] + 0.25) / 2

    for row in range(2):
        for score in contract.SCORES:
            assert frame.loc[row, score.column] == pytest.approx(expected(row, score)), (row, score.column)
    # the spread (the fake's 0.1) exactly where a network predicted, in the frame's rows, whatever the chunks
    spread = result.spread
    assert spread[contract.PATIENT_COLUMN].tolist() == [p0, p1]
    for row in range(2):
        for score in contract.SCORES:
            lost = (row == 0 and score.limb == "RH") or (row == 1 and score.limb == "LF")
            bad_box = score.column.startswith("LH_pip_") and score.column.endswith("__3")
            networked = not (lost or bad_box or score.dataset == "hand_erosion")
            value = spread.loc[row, score.column]
            assert (value == 0.1) if networked else np.isnan(value), (row, score.column)
    run = result.run
    assert run["films_read"] == 7 and run["missing_films"] == []
    assert run["failed_films"][f"{p0}-RH"]["reason"] == "film_unreadable"
    assert f"{p0}-RH.jpg" in run["failed_films"][f"{p0}-RH"]["message"]
    assert run["failed_films"][f"{p1}-LF"]["reason"] == "detection_failed"
    assert run["scoring_failures"] == {"hand_erosion": "MemoryError: out of memory"}
    n_rh, n_lf = len(contract.limb_columns("RH")), len(contract.limb_columns("LF"))
    n_hand_erosion = len(contract.scores_of_dataset("hand_erosion"))
    by_reason = run["fallback_joints"]["by_reason"]
    assert by_reason["film_unreadable"] == n_rh and by_reason["detection_failed"] == n_lf
    # the bad LH_pip__3 box: both its joints (erosion and narrowing) on both patients
    assert by_reason["crop_failed"] == 2 * len(contract.scores_of_site("LH_pip__3")) == 4
    # hand erosion where nothing failed first: 2 patients' hands, less the unreadable right hand's and the two
    # LH_pip_E__3 already counted as crop failures
    rh_erosion = [s for s in contract.scores_of_dataset("hand_erosion") if s.limb == "RH"]
    assert by_reason["scoring_failed"] == 2 * n_hand_erosion - len(rh_erosion) - 2
    assert sum(by_reason.values()) == run["fallback_joints"]["total"] == \
        sum(run["fallback_joints"]["by_estimate"].values())
    assert caplog.text.count("film unreadable") == 1 and caplog.text.count("detection failed") == 1


def test_run_without_joint_annotations_keeps_the_fallback(phantom, tmp_path, monkeypatch, caplog):
    train = tmp_path / "train"
    train.mkdir()
    (train / "training.csv").write_bytes((phantom / "train" / "training.csv").read_bytes())
    monkeypatch.setenv("RA2_PROFILE", "smoke")
    monkeypatch.setenv("RA2_DETECTORS", str(tmp_path / "no-detectors"))  # no shipped detectors either
    out = tmp_path / "output"
    assert main(["run", "--train", str(train), "--test", str(phantom / "test"), "--output", str(out),
                 "--work", str(tmp_path / "work")]) == 0
    pred = io.read_predictions_csv(out / "predictions.csv")
    train_df = io.read_training_csv(train / "training.csv")
    assert pred["LH_pip_E__2"].tolist() == pytest.approx([train_df["LH_pip_E__2"].mean()] * 2)
    assert "not a complete set of trained detectors" in caplog.text


@pytest.mark.thorough
def test_run_trains_saves_loads_predicts_and_validates(phantom, tmp_path, monkeypatch):
    """``ra2 run`` with the smoke regressors and the shipped detectors: Trainer.fit writes every model file,
    Predictor.load reads them back, the predictions are the model's and valid."""
    monkeypatch.setenv("RA2_PROFILE", "smoke")
    monkeypatch.delenv("RA2_DETECTORS", raising=False)
    assert shipped_detectors() is not None, "weights/detectors must hold the shipped detectors"
    out, work = tmp_path / "output", tmp_path / "work"
    assert main(["run", "--train", str(phantom / "train"), "--test", str(phantom / "test"),
                 "--output", str(out), "--work", str(work)]) == 0
    assert io.validate_predictions(out / "predictions.csv", phantom / "test" / "template.csv") == []
    # no temporary left behind
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv", "run.json", "run_summary.json"]
    run_summary = json.loads((out / "run_summary.json").read_text())
    assert run_summary["status"] == "ok" and run_summary["predictions_from"] == "model"
    assert run_summary["patients"] == PHANTOM["test_patients"]
    assert run_summary["model"]["prediction"]["films_read"] == 4 * PHANTOM["test_patients"]
    assert run_summary["model"]["prediction"]["fallback_joints"]["total"] == 0
    assert run_summary["environment"]["tensorflow"] and run_summary["peak_memory_mb"] > 100
    assert set(run_summary["seconds"]) >= {"fallback", "model", "total"}
    models = work / "models"
    summary = json.loads((models / "pipeline.json").read_text())
    assert summary["profile"] == "smoke" and summary["films"] == 4 * PHANTOM["train_patients"]
    assert summary["detectors"]["source"].startswith("copied from")
    assert (models / "environment.json").is_file() and (out / "run.json").is_file()
    for d in contract.DETECTORS:
        for f in ("config.json", "model.weights.h5", "layout.json", "metadata.json"):
            assert (models / "detectors" / d / f).is_file()
    boxes = json.loads((models / "training_boxes.json").read_text())
    assert len(boxes["films"]) == 4 * PHANTOM["train_patients"] and boxes["missing_films"] == []
    assert sum(boxes["sources"].values()) == PHANTOM["train_patients"] * len(contract.SITES)
    assert (models / "regressors" / "context.json").is_file()  # the patient context stage was fitted
    assert set(summary["context"]["cross_fitted"]) == set(contract.DATASETS)
    run = json.loads((models / "prediction_run.json").read_text())
    assert sum(run["box_sources"].values()) == PHANTOM["test_patients"] * len(contract.SITES)
    assert run["joints_from_training_means"] == 0
    pred = io.read_predictions_csv(out / "predictions.csv")
    gold = io.read_gold_csv(phantom / "gold.csv")
    assert pred.shape == gold.shape
    # the model's numbers, not the fallback's: the fallback would be the exact training means
    train_df = io.read_training_csv(phantom / "train" / "training.csv")
    means = train_df[list(contract.JOINT_COLUMNS)].mean().to_numpy()
    model = pred[list(contract.JOINT_COLUMNS)].to_numpy()
    assert len(model) == PHANTOM["test_patients"]
    for patient, row in zip(pred["Patient_ID"], model):  # every patient's row, not only the first
        assert not np.allclose(row, means), f"{patient}: the training means, not the model's predictions"
    # same seed, same CSV: a second run from scratch (its own work folder) writes the same bytes
    again = tmp_path / "again"
    assert main(["run", "--train", str(phantom / "train"), "--test", str(phantom / "test"),
                 "--output", str(again / "output"), "--work", str(again / "work")]) == 0
    assert (again / "output" / "predictions.csv").read_bytes() == (out / "predictions.csv").read_bytes()


def test_shipped_detectors_are_the_first_complete_folder(tmp_path):
    assert shipped_detectors((tmp_path / "none", tmp_path / "ship")) is None
    for d in contract.DETECTORS:
        (tmp_path / "ship" / d).mkdir(parents=True)
        for f in ("config.json", "model.weights.h5", "layout.json", "metadata.json"):
            (tmp_path / "ship" / d / f).write_text("{}")
    assert shipped_detectors((tmp_path / "none", tmp_path / "ship")) == tmp_path / "ship"
