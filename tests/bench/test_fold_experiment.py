"""bench/fold_experiment.py: one member on one fold, reported beside the fold's baseline."""

from collections import Counter

import numpy as np
import pytest

from experiment_cli import call


def test_fold_experiment_reports_the_folds_baseline(phantom, tmp_path):
    from fold_experiment import run

    from ra2.scoring.data import build_crop_sets
    from ra2.scoring.folds import fold_indices, patient_folds
    from ra2.scoring.metrics import log2_rmse

    res = run(phantom, "narrowing", profile="smoke", fold=1, size=28, steps=2, schedule="cosine",
              cache_dir=tmp_path / "crops")
    assert res["input_size"] == 28 and res["train_config"]["lr_schedule"] == "cosine"
    crops = build_crop_sets(phantom / "train", phantom / "train" / "annotations.json", {"narrowing": 28},
                            labels_csv=phantom / "train" / "training.csv", cache_dir=tmp_path / "crops")["narrowing"]
    tr, va = fold_indices(patient_folds(crops.patient_ids, 2, seed=0, labels=crops.labels), 1)
    assert (res["n_train"], res["n_val"]) == (len(tr), len(va))
    assert res["baseline_log2_rmse"] == pytest.approx(log2_rmse(np.full(len(va), crops.labels[tr].mean()),
                                                                crops.labels[va]))
    assert res["improvement"] == pytest.approx(1 - res["val_log2_rmse"] / res["baseline_log2_rmse"])
    # a cut-off of 0 is among the candidates, so the searched one can only match or beat the raw RMSE
    assert res["val_log2_rmse_at_cutoff"] <= res["val_log2_rmse"] + 1e-12
    assert sorted(res["mean_prediction_by_score"]) == sorted(set(np.rint(crops.labels[va]).astype(int).tolist()))
    # the per-group errors cover the validation crops' groups and pool back to the fold's error
    from ra2.scoring.context import site_group
    counts = Counter(site_group(str(c)) for c in crops.columns[va])
    by_group = res["val_log2_rmse_by_group"]
    assert set(by_group) == set(counts) and {"wrist_hand", "mcp_hand"} <= set(by_group)
    pooled = sum(counts[g] * by_group[g] ** 2 for g in counts) / len(va)
    assert np.sqrt(pooled) == pytest.approx(res["val_log2_rmse"], abs=1e-3)


def test_fold_experiment_network_and_patience_overrides(phantom, tmp_path):
    from fold_experiment import run

    from ra2 import Ra2Error

    res = run(phantom, "narrowing", profile="smoke", fold=0, size=24, steps=1, epochs=3, patience=1,
              cache_dir=tmp_path / "crops", net_changes={"stem_strides": 2, "blocks": [1]})
    assert res["net_changes"] == {"stem_strides": 2, "blocks": [1]}
    assert res["train_config"]["patience"] == 1
    # patience 1: it ran, validated every epoch it ran, and stopped the epoch after its best (or at epoch 3)
    runs, best, hist = res["epochs_run"], res["best_epoch"], res["history"]
    assert 1 <= best <= runs <= 3 and len(hist) == runs
    assert runs == 3 or runs == best + 1, (runs, best, hist)
    assert hist[best - 1] == min(hist)
    with pytest.raises(Ra2Error, match="unknown network setting 'stem_stride'"):
        run(phantom, "narrowing", profile="smoke", cache_dir=tmp_path / "crops", net_changes={"stem_stride": 2})
    with pytest.raises(Ra2Error, match="must be a JSON object"):
        run(phantom, "narrowing", profile="smoke", cache_dir=tmp_path / "crops", net_changes=[2])


def test_fold_experiment_training_overrides(phantom, tmp_path):
    from fold_experiment import main, run

    from ra2 import Ra2Error

    res = run(phantom, "narrowing", profile="smoke", fold=0, size=24, steps=1, epochs=1,
              cache_dir=tmp_path / "crops", train_changes={"prior_bias": True, "batch_size": 8})
    assert res["train_changes"] == {"prior_bias": True, "batch_size": 8}
    assert res["train_config"]["prior_bias"] is True and res["train_config"]["batch_size"] == 8
    with pytest.raises(Ra2Error, match="unknown training setting 'prior'"):
        run(phantom, "narrowing", profile="smoke", cache_dir=tmp_path / "crops", train_changes={"prior": 1})
    assert call(main, ["--data", str(phantom), "--dataset", "narrowing", "--profile", "smoke",
                       "--train", "[1]"]) == 1
