"""Fallback estimates of unpredicted joints: the other side averaged with the training mean, else the mean."""

import numpy as np
import pandas as pd
import pytest

from ra2 import contract
from ra2.fallback import OTHER_SIDE, TRAINING_MEAN, fill_unpredicted


def test_fill_unpredicted_uses_the_other_side_then_the_training_mean():
    cols = list(contract.JOINT_COLUMNS)
    frame = pd.DataFrame({contract.PATIENT_COLUMN: ["A", "B"], **{c: [1.0, 2.0] for c in cols}})
    frame.loc[0, "LH_pip_E__2"] = np.nan          # other side (RH) predicted: (1.0 + 0.4) / 2
    frame.loc[1, "LF_mtp_J__3"] = np.nan          # both sides lost: the mean
    frame.loc[1, "RF_mtp_J__3"] = np.nan
    means = {c: 0.4 for c in cols}
    means["LF_mtp_J__3"], means["RF_mtp_J__3"] = 0.1, 0.3
    filled, kinds = fill_unpredicted(frame, means)
    assert filled.loc[0, "LH_pip_E__2"] == pytest.approx(0.7)
    assert filled.loc[1, "LF_mtp_J__3"] == pytest.approx(0.1)
    assert filled.loc[1, "RF_mtp_J__3"] == pytest.approx(0.3)
    assert np.isnan(frame.loc[0, "LH_pip_E__2"])  # the input is not modified
    untouched = [c for c in cols if c not in ("LH_pip_E__2", "LF_mtp_J__3", "RF_mtp_J__3")]
    assert (filled[untouched].to_numpy() == frame[untouched].to_numpy()).all()
    assert kinds[0, cols.index("LH_pip_E__2")] == OTHER_SIDE
    assert kinds[1, cols.index("LF_mtp_J__3")] == TRAINING_MEAN == kinds[1, cols.index("RF_mtp_J__3")]
    assert sum(k is not None for k in kinds.ravel()) == 3


def test_fill_unpredicted_without_training_means_uses_zero():
    cols = list(contract.JOINT_COLUMNS)
    frame = pd.DataFrame({contract.PATIENT_COLUMN: ["A"], **{c: [np.nan] for c in cols}})
    filled, kinds = fill_unpredicted(frame, {})
    assert (filled[cols].to_numpy() == 0).all() and (kinds == TRAINING_MEAN).all()
