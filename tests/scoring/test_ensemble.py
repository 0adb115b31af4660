"""Training a tiny ensemble on synthetic crops: files written, OOF threshold, reload identity, determinism."""

import json

import numpy as np
import pytest

from ra2.models_folder import MEMBER_FILES
from ra2.profiles import RegressorConfig, regressor_profile
from ra2.scoring.data import CropSet, standardize
from ra2.scoring.ensemble import Ensemble, load_ensembles
from ra2.scoring.models import build_regressor
from ra2.scoring.predict import predict_images
from ra2.scoring.thresholds import apply_threshold
from ra2.scoring.train import train_ensemble


def synthetic_crops(n=96, size=24, patients=12, seed=0):
    """Crops whose dark central disk grows darker with the score (0-4), noise elsewhere."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 0, 0, 0, 1, 2, 3, 4], size=n).astype(np.float32)
    yy, xx = np.mgrid[:size, :size]
    disk = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 4) ** 2
    images = rng.normal(0.5, 0.05, (n, size, size)).astype(np.float32)
    images -= disk[None] * labels[:, None, None] * 0.1
    pids = np.array([f"P{i % patients:02d}" for i in range(n)])
    return CropSet("narrowing", images, labels, pids, np.array(["LH_pip_J__2"] * n))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ens") / "narrowing"
    crops = synthetic_crops()
    summary = train_ensemble(crops, regressor_profile("smoke"), out, seed=3, progress=False)
    return out, crops, summary


def test_member_files_and_summary(trained):
    out, crops, summary = trained
    assert summary["members"] == ["member_0", "member_1"]
    for k in range(2):
        for name in MEMBER_FILES:
            assert (out / f"member_{k}" / name).is_file()
        meta = json.loads((out / f"member_{k}" / "metadata.json").read_text())
        assert meta["fold"] == k and meta["seed"] == 3 + 101 * k
        assert 1 <= meta["best_epoch"] <= meta["epochs_run"] <= 2
        assert np.isfinite(meta["validation"]["log2_rmse"])
    spec = json.loads((out / "ensemble.json").read_text())
    assert spec["threshold"] == summary["threshold"]
    # the chosen threshold is the best of its curve and never worse than no threshold
    curve = {float(k): v for k, v in spec["threshold_curve"].items()}
    assert curve[spec["threshold"]] == min(curve.values())
    assert spec["oof"]["log2_rmse_thresholded"] <= spec["oof"]["log2_rmse_raw"] + 1e-12
    # the validation patients of the two members are disjoint and cover all patients
    v0 = set(json.loads((out / "member_0" / "metadata.json").read_text())["validation"]["patients"])
    v1 = set(json.loads((out / "member_1" / "metadata.json").read_text())["validation"]["patients"])
    assert not v0 & v1 and v0 | v1 == set(crops.patient_ids.tolist())


def test_ensemble_reload_gives_identical_predictions(trained):
    out, crops, _ = trained
    images = crops.images[:20]
    a = Ensemble.load(out).predict(images)
    b = Ensemble(out).predict(images)
    np.testing.assert_array_equal(a, b)
    # independent computation: each member rebuilt from its own config, averaged, thresholded
    manual = []
    for k in range(2):
        model = build_regressor(RegressorConfig.from_json(out / f"member_{k}" / "config.json"))
        model.load_weights(str(out / f"member_{k}" / "model.weights.h5"))
        x = standardize(images)[..., None]
        manual.append(np.asarray(model(x, training=False)).reshape(-1))
    spec = json.loads((out / "ensemble.json").read_text())
    expected = apply_threshold(np.clip(np.mean(manual, axis=0), 0, 4), spec["threshold"])
    np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-6)
    assert set(load_ensembles(out.parent)) == {"narrowing"}


def test_tta_averages_views(trained):
    out, crops, _ = trained
    ens = Ensemble(out)
    raw = ens.predict_raw(crops.images[:5], tta=True, views=("identity", "flip"))
    one = ens.predict_raw(crops.images[:5])
    flipped = ens.predict_raw(crops.images[:5, :, ::-1])
    np.testing.assert_allclose(raw, (one + flipped) / 2, rtol=1e-5)


def test_training_is_deterministic(trained, tmp_path):
    out, crops, summary = trained
    again = train_ensemble(crops, regressor_profile("smoke"), tmp_path / "narrowing", seed=3, progress=False)
    assert again["oof"] == summary["oof"]
    x = crops.images[:8]
    np.testing.assert_array_equal(Ensemble(tmp_path / "narrowing").predict_raw(x), Ensemble(out).predict_raw(x))


def test_predict_images_empty():
    model = build_regressor(regressor_profile("smoke").networks["narrowing"])
    assert predict_images(model, np.zeros((0, 24, 24), np.float32)).shape == (0,)


def test_predict_joints_places_predictions_and_leaves_the_rest_unpredicted(trained):
    from ra2 import contract
    from ra2.scoring.ensemble import predict_joints

    out, crops, _ = trained
    ens = Ensemble(out)
    sub = crops.subset(np.arange(3))
    sub = CropSet("narrowing", sub.images, sub.labels, np.array(["A", "A", "B"]),
                  np.array(["LH_pip_J__2", "LH_pip_J__3", "RF_mtp_J__1"]))
    frame = predict_joints({"narrowing": ens}, {"narrowing": sub}, ["B", "A"])
    pred = ens.predict(sub.images)
    assert tuple(frame.columns) == (contract.PATIENT_COLUMN,) + contract.JOINT_COLUMNS  # no Overall_* yet
    assert frame[contract.PATIENT_COLUMN].tolist() == ["B", "A"]
    assert frame.loc[1, "LH_pip_J__2"] == pytest.approx(pred[0])
    assert frame.loc[1, "LH_pip_J__3"] == pytest.approx(pred[1])
    assert frame.loc[0, "RF_mtp_J__1"] == pytest.approx(pred[2])
    assert frame[list(contract.JOINT_COLUMNS)].notna().to_numpy().sum() == 3  # the caller fills the rest


def test_predict_joints_with_context_corrects_raw_predictions(trained):
    from ra2 import contract
    from ra2.scoring.context import FEATURES, ContextModel
    from ra2.scoring.ensemble import predict_joints

    out, crops, _ = trained
    ens = Ensemble(out)
    sub = crops.subset(np.arange(2))
    sub = CropSet("narrowing", sub.images, sub.labels, np.array(["A", "A"]), np.array(["LH_pip_J__2", "RH_pip_J__2"]))
    # log2(y + 1) = 0.5 * own + 0.5 * other side: the two joints move towards each other
    w = [0.5, 0.5] + [0.0] * (len(FEATURES) - 2) + [0.0]
    fill = {c: 0.0 for c in contract.JOINT_COLUMNS}
    model = ContextModel(weights={d: w for d in contract.DATASETS}, thresholds={d: 0.0 for d in contract.DATASETS},
                         fill=fill)
    frame = predict_joints({"narrowing": ens}, {"narrowing": sub}, ["A"], context=model)
    raw = np.clip(ens.predict_raw(sub.images), 0, 4)
    both = 2 ** (0.5 * np.log2(raw[0] + 1) + 0.5 * np.log2(raw[1] + 1)) - 1
    assert frame.loc[0, "LH_pip_J__2"] == pytest.approx(both)
    assert frame.loc[0, "RH_pip_J__2"] == pytest.approx(both)
    assert frame.loc[0, "LH_pip_J__3"] == 0.0  # no crop: the fill value 0, corrected to 0
    narrowing = frame.loc[0, list(contract.NARROWING_COLUMNS)].to_numpy(dtype=float)
    assert narrowing.sum() == pytest.approx(2 * both)  # every other narrowing joint: fill 0, corrected to 0


def test_spread_is_the_std_of_every_member_on_every_view(trained):
    from ra2 import contract
    from ra2.scoring.ensemble import predict_joints_with_spread

    out, crops, _ = trained
    ens = Ensemble(out)
    x = crops.images[:6]
    each = ens.member_view_predictions(x, tta=True)
    assert each.shape == (2, 4, 6)  # 2 members x 4 test-time views x 6 crops
    # the views written out: member k on the flipped crop is view 1
    model = ens.member_network(ens.member_dirs[1])
    np.testing.assert_allclose(each[1, 1], predict_images(model, x[:, :, ::-1]), rtol=1e-5)
    score, spread = ens.predict_with_spread(x, tta=True)
    clipped = np.clip(each, 0, 4).reshape(8, 6)
    np.testing.assert_allclose(spread, np.sqrt(((clipped - clipped.mean(axis=0)) ** 2).mean(axis=0)), rtol=1e-6)
    np.testing.assert_allclose(score, ens.predict(x, tta=True), rtol=1e-6)
    raw, _ = ens.predict_with_spread(x, tta=True, cut=False)
    np.testing.assert_allclose(raw, ens.predict_clipped(x, tta=True), rtol=1e-6)

    sub = CropSet("narrowing", x[:2], crops.labels[:2], np.array(["A", "B"]), np.array(["LH_pip_J__2"] * 2))
    frame, spreads = predict_joints_with_spread({"narrowing": ens}, {"narrowing": sub}, ["A", "B"], tta=True)
    assert list(spreads.columns) == list(frame.columns)
    np.testing.assert_allclose(spreads["LH_pip_J__2"], spread[:2], rtol=1e-6)
    assert spreads[list(contract.JOINT_COLUMNS)].notna().to_numpy().sum() == 2  # NaN without a crop
