"""The patient context stage: features, fit, cut-offs, save/load, and its use in predict_joints."""

import json

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error, contract
from ra2.scoring.context import FEATURES, ContextModel, features, fit_context, load_context, other_kind

from csv_factory import context_patients

COLS = list(contract.JOINT_COLUMNS)
MAX = np.array([contract.SCORE_BY_COLUMN[c].max_score for c in COLS], dtype=float)


def test_partner_columns():
    assert contract.other_side("LH_mcp_E__2") == "RH_mcp_E__2"  # the context model's other side is the contract's
    assert other_kind("LH_pip_E__3") == "LH_pip_J__3" and other_kind("RF_mtp_J__5") == "RF_mtp_E__5"
    assert other_kind("LH_mcp_E__ip") is None  # thumb IP: erosion only
    assert other_kind("LH_wrist_E__lunate") is None  # wrist erosion areas are not narrowing areas
    assert all(contract.other_side(c) in COLS for c in COLS)


def test_features_by_hand():
    raw = pd.DataFrame(np.zeros((2, len(COLS))), columns=COLS)
    raw.loc[0, "LH_pip_E__2"] = 3.0  # log2(4) = 2
    raw.loc[0, "RH_pip_E__2"] = 1.0  # log2(2) = 1
    raw.loc[0, "LH_pip_J__2"] = 7.0  # log2(8) = 3
    f = features(raw)
    n_hand = len(contract.scores_of_dataset("hand_erosion"))
    n_nar = len(contract.scores_of_dataset("narrowing"))
    patient = (3 / n_hand + 0 + 3 / n_nar) / 3
    # own, other side, other kind, the 3 patient means, limb mean, group mean, own^2, own x patient
    np.testing.assert_allclose(f["LH_pip_E__2"][0], [2, 1, 3, 3 / n_hand, 0, 3 / n_nar, 0, 0, 4, 2 * patient])
    np.testing.assert_allclose(f["RH_pip_E__2"][0], [1, 2, 0, 3 / n_hand, 0, 3 / n_nar, 0, 0, 1, patient])
    # a neighbour: the 15 other erosion columns of the left hand hold one 2 (PIP 2), as do PIP 2, 4, 5
    n_limb = len([c for c in COLS if c.startswith("LH") and "_E__" in c]) - 1
    np.testing.assert_allclose(f["LH_pip_E__3"][0][6:8], [2 / n_limb, 2 / 3])
    np.testing.assert_allclose(f["LH_pip_J__3"][0][6:8], [3 / 14, 3 / 3])  # 14 other narrowing columns of LH
    np.testing.assert_allclose(f["LH_mcp_E__ip"][0][2], 0.0)
    np.testing.assert_allclose(f["LH_pip_E__2"][1], np.zeros(len(FEATURES)))


def _rmse(pred, gold):
    return float(np.sqrt(np.mean((np.log2(pred + 1) - np.log2(gold + 1)) ** 2)))


def test_context_learns_patient_severity_and_generalises():
    raw, gold = context_patients(300, 0, context_matters=True)
    model = fit_context(raw, gold, learners=("linear",))
    for d, rep in model.report["cross_fitted"].items():
        assert rep["corrected_log2_rmse"] < 0.8 * rep["raw_log2_rmse"], d
    # on new patients: better than the raw predictions, with the model's own cut-offs
    raw_t, gold_t = context_patients(200, 1, context_matters=True)
    out = model.apply(raw_t)
    # (a fit on the own prediction alone, a mere shrinkage, reaches only 0.86 of the raw error here)
    assert _rmse(out[COLS].to_numpy(), gold_t.to_numpy()) < 0.8 * _rmse(raw_t.to_numpy(), gold_t.to_numpy())
    assert ((out[COLS].to_numpy() >= 0) & (out[COLS].to_numpy() <= MAX)).all()


def test_context_weights_vanish_without_correlation():
    raw, gold = context_patients(400, 2, context_matters=False)
    model = fit_context(raw, gold, learners=("linear",))
    for d, w in model.weights.items():
        # the patient-mean features carry nothing here (means of independent joints): near-zero weights
        assert np.abs(np.array(w[3:6])).max() < 0.35, (d, w)
        assert w[0] > 0.3  # the joint's own prediction carries the signal


def test_missing_predictions_take_the_fill_value_and_thresholds_apply():
    raw, gold = context_patients(60, 3, context_matters=True)
    model = fit_context(raw, gold, learners=("linear",))
    model.thresholds = {d: 0.5 for d in contract.DATASETS}
    holes = raw.copy()
    holes.loc[0, "LH_pip_E__2"] = np.nan
    filled = raw.copy()
    filled.loc[0, "LH_pip_E__2"] = model.fill["LH_pip_E__2"]
    a, b = model.apply(holes), model.apply(filled)
    pd.testing.assert_frame_equal(a, b)
    v = a[COLS].to_numpy()
    assert not np.isnan(v).any() and not ((v > 0) & (v < 0.5)).any()
    corrected = model.corrected(filled)[COLS].to_numpy()
    np.testing.assert_allclose(v, np.where(corrected < 0.5, 0.0, corrected))


def test_save_load_round_trip_and_bad_files(tmp_path):
    raw, gold = context_patients(40, 4, context_matters=True)
    model = fit_context(raw, gold, learners=("linear",))
    model.save(tmp_path / "context.json")
    again = load_context(tmp_path)
    pd.testing.assert_frame_equal(model.apply(raw), again.apply(raw))
    assert load_context(tmp_path / "nowhere") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "context.json").write_text("{not json")
    with pytest.raises(Ra2Error, match="context.json: not a context model"):
        load_context(tmp_path / "bad")
    broken = ContextModel(weights={d: [0.0] for d in contract.DATASETS}, thresholds={d: 0.0 for d in contract.DATASETS},
                          fill={})
    broken.save(tmp_path / "bad" / "context.json")
    with pytest.raises(Ra2Error, match="needs 11 weights"):
        load_context(tmp_path / "bad")
    doc = json.loads((tmp_path / "bad" / "context.json").read_text())
    doc["weights"] = {d: [0.0] * (len(FEATURES) + 1) for d in contract.DATASETS}  # right weights, no cut-offs
    doc["thresholds"] = {}
    for broken_doc, message in ((doc, "no cut-off for data set"), ({**doc, "trees": None}, "trees must be a JSON")):
        (tmp_path / "bad" / "context.json").write_text(__import__("json").dumps(broken_doc))
        with pytest.raises(Ra2Error, match=message):
            load_context(tmp_path / "bad")
    with pytest.raises(Ra2Error, match="at least 2"):
        fit_context(raw.iloc[:1], gold.iloc[:1])


# ---- patient totals -------------------------------------------------------------------------------
from ra2.metrics import weights_from_total  # noqa: E402
from ra2.scoring.totals import TOTAL_PARTS, calibrated_total, fit_total, weighted_median  # noqa: E402


def test_weighted_median_minimises_the_weighted_absolute_error():
    rng = np.random.default_rng(0)
    for _ in range(20):
        v, w = rng.normal(size=9), rng.uniform(0.1, 5, size=9)
        m = weighted_median(v, w)
        costs = [np.sum(w * np.abs(v - x)) for x in (m, *v)]
        assert m in v and costs[0] <= min(costs[1:]) + 1e-12


def test_fit_total_recovers_a_known_calibration():
    rng = np.random.default_rng(1)
    s = rng.uniform(0, 200, size=300)
    t = 2.0 ** (0.8 * np.log2(s + 1) + 0.5) - 1
    a, c, err = fit_total(s, t, weights_from_total(t))
    assert a == pytest.approx(0.8) and c == pytest.approx(0.5, abs=1e-9) and err < 1e-9
    np.testing.assert_allclose(calibrated_total(s, a, c, contract.OVERALL_TOTAL), t, rtol=1e-9)
    # a fit can only do better than the plain sums ((1, 0) is one of its candidates)
    noisy = t * rng.uniform(0.5, 1.5, size=300)
    w = weights_from_total(noisy)
    a, c, err = fit_total(s, noisy, w)
    plain = np.sum(w * np.abs(np.log2(s + 1) - np.log2(noisy + 1))) / np.sum(w)
    assert err < plain


def test_overall_columns_are_calibrated_totals_or_the_sums():
    raw, gold = context_patients(120, 5, context_matters=True)
    model = fit_context(raw, gold, learners=("linear",))
    assert set(model.totals) == set(TOTAL_PARTS)
    joints = model.apply(raw)
    joints.insert(0, contract.PATIENT_COLUMN, [f"P{i}" for i in range(len(joints))])
    out = model.overall(joints)
    assert list(out.columns) == list(contract.COLUMNS)
    pd.testing.assert_frame_equal(out[COLS], joints[COLS])  # the joints are left as they are
    ero = joints[list(contract.EROSION_COLUMNS)].sum(axis=1).to_numpy()
    a, c = model.totals[contract.OVERALL_EROSION]
    np.testing.assert_allclose(out[contract.OVERALL_EROSION], np.clip(2.0 ** (a * np.log2(ero + 1) + c) - 1, 0, 280))
    rep = model.report["totals"][contract.OVERALL_TOTAL]
    assert rep["n_patients"] == 120 and rep["calibrated_error"] >= 0 and rep["sum_error"] >= 0
    # a model without totals (a context.json written before them) keeps the sums
    plain = ContextModel(weights=model.weights, thresholds=model.thresholds, fill=model.fill)
    pd.testing.assert_frame_equal(plain.overall(joints), contract.add_overall(joints))


def test_context_json_without_totals_loads_and_bad_totals_are_refused(tmp_path):
    raw, gold = context_patients(40, 6, context_matters=True)
    model = fit_context(raw, gold, learners=("linear",))
    model.save(tmp_path / "context.json")
    assert load_context(tmp_path).totals == model.totals
    doc = __import__("json").loads((tmp_path / "context.json").read_text())
    del doc["totals"]
    (tmp_path / "context.json").write_text(__import__("json").dumps(doc))
    assert load_context(tmp_path).totals == {}
    doc["totals"] = {"Overall_Tol": [1.0]}
    (tmp_path / "context.json").write_text(__import__("json").dumps(doc))
    with pytest.raises(Ra2Error, match="totals: 'Overall_Tol'"):
        load_context(tmp_path)


def _site_dependent_patients(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw predictions that see the wrist areas at half their log score and every other joint as it is (with
    noise): one linear correction for all the joints of a data set cannot undo both."""
    rng = np.random.default_rng(seed)
    gold = np.minimum(rng.poisson(rng.gamma(0.6, 1.0, size=(n, 1)) * np.ones((n, len(COLS)))), MAX).astype(float)
    scale = np.array([0.5 if "wrist" in c else 1.0 for c in COLS])
    raw = np.clip(2 ** (np.log2(gold + 1) * scale + rng.normal(0, 0.2, size=gold.shape)) - 1, 0, MAX)
    return pd.DataFrame(raw, columns=COLS), pd.DataFrame(gold, columns=COLS)


def test_trees_are_kept_where_the_correction_depends_on_the_site(tmp_path):
    raw, gold = _site_dependent_patients(100, 7)
    model = fit_context(raw, gold)
    for d in ("narrowing", "hand_erosion"):  # the data sets with wrist areas
        rep = model.report["cross_fitted"][d]
        assert rep["learner"] == "trees" and model.learner(d) == "trees"
        assert rep["learners"]["trees"]["log2_rmse"] < 0.9 * rep["learners"]["linear"]["log2_rmse"], rep
    # on new patients the trees beat the linear model fitted to the same patients
    raw_t, gold_t = _site_dependent_patients(100, 8)
    linear = fit_context(raw, gold, learners=("linear",))
    wrist = [c for c in COLS if "wrist" in c]
    err = {name: _rmse(m.apply(raw_t)[wrist].to_numpy(), gold_t[wrist].to_numpy())
           for name, m in (("trees", model), ("linear", linear))}
    assert err["trees"] < 0.9 * err["linear"], err
    # saved as JSON and read back: the same predictions
    model.save(tmp_path / "context.json")
    pd.testing.assert_frame_equal(load_context(tmp_path).apply(raw_t), model.apply(raw_t))


def test_a_context_json_of_six_linear_features_still_predicts_as_it_did(tmp_path):
    """A context.json written before the trees and the four new features (no "features" key, 7 weights)."""
    import json

    w = [0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.2]
    (tmp_path / "context.json").write_text(json.dumps({
        "weights": {d: w for d in contract.DATASETS}, "thresholds": {d: 0.0 for d in contract.DATASETS},
        "fill": {c: 0.0 for c in COLS}, "ridge": 1.0, "report": {}}))
    model = load_context(tmp_path)
    assert model.features == list(FEATURES[:6]) and model.trees == {} and model.totals == {}
    raw, _ = context_patients(5, 9, context_matters=True)
    lp = np.log2(raw + 1)
    other = lp[[contract.other_side(c) for c in COLS]].to_numpy()
    want = np.clip(2 ** np.maximum(0.9 * lp.to_numpy() + 0.1 * other + 0.2, 0) - 1, 0, MAX)
    np.testing.assert_allclose(model.apply(raw)[COLS].to_numpy(), want)
    doc = json.loads((tmp_path / "context.json").read_text())
    doc["trees"] = {"narrowing": {"init": 0.0, "learning_rate": 0.1, "n_features": 11,
                                  "trees": [{"left": [1], "right": [-1], "feature": [0], "threshold": [0.0],
                                             "value": [0.0]}]}}
    (tmp_path / "context.json").write_text(json.dumps(doc))
    with pytest.raises(Ra2Error, match="trees of 'narrowing': tree 0: a child outside the tree"):
        load_context(tmp_path)


def test_linear_features_are_clipped_to_the_range_of_the_fit(tmp_path):
    """A patient more damaged than any training patient: the linear learner's squared and product features
    would extrapolate (seed 0's demo had MTP 2-5 of a foot, raw 3-4, corrected to 10); clipped to the range each
    feature had in the fit, the correction stays what the edge of that range gives."""
    raw, gold = context_patients(60, 10, context_matters=True)
    model = fit_context(raw, gold, learners=("linear",))
    f = features(raw)
    for d, (lowest, highest) in model.linear_range.items():
        cols = [c for c in COLS if contract.SCORE_BY_COLUMN[c].dataset == d]
        x = np.concatenate([f[c] for c in cols])
        np.testing.assert_allclose(lowest, x.min(axis=0))
        np.testing.assert_allclose(highest, x.max(axis=0))
    # by hand: only own_squared counts, at 0.5, and the fit saw own_squared up to 4 (own = log2(x + 1) = 2)
    weights = [0.0] * len(FEATURES) + [0.0]
    weights[FEATURES.index("own_squared")] = 0.5
    lowest, highest = [0.0] * len(FEATURES), [100.0] * len(FEATURES)
    highest[FEATURES.index("own_squared")] = 4.0
    hand = ContextModel(weights={d: weights for d in contract.DATASETS},
                        thresholds={d: 0.0 for d in contract.DATASETS}, fill={c: 0.0 for c in COLS},
                        linear_range={d: [lowest, highest] for d in contract.DATASETS})
    patient = pd.DataFrame(np.zeros((1, len(COLS))), columns=COLS)
    patient["LH_pip_E__2"] = 15.0  # own = 4, own_squared = 16, clipped to 4: z = 2, a score of 3
    patient["LH_pip_E__3"] = 1.0  # own = 1, own_squared = 1 (inside the range): z = 0.5, a score of 2**0.5 - 1
    out = hand.corrected(patient)
    assert out.loc[0, "LH_pip_E__2"] == pytest.approx(3.0)
    assert out.loc[0, "LH_pip_E__3"] == pytest.approx(2 ** 0.5 - 1)
    unclipped = ContextModel(weights=hand.weights, thresholds=hand.thresholds, fill=hand.fill)
    assert unclipped.corrected(patient).loc[0, "LH_pip_E__2"] == pytest.approx(5.0)  # 2**8 - 1, cut to hand max 5
    # saved and read back with its ranges; a range of the wrong length is refused by name
    hand.save(tmp_path / "context.json")
    assert load_context(tmp_path).corrected(patient).loc[0, "LH_pip_E__2"] == pytest.approx(3.0)
    doc = json.loads((tmp_path / "context.json").read_text())
    doc["linear_range"]["narrowing"] = [lowest, highest[:3]]
    (tmp_path / "context.json").write_text(json.dumps(doc))
    with pytest.raises(Ra2Error, match="linear_range of 'narrowing' must be"):
        load_context(tmp_path)
