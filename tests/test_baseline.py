"""ra2.baseline: the training-mean predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error
from ra2 import contract as C
from ra2 import io as rio
from ra2 import metrics as M
from ra2.baseline import predict_means, training_means

from csv_factory import score_frame, template_frame, write_csv


def test_training_means_by_hand():
    train = score_frame(["a", "b", "c", "d"], seed=3)
    train["LH_pip_J__2"] = [0.0, 1.0, 4.0, 2.0]
    train["LF_mtp_E__1"] = [10.0, 0.0, 0.0, 0.0]
    means = training_means(train)
    assert list(means) == list(C.JOINT_COLUMNS)
    assert means["LH_pip_J__2"] == pytest.approx(7.0 / 4.0)
    assert means["LF_mtp_E__1"] == pytest.approx(2.5)


def test_predict_means_rows_columns_and_sums():
    train = score_frame([f"T{i}" for i in range(5)], seed=8)
    template = template_frame(["0007", "X1"])
    pred = predict_means(train, template)
    assert list(pred.columns) == list(C.COLUMNS)
    assert list(pred[C.PATIENT_COLUMN]) == ["0007", "X1"]
    for col in ("RH_wrist_E__ulna", "LF_mtp_J__ip"):
        assert pred[col].tolist() == [pytest.approx(train[col].sum() / 5)] * 2
    erosion = sum(train[c].sum() / 5 for c in C.EROSION_COLUMNS)
    narrowing = sum(train[c].sum() / 5 for c in C.NARROWING_COLUMNS)
    np.testing.assert_allclose(pred[C.OVERALL_EROSION], erosion)
    np.testing.assert_allclose(pred[C.OVERALL_NARROWING], narrowing)
    np.testing.assert_allclose(pred[C.OVERALL_TOTAL], erosion + narrowing)
    # training Overall_* sums hold, so the summed means equal the mean of the training totals
    assert erosion + narrowing == pytest.approx(train[C.OVERALL_TOTAL].mean())


def test_baseline_end_to_end_writes_a_valid_scorable_file(tmp_path):
    train = score_frame([f"T{i}" for i in range(6)], seed=1)
    gold = score_frame(["G1", "G2", "G3"], seed=2)
    write_csv(template_frame(["G1", "G2", "G3"]), tmp_path / "template.csv")
    template = rio.read_template_csv(tmp_path / "template.csv")
    out = rio.write_predictions(predict_means(train, template), template, tmp_path / "predictions.csv")
    assert rio.validate_predictions(out, tmp_path / "template.csv") == []
    write_csv(gold, tmp_path / "gold.csv")
    result = M.score_files(out, tmp_path / "gold.csv")
    assert all(result[k] is not None and result[k] > 0 for k in M.SCORE_KEYS)


def test_baseline_errors():
    with pytest.raises(Ra2Error, match="no patients"):
        training_means(score_frame([]))
    with pytest.raises(Ra2Error, match="'LH_pip_J__2'"):
        training_means(score_frame(["a"]).drop(columns=["LH_pip_J__2"]))
    with pytest.raises(Ra2Error, match="Patient_ID"):
        predict_means(score_frame(["a"]), pd.DataFrame({"x": [1]}))
