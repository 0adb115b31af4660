"""ra2.scoring.train: the epoch order of a member's training, the test-time-augmentation choice, and
``train_regressors(profile="smoke")`` end to end on the shared phantom with its command line."""

import json
import math

import numpy as np
import pytest

from ra2 import Ra2Error, contract
from ra2.cli import main
from ra2.models_folder import MEMBER_FILES
from ra2.profiles import regressor_profile
from ra2.scoring.ensemble import load_ensembles
from ra2.scoring.sampling import class_counts
from ra2.scoring.train import train_regressors

from conftest import PHANTOM


def test_epoch_order_fills_fixed_steps_with_balanced_draws():
    from ra2.profiles import TrainConfig
    from ra2.scoring.train import _epoch_order

    labels = np.array([0] * 50 + [1] * 3 + [2] * 2, dtype=np.float32)  # balanced epoch: 3 x 3 = 9 samples
    cfg = TrainConfig(batch_size=4, steps_per_epoch=5, sampling="balanced")
    order = _epoch_order(labels, cfg, np.random.default_rng(0))
    assert len(order) == 20
    # built from whole balanced draws (9 each): the first 18 hold every class exactly 6 times
    assert class_counts(labels[order[:18]]) == {0: 6, 1: 6, 2: 6}
    plain = _epoch_order(labels, TrainConfig(batch_size=4, steps_per_epoch=None, sampling="none"),
                         np.random.default_rng(0))
    assert sorted(plain.tolist()) == list(range(55))


def test_epoch_order_oversamples_within_fixed_steps():
    from ra2.profiles import TrainConfig
    from ra2.scoring.train import _epoch_order

    labels = np.array([0] * 20 + [3] * 2, dtype=np.float32)  # one pass: 20 zeros + 2 x 5 repeats = 30
    order = _epoch_order(labels, TrainConfig(batch_size=10, steps_per_epoch=6, sampling="none", oversample=5),
                         np.random.default_rng(1))
    assert len(order) == 60
    assert class_counts(labels[order]) == {0: 40, 3: 20}  # two whole passes


def test_choose_tta_follows_the_out_of_fold_error():
    from ra2.scoring.train import choose_tta

    labels = np.array([0.0, 0.0, 1.0, 3.0])
    plain = np.array([0.5, 0.0, 1.0, 3.0])  # one error of log2(1.5) = 0.585 on a true 0
    views = np.array([0.0, 0.0, 1.0, 7.0])  # one error of log2(8/4) = 1 on the true 3
    use, rep = choose_tta("auto", plain, views, labels, max_score=5)
    assert not use  # a tie: 0.585 each
    assert rep["log2_rmse_plain"] == pytest.approx(math.sqrt(math.log2(1.5) ** 2 / 4))
    # clipped to the top score before scoring: 7 -> 5, an error of log2(6/4)
    assert rep["log2_rmse_tta"] == pytest.approx(math.sqrt(math.log2(1.5) ** 2 / 4))
    # a tie goes to off (the cheaper); a better view average wins; "on" / "off" force
    views_better = np.array([0.2, 0.0, 1.0, 3.0])
    assert choose_tta("auto", plain, views_better, labels, 5)[0] is True
    assert choose_tta("on", plain, views, labels, 5)[0] is True
    assert choose_tta("off", plain, views_better, labels, 5)[0] is False
    assert choose_tta("off", plain, None, labels, 5) == (False, {"mode": "off",
                                                               "log2_rmse_plain": rep["log2_rmse_plain"],
                                                               "log2_rmse_tta": None})
    with pytest.raises(Ra2Error, match="unknown test-time augmentation mode 'yes'"):
        choose_tta("yes", plain, views, labels, 5)


@pytest.mark.thorough
def test_train_regressors_smoke(phantom, tmp_path):
    out = tmp_path / "regressors"
    result = train_regressors(phantom / "train", out, profile="smoke", progress=False, seed=1)
    prof = regressor_profile("smoke")
    assert set(result) == set(contract.DATASETS) | {"seconds", "context"}
    assert (out / "context.json").is_file()
    assert set(result["context"]["cross_fitted"]) == set(contract.DATASETS)
    for d in contract.DATASETS:
        for k in range(prof.n_folds):
            for name in MEMBER_FILES:
                assert (out / d / f"member_{k}" / name).is_file()
        spec = json.loads((out / d / "ensemble.json").read_text())
        assert spec["threshold"] == result[d]["threshold"]
        # one sample per (patient, score column) of the data set
        assert spec["oof"]["n_samples"] == PHANTOM["train_patients"] * len(contract.scores_of_dataset(d))
        assert spec["oof"]["n_patients"] == PHANTOM["train_patients"]
    # crops were cached and the ensembles load and predict in range
    assert len(list((out / "crops").glob("*.npz"))) == 3
    ens = load_ensembles(out)
    for d, e in ens.items():
        x = np.random.default_rng(0).random((4, e.input_size, e.input_size)).astype(np.float32)
        p = e.predict(x)
        assert p.shape == (4,) and np.all((p >= 0) & (p <= contract.DATASET_MAX[d]))


def test_cli_train_regressors_is_a_thin_call(tmp_path, capsys, monkeypatch):
    import ra2.scoring.train as train_module

    calls = []

    def fake(train_dir, out_dir, **kw):
        calls.append((train_dir, out_dir, kw))
        oof = {"log2_rmse_thresholded": 0.25, "n_samples": 7}
        return {d: {"threshold": 0.3, "oof": oof} for d in contract.DATASETS} | {"seconds": 1.0}

    monkeypatch.setattr(train_module, "train_regressors", fake)
    rc = main(["train-regressors", "--train", str(tmp_path / "t"), "--out", str(tmp_path / "o"), "--profile",
               "cpu", "--no-progress", "--crops", str(tmp_path / "c"), "--seed", "4"])
    assert rc == 0
    (train_dir, out_dir, kw), = calls
    assert train_dir == tmp_path / "t" and out_dir == tmp_path / "o"
    devices = kw.pop("devices")  # the switches' defaults, resolved: float32, no XLA, one device here
    assert (devices.mixed_precision, devices.xla, devices.replicas) == (False, False, 1)
    assert kw == {"profile": "cpu", "crops_dir": tmp_path / "c", "progress": False, "seed": 4,
                  "annotations": None}
    text = capsys.readouterr().out
    assert text.count("threshold 0.30") == 3 and "0.2500" in text


def test_missing_training_csv_is_a_user_error(tmp_path):
    with pytest.raises(Ra2Error, match="training.csv"):
        train_regressors(tmp_path, tmp_path / "out")
    assert main(["train-regressors", "--train", str(tmp_path), "--out", str(tmp_path / "o")]) == 1


def test_val_every_validates_every_kth_and_the_last_epoch(phantom, tmp_path):
    import dataclasses

    from ra2.scoring.data import build_crop_sets
    from ra2.scoring.folds import fold_indices, patient_folds
    from ra2.scoring.train import train_member

    prof = regressor_profile("smoke")
    net = dataclasses.replace(prof.networks["narrowing"], input_size=24)
    crops = build_crop_sets(phantom / "train", phantom / "train" / "annotations.json", {"narrowing": 24},
                            labels_csv=phantom / "train" / "training.csv", cache_dir=tmp_path / "crops")["narrowing"]
    tr, va = fold_indices(patient_folds(crops.patient_ids, 2, seed=0, labels=crops.labels), 0)
    train = dataclasses.replace(prof.training["narrowing"], epochs=5, steps_per_epoch=1, patience=100, val_every=2)
    _, meta, pred = train_member(net, train, crops.subset(tr), crops.subset(va), progress=False)
    assert [h["epoch"] for h in meta["history"]] == [2, 4, 5]
    assert meta["epochs_run"] == 5 and meta["epochs_validated"] == 3
    assert meta["best_epoch"] in (2, 4, 5) and pred.shape == (len(va),)
    # patience counts epochs, not validations: with 2 epochs of patience it stops at the first validation
    # that does not improve (a new best is always found at the first one, epoch 2)
    train = dataclasses.replace(train, epochs=9, patience=2, learning_rate=0.0)
    _, meta, _ = train_member(net, train, crops.subset(tr), crops.subset(va), progress=False)
    assert [h["epoch"] for h in meta["history"]] == [2, 4] and meta["epochs_run"] == 4
