"""bench/evaluate_regressors.py: held-out patients predicted by the pipeline's Predictor from ground-truth (and
detected) boxes, scored against the baseline, with numbers recomputed here from the CSVs."""

import numpy as np
import pytest
from evaluate_regressors import evaluate, markdown

from ra2 import Ra2Error, contract, io
from ra2.metrics import per_joint_log2_rmse, score, weights_from_total
from ra2.scoring.context import load_context
from ra2.scoring.metrics import log2_rmse
from ra2.scoring.totals import TOTAL_PARTS, calibrated_total


def test_one_data_set_is_scored_against_the_baseline_from_the_csvs(phantom, tmp_path):
    result = evaluate(phantom, tmp_path / "ev", profile="smoke", datasets=["narrowing"], progress=False)
    assert list(result["variants"]) == ["ground_truth_boxes"]
    res = result["variants"]["ground_truth_boxes"]
    assert list(res) == ["ensembles"]  # no context model without all three data sets
    train = io.read_training_csv(phantom / "train" / "training.csv")
    gold = io.read_gold_csv(phantom / "gold.csv")
    cols = list(contract.NARROWING_COLUMNS)
    mean = train[cols].mean().to_numpy()
    g = res["ensembles"]["groups"]["narrowing"]
    assert g["baseline_log2_rmse"] == pytest.approx(log2_rmse(np.tile(mean, (len(gold), 1)), gold[cols].to_numpy()))
    assert g["n_joints"] == len(gold) * len(cols)
    assert g["improvement"] == pytest.approx(1 - g["ensemble_log2_rmse"] / g["baseline_log2_rmse"])
    # Official SC2 of the baseline, by hand: per-patient RMSE in log2 space, weighted by the gold total.
    off = res["ensembles"]["official"]
    assert set(off) == {"sc2", "all"}  # SC3 needs both erosion data sets
    per_patient = np.sqrt(np.mean((np.log2(mean + 1) - np.log2(gold[cols].to_numpy() + 1)) ** 2, axis=1))
    w = weights_from_total(gold["Overall_Tol"].to_numpy(dtype=float))
    assert off["sc2"]["baseline"] == pytest.approx(float((w * per_patient).sum() / w.sum()))
    # The model's frame: narrowing cells from the ensemble, every erosion cell its training mean (no ensemble)
    frame = io.read_predictions_csv(tmp_path / "ev" / "predictions_ground_truth_boxes_ensembles.csv")
    assert tuple(frame.columns) == contract.COLUMNS
    assert per_joint_log2_rmse(frame, gold, cols) == pytest.approx(g["ensemble_log2_rmse"])
    ecols = list(contract.EROSION_COLUMNS)
    np.testing.assert_allclose(frame[ecols].to_numpy(), np.tile(train[ecols].mean().to_numpy(), (len(frame), 1)))
    assert res["ensembles"]["joints_from_training_means"] == len(gold) * len(ecols)
    assert off["sc2"]["ensemble"] == pytest.approx(score(frame, gold)["sc2"])
    text = markdown(result)
    assert "| narrowing |" in text and "| SC2 |" in text
    # Scoring the trained ensembles again without training gives the same numbers.
    again = evaluate(phantom, tmp_path / "ev2", datasets=["narrowing"], progress=False,
                     ensembles_dir=tmp_path / "ev" / "ensembles")
    assert again["variants"] == result["variants"]
    with pytest.raises(Ra2Error, match="no trained hand_erosion"):
        evaluate(phantom, tmp_path / "ev3", datasets=["hand_erosion"], ensembles_dir=tmp_path / "ev" / "ensembles")


@pytest.mark.thorough
def test_all_data_sets_with_context_and_detected_boxes(phantom, tmp_path):
    from ra2.models_folder import shipped_detectors

    result = evaluate(phantom, tmp_path / "ev", profile="smoke", progress=False, detectors_dir=shipped_detectors())
    gold = io.read_gold_csv(phantom / "gold.csv")
    context = load_context(tmp_path / "ev" / "ensembles")
    assert set(context.totals) == set(TOTAL_PARTS)
    for variant in ("ground_truth_boxes", "detected_boxes"):
        for ctx in ("ensembles", "with_context"):
            frame = io.read_predictions_csv(tmp_path / "ev" / f"predictions_{variant}_{ctx}.csv")
            # Without the context stage the totals are the sums of the joints; with it, the totals the context
            # model calibrated on those sums (computed here from its (a, c) pairs).
            for total, parts in TOTAL_PARTS.items():
                joint_sum = frame[list(parts)].sum(axis=1).to_numpy()
                expected = joint_sum if ctx == "ensembles" else calibrated_total(joint_sum, *context.totals[total],
                                                                                 total)
                np.testing.assert_allclose(frame[total].to_numpy(), expected, rtol=1e-5, atol=1e-3)
            official = result["variants"][variant][ctx]["official"]
            assert official["sc3"]["ensemble"] == pytest.approx(score(frame, gold)["sc3"])
            assert official["sc3"]["baseline"] == result["variants"]["ground_truth_boxes"]["ensembles"][
                "official"]["sc3"]["baseline"]
    assert result["variants"]["ground_truth_boxes"]["ensembles"]["box_sources"] == {}  # not detected
    detected = result["variants"]["detected_boxes"]["ensembles"]["box_sources"]
    assert sum(detected.values()) == len(gold) * len(contract.SITES)
    loss = result["loss_to_detection"]["with_context"]
    gt = result["variants"]["ground_truth_boxes"]["with_context"]["official"]["all"]["ensemble"]
    det = result["variants"]["detected_boxes"]["with_context"]["official"]["all"]["ensemble"]
    assert "sc1" in loss and set(loss) <= {"sc1", "sc2", "sc3"}  # SC2/SC3 are NA when every joint is 0
    for key, value in loss.items():
        assert value == pytest.approx(det[key] / gt[key] - 1)
    assert "detected vs ground-truth boxes" in markdown(result)
