"""The container's job always leaves a complete, valid predictions.csv."""

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error, io
from ra2 import contract as C
from ra2.challenge_run import FALLBACK_CONSTANT, run_challenge

from csv_factory import score_frame, template_frame, write_csv


@pytest.fixture()
def dirs(tmp_path):
    train, test, out = tmp_path / "train", tmp_path / "test", tmp_path / "output"
    train.mkdir(), test.mkdir()
    write_csv(score_frame(["A1", "A2", "A3"], seed=3), train / "training.csv")
    write_csv(template_frame(["T2", "T1"]), test / "template.csv")
    return train, test, out, tmp_path / "work"


def _read(out):
    return io.read_predictions_csv(out / "predictions.csv")


def test_without_model_writes_training_means_in_template_order(dirs):
    train, test, out, work = dirs
    path = run_challenge(train, test, out, work)
    pred = _read(out)
    assert list(pred.columns) == list(C.COLUMNS)
    assert list(pred[C.PATIENT_COLUMN]) == ["T2", "T1"]
    train_df = score_frame(["A1", "A2", "A3"], seed=3)
    for col in ("LH_mcp_E__ip", "RF_mtp_J__5"):
        assert pred[col].tolist() == pytest.approx([train_df[col].mean()] * 2)
    assert io.validate_predictions(path, test / "template.csv") == []


def test_model_failure_keeps_the_fallback(dirs):
    train, test, out, work = dirs

    def broken_model(*_):
        raise RuntimeError("detector exploded")

    run_challenge(train, test, out, work, model_step=broken_model)
    pred = _read(out)
    assert pred["LH_pip_E__2"].tolist() == pytest.approx(
        [score_frame(["A1", "A2", "A3"], seed=3)["LH_pip_E__2"].mean()] * 2)


def test_model_predictions_replace_the_fallback(dirs):
    train, test, out, work = dirs

    def model(_train, _test, _work, template):
        df = pd.DataFrame({C.PATIENT_COLUMN: template[C.PATIENT_COLUMN].tolist()})
        for col in C.JOINT_COLUMNS:
            df[col] = 1.0
        df[C.OVERALL_EROSION] = 44.0
        df[C.OVERALL_NARROWING] = 42.0
        df[C.OVERALL_TOTAL] = 86.0
        return df[list(C.COLUMNS)]

    run_challenge(train, test, out, work, model_step=model)
    pred = _read(out)
    assert np.all(pred[list(C.JOINT_COLUMNS)].to_numpy() == 1.0)
    assert pred[C.OVERALL_TOTAL].tolist() == [86.0, 86.0]


def test_unreadable_training_csv_falls_back_to_a_constant(dirs):
    train, test, out, work = dirs
    (train / "training.csv").write_text("not,a,training,file\n1,2,3,4\n")
    run_challenge(train, test, out, work)
    pred = _read(out)
    assert np.all(pred[list(C.JOINT_COLUMNS)].to_numpy() == FALLBACK_CONSTANT)
    assert pred[C.OVERALL_TOTAL].tolist() == pytest.approx([86 * FALLBACK_CONSTANT] * 2)


def test_missing_template_is_a_user_error(dirs):
    train, test, out, work = dirs
    (test / "template.csv").unlink()
    with pytest.raises(Ra2Error, match="template"):
        run_challenge(train, test, out, work)
    assert not (out / "predictions.csv").exists()
