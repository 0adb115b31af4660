"""predictions_uncertainty.csv: the Overall_* spreads, the template's order, empty cells without a crop."""

import math

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error
from ra2 import contract as C
from ra2.io import read_uncertainty, write_uncertainty
from ra2.scoring.uncertainty import uncertainty_frame

from csv_factory import template_frame


def spread_table(ids):
    df = pd.DataFrame(0.0, index=range(len(ids)), columns=list(C.JOINT_COLUMNS))
    df.insert(0, C.PATIENT_COLUMN, ids)
    return df


def test_overall_spreads_are_root_sums_of_squares():
    s = spread_table(["a"])
    s.loc[0, "LH_mcp_E__1"] = 0.3
    s.loc[0, "LF_mtp_E__2"] = 0.4
    s.loc[0, "RH_pip_J__2"] = 1.2
    s.loc[0, "RF_mtp_J__3"] = np.nan  # no crop: ignored
    out = uncertainty_frame(s)
    assert list(out.columns) == list(C.COLUMNS)
    assert out.loc[0, C.OVERALL_EROSION] == pytest.approx(0.5)  # sqrt(0.09 + 0.16)
    assert out.loc[0, C.OVERALL_NARROWING] == pytest.approx(1.2)
    assert out.loc[0, C.OVERALL_TOTAL] == pytest.approx(math.sqrt(0.25 + 1.44))


def test_written_in_template_order_and_read_back(tmp_path):
    s = spread_table(["b", "a"])
    s.loc[0, "LH_pip_E__2"] = 0.25
    s.loc[1, "LH_pip_E__2"] = np.nan
    path = write_uncertainty(uncertainty_frame(s), template_frame(["a", "b"]), tmp_path / "predictions_uncertainty.csv")
    back = read_uncertainty(path)
    assert back[C.PATIENT_COLUMN].tolist() == ["a", "b"] and list(back.columns) == list(C.COLUMNS)
    assert np.isnan(back.loc[0, "LH_pip_E__2"]) and back.loc[1, "LH_pip_E__2"] == 0.25
    assert path.read_text().splitlines()[0] == ",".join(C.COLUMNS)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(Ra2Error, match="no spread for template patient"):
        write_uncertainty(uncertainty_frame(spread_table(["a"])), template_frame(["a", "z"]), tmp_path / "u.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("Patient_ID,Overall_Tol\na,1\n")
    with pytest.raises(Ra2Error, match="bad.csv: missing column"):
        read_uncertainty(bad)
    with pytest.raises(Ra2Error, match="nope.csv: no such file"):
        read_uncertainty(tmp_path / "nope.csv")
