"""ra2.evaluation.stats against hand-computed values on crafted predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error
from ra2 import contract as C
from ra2.evaluation import stats as S


def zeros(ids):
    df = pd.DataFrame(0.0, index=range(len(ids)), columns=list(C.COLUMNS[1:]))
    df.insert(0, C.PATIENT_COLUMN, pd.Series(ids, dtype=object))
    return df


def with_sums(df):
    return C.add_overall(df)


def test_groups_partition_the_joint_columns():
    every = [c for cols in S.JOINT_GROUPS.values() for c in cols]
    assert sorted(every) == sorted(C.JOINT_COLUMNS) and len(every) == 86
    # 2 sides x (thumb IP + 4 PIP + 5 MCP) hand erosion, 2 x 6 wrist erosion areas, 2 x 6 foot joints
    assert {k: len(v) for k, v in S.JOINT_GROUPS.items()} == {
        "hand_erosion": 20, "wrist_erosion": 12, "foot_erosion": 12,
        "hand_narrowing": 18, "wrist_narrowing": 12, "foot_narrowing": 12}
    assert S.group_of("RH_wrist_J__radcar") == "wrist_narrowing" and S.group_of("LH_mcp_E__ip") == "hand_erosion"


def test_quadratic_kappa_of_a_written_out_matrix():
    # rows gold 0..2, columns predicted 0..2; N = 10
    cm = np.array([[4, 1, 0], [1, 2, 0], [0, 1, 1]])
    # observed proportions O = cm / 10; marginals rows (5, 3, 2)/10, cols (5, 4, 1)/10
    # weights (i-j)^2/4: off-by-one 0.25, off-by-two 1
    # sum W*O = 0.25 * (1 + 1 + 1) / 10 = 0.075
    # sum W*E = 0.25*(0.5*0.4 + 0.3*0.5 + 0.3*0.1 + 0.2*0.4) + 1*(0.5*0.1 + 0.2*0.5) = 0.25*0.46 + 0.15 = 0.265
    assert S.quadratic_kappa(cm) == pytest.approx(1 - 0.075 / 0.265)
    assert S.quadratic_kappa(np.diag([3, 2, 5])) == pytest.approx(1.0)
    assert S.quadratic_kappa(np.array([[7, 0], [0, 0]])) is None  # both raters always say 0


def test_confusion_rounds_half_up_and_clips_to_the_range():
    cm = S.confusion_matrix(np.array([0, 1, 2, 4]), np.array([0.49, 0.5, 7.0, -1.0]), max_score=4)
    expected = np.zeros((5, 5), int)
    expected[0, 0] = expected[1, 1] = expected[2, 4] = expected[4, 0] = 1
    np.testing.assert_array_equal(cm, expected)


def test_agreement_of_one_joint():
    gold = np.array([0, 0, 1, 3])
    pred = np.array([0.0, 1.0, 1.0, 1.0])
    a = S.agreement(gold, pred, max_score=4)
    assert a["n"] == 4
    assert a["mae"] == pytest.approx((0 + 1 + 0 + 2) / 4)
    # log2 errors: 0, log2(2)=1, 0, log2(2) - log2(4) = -1
    assert a["rmse_log2"] == pytest.approx(math.sqrt((0 + 1 + 0 + 1) / 4))
    # ranks gold (1.5, 1.5, 3, 4), pred (1, 3, 3, 3): Pearson of the ranks
    rg, rp = np.array([1.5, 1.5, 3, 4]), np.array([1, 3, 3, 3.0])
    assert a["spearman"] == pytest.approx(np.corrcoef(rg, rp)[0, 1])
    assert a["confusion"][0] == [1, 1, 0, 0, 0] and a["confusion"][3] == [0, 1, 0, 0, 0]
    assert S.agreement(np.zeros(3), np.zeros(3), 4)["spearman"] is None


def test_joint_agreement_per_joint_and_group():
    gold, pred = zeros(["a", "b"]), zeros(["a", "b"])
    gold.loc[0, "LF_mtp_E__1"] = 6.0
    pred.loc[0, "LF_mtp_E__1"] = 4.0
    pred.loc[1, "LF_mtp_E__1"] = 1.0
    res = S.joint_agreement(with_sums(pred), with_sums(gold))
    j = res["joints"]["LF_mtp_E__1"]
    assert j["group"] == "foot_erosion" and j["mae"] == pytest.approx(1.5) and len(j["confusion"]) == 11
    g = res["groups"]["foot_erosion"]
    assert g["n"] == 24 and g["mae"] == pytest.approx(3 / 24)
    assert res["groups"]["hand_narrowing"]["mae"] == 0.0 and res["groups"]["hand_narrowing"]["kappa"] is None


def crafted_sc1(n=40):
    """Every patient's gold total 10 (one weight); the prediction's log2 error of Overall_Tol is 0.5 for half
    of them and 1.5 for the others: SC1 = 1.0 exactly."""
    ids = [f"P{i:02d}" for i in range(n)]
    gold, pred = zeros(ids), zeros(ids)
    gold["LH_mcp_E__1"] = 5.0
    gold["LF_mtp_E__1"] = 5.0
    gold = with_sums(gold)
    pred = with_sums(pred)
    err = np.where(np.arange(n) % 2 == 0, 0.5, 1.5)
    pred[C.OVERALL_TOTAL] = 2 ** (math.log2(11) + err) - 1
    return pred, gold


def test_bootstrap_interval_contains_the_known_value():
    pred, gold = crafted_sc1()
    res = S.bootstrap_official(pred, gold, n_resamples=1000, seed=0)
    sc1 = res["sc1"]["model"]
    assert sc1["value"] == pytest.approx(1.0)
    assert 0.5 < sc1["low"] < 1.0 < sc1["high"] < 1.5
    # the mean of 40 draws of +-0.5 has standard error 0.5/sqrt(40) = 0.079: the 95% interval is about +-0.155
    assert sc1["high"] - sc1["low"] == pytest.approx(2 * 1.96 * 0.5 / math.sqrt(40), rel=0.2)
    # the joint predictions are all 0: SC2 and SC3 are NA, with no interval
    assert res["sc2"]["model"] == {"value": None, "low": None, "high": None}
    assert "baseline" not in res["sc1"]
    # seeded: the same interval again
    assert S.bootstrap_official(pred, gold, n_resamples=1000, seed=0)["sc1"] == res["sc1"]


def test_paired_difference_of_a_constant_shift_has_a_zero_width_interval():
    pred, gold = crafted_sc1()
    base = pred.copy()
    # the baseline's error is the model's + 1 for every patient: each resample's difference is exactly -1
    err = np.where(np.arange(len(pred)) % 2 == 0, 1.5, 2.5)
    base[C.OVERALL_TOTAL] = 2 ** (math.log2(11) + err) - 1
    res = S.bootstrap_official(pred, gold, base, n_resamples=200, seed=1)
    d = res["sc1"]["difference"]
    assert d["value"] == pytest.approx(-1.0) and d["low"] == pytest.approx(-1.0) and d["high"] == pytest.approx(-1.0)
    assert res["sc1"]["baseline"]["value"] == pytest.approx(2.0)


def test_bootstrap_point_values_equal_the_official_scores():
    from ra2.metrics import score

    from csv_factory import score_frame

    gold = score_frame([f"G{i}" for i in range(12)], seed=3)
    pred = score_frame([f"G{i}" for i in range(12)], seed=4)
    res = S.bootstrap_official(pred, gold, n_resamples=50)
    for key, value in score(pred, gold).items():
        assert res[key]["model"]["value"] == pytest.approx(value)
        assert res[key]["model"]["low"] <= res[key]["model"]["high"]


def test_spread_vs_error_ranks_cells_by_spread():
    gold, pred, spread = zeros(["a", "b"]), zeros(["a", "b"]), zeros(["a", "b"])
    # 172 cells; the 17 with the highest spread (10%) are the first 17 erosion columns of patient a
    cols = list(C.JOINT_COLUMNS)
    for i, c in enumerate(cols[:17]):
        spread.loc[0, c] = 1.0 + i
        pred.loc[0, c] = 2.0  # error 2 where the spread is high
    pred.loc[1, cols[30]] = 1.0  # error 1 in one low-spread cell
    spread.loc[1, cols[40]] = np.nan  # a joint without a crop: not counted
    res = S.spread_vs_error(with_sums(pred), with_sums(gold), spread, top_fraction=0.1)
    assert res["n"] == 171 and res["n_flagged_cells"] == 17
    assert res["mae_flagged"] == pytest.approx(2.0)
    assert res["mae_rest"] == pytest.approx(1 / 154)
    assert res["flagged"][0] == {"patient": "a", "column": cols[16], "prediction": 2.0, "gold": 0.0,
                                 "spread": 17.0, "abs_error": 2.0}
    assert sum(b["n"] for b in res["bins"]) == 171
    d = res["difference"]
    assert d["value"] == pytest.approx(2.0 - 1 / 154) and d["low"] <= d["value"] <= d["high"]
    # within hand erosion (32 columns x 2 patients = 64 cells, 6 flagged, all with error 2): the other 11 of
    # the 17 cells with error 2 and the one with error 1 (patient b) are among the 58 of the rest
    ne = res["by_dataset"]["hand_erosion"]
    assert ne["n"] == 64 and ne["mae_flagged"] == pytest.approx(2.0) and ne["mae_rest"] == pytest.approx(23 / 58)
    with pytest.raises(Ra2Error, match="no finite spread"):
        S.spread_vs_error(with_sums(pred), with_sums(gold), spread.assign(**{c: np.nan for c in cols}))


def test_worst_cells_largest_error_first():
    gold, pred = zeros(["a", "b"]), zeros(["a", "b"])
    pred.loc[1, "LH_pip_J__2"] = 3.0
    pred.loc[0, "LH_pip_J__3"] = 1.0
    out = S.worst_cells(pred, gold, C.NARROWING_COLUMNS, 2)
    assert [(o["patient"], o["column"], o["abs_error"]) for o in out] == [("b", "LH_pip_J__2", 3.0),
                                                                         ("a", "LH_pip_J__3", 1.0)]


def test_spread_difference_interval_of_identical_patients_is_the_known_value():
    ids = [f"P{i}" for i in range(10)]
    gold, pred, spread = zeros(ids), zeros(ids), zeros(ids)
    cols = list(C.JOINT_COLUMNS)
    for c in cols[:9]:  # per patient 9 of 86 joints: high spread, error 1
        spread[c] = 5.0
        pred[c] = 1.0
    # 860 cells, 86 flagged (all error 1); the rest: 774 cells, 4 of them with error 1. Every resample of these
    # identical patients has the same cells, so the interval is the value itself.
    res = S.spread_vs_error(with_sums(pred), with_sums(gold), spread, n_resamples=200)
    known = 1.0 - 4 / 774
    assert res["mae_flagged"] == 1.0 and res["mae_rest"] == pytest.approx(4 / 774)
    assert res["difference"] == pytest.approx({"value": known, "low": known, "high": known})
