"""ra2.metrics against hand-computed values (the arithmetic is written out with math.log2)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error
from ra2 import contract as C
from ra2 import metrics as M

from csv_factory import score_frame, write_csv

W23, W47 = 2.143547, 3.863745


def zeros(ids: list[str]) -> pd.DataFrame:
    """Frame of the given patients with every score 0."""
    df = pd.DataFrame(0.0, index=range(len(ids)), columns=list(C.COLUMNS[1:]))
    df.insert(0, C.PATIENT_COLUMN, pd.Series(ids, dtype=object))
    return df


# --------------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------------
def test_weights_at_every_bin_boundary():
    totals = [0, 1, 2, 3, 4, 7, 8, 20, 21, 55, 56, 148, 149, 448]
    expected = [1, 2, W23, W23, W47, W47, 8, 8, 16, 16, 32, 32, 64, 64]
    np.testing.assert_array_equal(M.weights_from_total(np.array(totals, dtype=float)), expected)


def test_weights_of_non_integer_totals_use_upper_bounds():
    totals = [0.5, 1.5, 3.0, 3.5, 7.5, 20.5, 55.5, 148.0, 148.5]
    expected = [2, W23, W23, W47, 8, 16, 32, 32, 64]
    np.testing.assert_array_equal(M.weights_from_total(np.array(totals)), expected)


def test_weights_reject_negative_or_missing_totals():
    with pytest.raises(Ra2Error):
        M.weights_from_total(np.array([1.0, -1.0]))
    with pytest.raises(Ra2Error):
        M.weights_from_total(np.array([np.nan]))


# --------------------------------------------------------------------------------------------------
# SC1 and the overall secondary metrics
# --------------------------------------------------------------------------------------------------
def test_sc1_three_patients():
    gold, pred = zeros(["a", "b", "c"]), zeros(["a", "b", "c"])
    gold[C.OVERALL_TOTAL] = [0.0, 5.0, 30.0]
    pred[C.OVERALL_TOTAL] = [1.0, 3.0, 30.5]
    expected = (1 * abs(math.log2(0 + 1) - math.log2(1 + 1))
                + W47 * abs(math.log2(5 + 1) - math.log2(3 + 1))
                + 16 * abs(math.log2(30 + 1) - math.log2(30.5 + 1))) / (1 + W47 + 16)
    assert M.sc1(pred, gold) == pytest.approx(expected, abs=1e-12)


def test_sc1_two_patients_negative_prediction_clipped_and_total_not_resummed():
    gold, pred = zeros(["p", "q"]), zeros(["p", "q"])
    gold[C.OVERALL_TOTAL] = [0.0, 150.0]
    pred[C.OVERALL_TOTAL] = [-7.0, 100.0]  # -7 counts as 0: no error for p
    pred["LH_pip_J__2"] = 4.0  # joints do not enter SC1
    expected = (1 * 0.0 + 64 * abs(math.log2(151) - math.log2(101))) / (1 + 64)
    assert M.sc1(pred, gold) == pytest.approx(expected, abs=1e-12)


def test_overall_erosion_and_narrowing():
    gold, pred = zeros(["a", "b"]), zeros(["a", "b"])
    gold[C.OVERALL_TOTAL] = [2.0, 10.0]  # weights 2.143547 and 8
    gold[C.OVERALL_EROSION] = [2.0, 4.0]
    gold[C.OVERALL_NARROWING] = [0.0, 6.0]
    pred[C.OVERALL_EROSION] = [1.0, 7.0]
    pred[C.OVERALL_NARROWING] = [0.5, 6.0]
    result = M.score(pred, gold)
    erosion = (W23 * abs(math.log2(3) - math.log2(2)) + 8 * abs(math.log2(5) - math.log2(8))) / (W23 + 8)
    narrowing = (W23 * abs(math.log2(1) - math.log2(1.5)) + 8 * 0.0) / (W23 + 8)
    assert result["overall_erosion"] == pytest.approx(erosion, abs=1e-12)
    assert result["overall_narrowing"] == pytest.approx(narrowing, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# SC2 / SC3 and their hand/foot restrictions
# --------------------------------------------------------------------------------------------------
def test_sc2_sc3_tiny_frames():
    gold, pred = zeros(["a", "b"]), zeros(["a", "b"])
    gold[C.OVERALL_TOTAL] = [0.0, 25.0]  # weights 1 and 16
    # patient a: narrowing error in one hand joint (pred 1, gold 0) and one foot joint (pred 3, gold 1)
    pred.loc[0, "LH_pip_J__2"] = 1.0
    pred.loc[0, "RF_mtp_J__3"] = 3.0
    gold.loc[0, "RF_mtp_J__3"] = 1.0
    # patient b: narrowing right; erosion gold 5 predicted 2 in one hand joint, foot erosion 10 vs 10
    for col in ("LH_pip_J__2", "RF_mtp_J__3"):
        pred.loc[1, col] = gold.loc[1, col] = 2.0
    gold.loc[1, "RH_mcp_E__1"] = 5.0
    pred.loc[1, "RH_mcp_E__1"] = 2.0
    gold.loc[1, "LF_mtp_E__5"] = pred.loc[1, "LF_mtp_E__5"] = 10.0
    pred.loc[1, "LF_mtp_E__ip"] = -4.0  # clipped to 0 = gold

    d_hand_a = math.log2(1 + 1) - math.log2(0 + 1)
    d_foot_a = math.log2(3 + 1) - math.log2(1 + 1)
    rmse_a = math.sqrt((d_hand_a ** 2 + d_foot_a ** 2) / 42)
    sc2 = (1 * rmse_a + 16 * 0.0) / 17
    d_b = math.log2(2 + 1) - math.log2(5 + 1)
    sc3 = (1 * 0.0 + 16 * math.sqrt(d_b ** 2 / 44)) / 17
    result = M.score(pred, gold)
    assert M.sc2(pred, gold) == pytest.approx(sc2, abs=1e-12)
    assert M.sc3(pred, gold) == pytest.approx(sc3, abs=1e-12)
    assert result["sc2"] == pytest.approx(sc2, abs=1e-12) and result["sc3"] == pytest.approx(sc3, abs=1e-12)
    # hands: 30 narrowing columns (15 per hand), 32 erosion; feet: 12 of each
    assert result["sc2_hand"] == pytest.approx((1 * math.sqrt(d_hand_a ** 2 / 30)) / 17, abs=1e-12)
    assert result["sc2_foot"] == pytest.approx((1 * math.sqrt(d_foot_a ** 2 / 12)) / 17, abs=1e-12)
    assert result["sc3_hand"] == pytest.approx((16 * math.sqrt(d_b ** 2 / 32)) / 17, abs=1e-12)
    assert result["sc3_foot"] == pytest.approx(0.0, abs=1e-12)  # 10 vs 10, -4 vs 0: no error


def test_score_keys_exactly():
    gold = score_frame(["a", "b"], seed=2)
    assert list(M.score(gold, gold)) == ["sc1", "sc2", "sc3", "overall_narrowing", "overall_erosion",
                                         "sc2_hand", "sc2_foot", "sc3_hand", "sc3_foot"]
    assert tuple(M.score(gold, gold)) == M.SCORE_KEYS
    assert all(v == 0.0 for v in M.score(gold, gold).values())  # perfect prediction


def test_all_zero_joint_predictions_are_na():
    gold = score_frame(["a", "b", "c"], seed=4)
    pred = zeros(["a", "b", "c"])
    pred[C.OVERALL_TOTAL] = 3.0
    result = M.score(pred, gold)
    for key in ("sc2", "sc3", "sc2_hand", "sc2_foot", "sc3_hand", "sc3_foot"):
        assert result[key] is None, key
    assert result["sc1"] is not None and result["overall_erosion"] is not None
    # negative predictions are clipped to 0 first, so all-negative is NA too
    pred[list(C.NARROWING_COLUMNS)] = -1.0
    assert M.sc2(pred, gold) is None
    # only the feet predicted: the hand restriction is NA, the full SC2 and the foot one are not
    pred[list(C.limb_columns(C.FOOT_LIMBS, C.NARROWING))] = 1.0
    result = M.score(pred, gold)
    assert result["sc2_hand"] is None
    assert result["sc2"] is not None and result["sc2_foot"] is not None


def test_score_is_independent_of_row_order():
    gold = score_frame([f"P{i}" for i in range(6)], seed=7)
    rng = np.random.default_rng(0)
    pred = gold.copy()
    pred[list(C.COLUMNS[1:])] = rng.uniform(-0.5, 6.0, size=(6, 89))
    base = M.score(pred, gold)
    shuffled = M.score(pred.iloc[rng.permutation(6)].reset_index(drop=True),
                       gold.iloc[rng.permutation(6)].reset_index(drop=True))
    for key in base:
        assert shuffled[key] == pytest.approx(base[key], abs=1e-12)


def _reference_score(pred: pd.DataFrame, gold: pd.DataFrame) -> dict:
    """Plain-loop re-implementation of challenge.md section 4, independent of ra2.metrics."""
    prow = {str(r[C.PATIENT_COLUMN]): r for _, r in pred.iterrows()}

    def weight(total):
        for bound, w in ((0, 1), (1, 2), (3, W23), (7, W47), (20, 8), (55, 16), (148, 32)):
            if total <= bound:
                return w
        return 64

    def lg(x):
        return math.log2(max(x, 0.0) + 1.0)

    def overall(col):
        num = den = 0.0
        for _, g in gold.iterrows():
            w = weight(g[C.OVERALL_TOTAL])
            num += w * abs(lg(g[col]) - lg(prow[g[C.PATIENT_COLUMN]][col]))
            den += w
        return num / den

    def joints(cols):
        if all(max(prow[g[C.PATIENT_COLUMN]][c], 0.0) == 0 for _, g in gold.iterrows() for c in cols):
            return None
        num = den = 0.0
        for _, g in gold.iterrows():
            w = weight(g[C.OVERALL_TOTAL])
            p = prow[g[C.PATIENT_COLUMN]]
            num += w * math.sqrt(sum((lg(g[c]) - lg(p[c])) ** 2 for c in cols) / len(cols))
            den += w
        return num / den

    def cols_of(letter, limbs):
        return [c for c in C.COLUMNS[4:] if f"_{letter}__" in c and c[:2] in limbs]

    return {
        "sc1": overall("Overall_Tol"),
        "sc2": joints(cols_of("J", "LHRHLFRF")),
        "sc3": joints(cols_of("E", "LHRHLFRF")),
        "overall_narrowing": overall("Overall_narrowing"),
        "overall_erosion": overall("Overall_erosion"),
        "sc2_hand": joints(cols_of("J", ("LH", "RH"))),
        "sc2_foot": joints(cols_of("J", ("LF", "RF"))),
        "sc3_hand": joints(cols_of("E", ("LH", "RH"))),
        "sc3_foot": joints(cols_of("E", ("LF", "RF"))),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_plain_loop_reference(seed):
    # damage from none to heavy, so that the patients fall into many weight bins
    rates = [0.0, 0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.5, 0.8, 0.03]
    gold = pd.concat([score_frame([f"S{i:03d}"], seed=10 * seed + i, nonzero=r) for i, r in enumerate(rates)],
                     ignore_index=True)
    rng = np.random.default_rng(100 + seed)
    pred = gold.copy()
    noisy = gold[list(C.COLUMNS[1:])].to_numpy() + rng.normal(0, 1.5, size=(12, 89))
    pred[list(C.COLUMNS[1:])] = noisy
    pred = pred.iloc[::-1].reset_index(drop=True)
    got, want = M.score(pred, gold), _reference_score(pred, gold)
    assert len(set(M.weights_from_total(gold[C.OVERALL_TOTAL].to_numpy()))) >= 5  # several bins used
    for key in M.SCORE_KEYS:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


# --------------------------------------------------------------------------------------------------
# invalid submissions, per-joint RMSE, files
# --------------------------------------------------------------------------------------------------
def test_missing_patient_or_column_raises_and_extra_patient_is_ignored():
    gold = score_frame(["a", "b"], seed=1)
    with pytest.raises(Ra2Error, match="missing gold patient\\(s\\) 'b'"):
        M.score(gold.iloc[:1], gold)
    with pytest.raises(Ra2Error, match="'RF_mtp_J__5'"):
        M.score(gold.drop(columns=["RF_mtp_J__5"]), gold)
    pred = pd.concat([gold, score_frame(["zz"], seed=9)], ignore_index=True)
    assert M.score(pred, gold)["sc3"] == 0.0
    bad = gold.copy()
    bad.loc[0, "LH_mcp_E__3"] = np.nan
    with pytest.raises(Ra2Error, match="patient 'a', column 'LH_mcp_E__3'"):
        M.score(bad, gold)
    with pytest.raises(Ra2Error, match="duplicate patient 'a'"):
        M.score(pd.concat([gold, gold.iloc[:1]]), gold)


def test_per_joint_log2_rmse():
    gold, pred = zeros(["a", "b"]), zeros(["a", "b"])
    pred.loc[0, "LH_pip_J__2"] = 3.0
    gold.loc[1, "LH_pip_J__3"] = 1.0
    pred.loc[1, "LH_pip_J__3"] = -2.0
    expected = math.sqrt(((math.log2(4) - 0) ** 2 + 0 + 0 + (0 - math.log2(2)) ** 2) / 4)
    got = M.per_joint_log2_rmse(pred.iloc[::-1], gold, ["LH_pip_J__2", "LH_pip_J__3"])
    assert got == pytest.approx(expected, abs=1e-12)


def test_score_files(tmp_path):
    gold = score_frame(["0001", "0002", "0003"], seed=11)
    pred = gold.copy()
    pred[list(C.COLUMNS[1:])] = gold[list(C.COLUMNS[1:])].to_numpy() + 0.5
    write_csv(gold, tmp_path / "gold.csv")
    write_csv(pred, tmp_path / "pred.csv")
    got = M.score_files(tmp_path / "pred.csv", tmp_path / "gold.csv")
    want = M.score(pred, gold)
    assert got == pytest.approx(want, abs=1e-12)
    write_csv(pred.iloc[:2], tmp_path / "short.csv")
    with pytest.raises(Ra2Error, match="short.csv.*missing gold patient\\(s\\) '0003'"):
        M.score_files(tmp_path / "short.csv", tmp_path / "gold.csv")
    with pytest.raises(Ra2Error, match="gold CSV .*nope.csv: file not found"):
        M.score_files(tmp_path / "pred.csv", tmp_path / "nope.csv")
