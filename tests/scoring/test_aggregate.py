"""ra2.scoring.aggregate (the joints table) and the one Overall_* rule (ra2.contract.add_overall)."""

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error, contract
from ra2.contract import add_overall
from ra2.scoring.aggregate import joint_frame


def test_joint_frame_then_overall_sums_in_contract_order():
    rng = np.random.default_rng(0)
    joints = {c: rng.integers(0, contract.MAX_SCORE[c] + 1, size=3).astype(float)
              for c in contract.JOINT_COLUMNS}
    table = joint_frame(["A", "B", "C"], joints)
    assert tuple(table.columns) == (contract.PATIENT_COLUMN,) + contract.JOINT_COLUMNS
    frame = add_overall(table)
    assert tuple(frame.columns) == contract.COLUMNS
    for i in range(3):
        ero = sum(joints[c][i] for c in contract.EROSION_COLUMNS)
        nar = sum(joints[c][i] for c in contract.NARROWING_COLUMNS)
        assert frame.loc[i, contract.OVERALL_EROSION] == pytest.approx(ero)
        assert frame.loc[i, contract.OVERALL_NARROWING] == pytest.approx(nar)
        assert frame.loc[i, contract.OVERALL_TOTAL] == pytest.approx(ero + nar)
    assert list(frame[contract.PATIENT_COLUMN]) == ["A", "B", "C"]
    # stale sums and any column order: the rule recomputes and reorders
    stale = frame.assign(**{contract.OVERALL_TOTAL: -1.0})[list(reversed(frame.columns))]
    pd.testing.assert_frame_equal(add_overall(stale), frame)


def test_joint_frame_rejects_missing_unknown_and_short_columns():
    joints = {c: [0.0] for c in contract.JOINT_COLUMNS}
    with pytest.raises(Ra2Error, match=contract.JOINT_COLUMNS[0]):
        joint_frame(["A"], {c: v for c, v in joints.items() if c != contract.JOINT_COLUMNS[0]})
    with pytest.raises(Ra2Error, match="unknown joint column 'LH_dip_E__2'"):
        joint_frame(["A"], {**joints, "LH_dip_E__2": [1.0]})
    with pytest.raises(Ra2Error, match="1 values for 2 patients"):
        joint_frame(["A", "B"], joints)
