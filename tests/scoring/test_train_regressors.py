"""End to end on a tiny phantom: ``train_regressors(profile="smoke")`` and the CLI subcommand."""

import json

import numpy as np
import pytest

from ra2 import Ra2Error, contract
from ra2.cli import main
from ra2.scoring.ensemble import load_ensembles
from ra2.scoring.profiles import get_profile
from ra2.scoring.train import MEMBER_FILES, train_regressors


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from ra2.phantom import generate_dataset

    root = tmp_path_factory.mktemp("phantom")
    generate_dataset(root, train_patients=3, test_patients=1, seed=5, size_scale=0.25)
    return root


def test_train_regressors_smoke(phantom, tmp_path):
    out = tmp_path / "regressors"
    result = train_regressors(phantom / "train", out, profile="smoke", progress=False, seed=1)
    prof = get_profile("smoke")
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
        assert spec["oof"]["n_samples"] == 3 * len(contract.scores_of_dataset(d))
        assert spec["oof"]["n_patients"] == 3
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
    assert kw == {"profile": "cpu", "crops_dir": tmp_path / "c", "progress": False, "seed": 4,
                  "annotations": None}
    text = capsys.readouterr().out
    assert text.count("threshold 0.30") == 3 and "0.2500" in text


def test_missing_training_csv_is_a_user_error(tmp_path):
    with pytest.raises(Ra2Error, match="training.csv"):
        train_regressors(tmp_path, tmp_path / "out")
    assert main(["train-regressors", "--train", str(tmp_path), "--out", str(tmp_path / "o")]) == 1


def test_evaluate_reports_baseline_computed_from_the_csvs(phantom, tmp_path):
    import pandas as pd

    from ra2.scoring.evaluate import evaluate, markdown
    from ra2.scoring.metrics import log2_rmse

    result = evaluate(phantom, tmp_path / "ev", profile="smoke", datasets=["narrowing"], progress=False)
    assert set(result["groups"]) == {"narrowing"}
    train = pd.read_csv(phantom / "train" / "training.csv")
    gold = pd.read_csv(phantom / "gold.csv")
    cols = list(contract.NARROWING_COLUMNS)
    mean = train[cols].mean().to_numpy()
    expected = log2_rmse(np.tile(mean, (len(gold), 1)), gold[cols].to_numpy())
    g = result["groups"]["narrowing"]
    assert g["baseline_log2_rmse"] == pytest.approx(expected)
    assert g["n_joints"] == len(gold) * len(cols)
    assert g["improvement"] == pytest.approx(1 - g["ensemble_log2_rmse"] / g["baseline_log2_rmse"])
    assert (tmp_path / "ev" / "evaluation.json").is_file()
    assert "| narrowing |" in markdown(result)

    # Official SC2 of the baseline, by hand: per-patient RMSE in log2 space, weighted by the gold total.
    from ra2.metrics import per_joint_log2_rmse, weights_from_total

    off = result["official"]
    assert set(off) == {"sc2", "all"}  # SC3 needs both erosion data sets
    per_patient = np.sqrt(np.mean((np.log2(mean + 1) - np.log2(gold[cols].to_numpy() + 1)) ** 2, axis=1))
    w = weights_from_total(gold["Overall_Tol"].to_numpy(dtype=float))
    assert off["sc2"]["baseline"] == pytest.approx(float((w * per_patient).sum() / w.sum()))
    assert off["sc2"]["improvement"] == pytest.approx(1 - off["sc2"]["ensemble"] / off["sc2"]["baseline"])
    assert "| SC2 |" in markdown(result)
    # The ensemble's frame: narrowing cells are the crop predictions (same pooled error), the others the
    # training means; every narrowing joint had a crop.
    frame = pd.read_csv(tmp_path / "ev" / "predictions.csv", dtype={"Patient_ID": str})
    assert list(frame.columns) == list(contract.COLUMNS)
    gold_s = gold.astype({"Patient_ID": str})
    assert per_joint_log2_rmse(frame, gold_s, cols) == pytest.approx(g["ensemble_log2_rmse"])
    ecols = list(contract.EROSION_COLUMNS)
    np.testing.assert_allclose(frame[ecols].to_numpy(), np.tile(train[ecols].mean().to_numpy(), (len(frame), 1)))
    assert result["joints_filled_with_baseline"] == 0
    # Scoring the trained ensembles again without training gives the same numbers.
    again = evaluate(phantom, tmp_path / "ev2", datasets=["narrowing"], progress=False,
                     ensembles_dir=tmp_path / "ev" / "ensembles")
    assert again["groups"] == result["groups"] and again["official"] == result["official"]
    with pytest.raises(Ra2Error, match="no trained hand_erosion"):
        evaluate(phantom, tmp_path / "ev3", datasets=["hand_erosion"], ensembles_dir=tmp_path / "ev" / "ensembles")


def test_fold_experiment_reports_the_folds_baseline(phantom, tmp_path):
    from ra2.scoring.data import build_crop_sets
    from ra2.scoring.fold_experiment import run
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


def test_fold_experiment_network_and_patience_overrides(phantom, tmp_path):
    from ra2 import Ra2Error
    from ra2.scoring.fold_experiment import run

    res = run(phantom, "narrowing", profile="smoke", fold=0, size=24, steps=1, epochs=3, patience=1,
              cache_dir=tmp_path / "crops", net_changes={"stem_strides": 2, "blocks": [1]})
    assert res["net_changes"] == {"stem_strides": 2, "blocks": [1]}
    assert res["train_config"]["patience"] == 1
    assert res["epochs_run"] <= 3
    with pytest.raises(Ra2Error, match="unknown network setting 'stem_stride'"):
        run(phantom, "narrowing", profile="smoke", cache_dir=tmp_path / "crops", net_changes={"stem_stride": 2})
    with pytest.raises(Ra2Error, match="must be a JSON object"):
        run(phantom, "narrowing", profile="smoke", cache_dir=tmp_path / "crops", net_changes=[2])


def test_fold_experiment_training_overrides(phantom, tmp_path):
    from ra2 import Ra2Error
    from ra2.scoring.fold_experiment import main, run

    res = run(phantom, "narrowing", profile="smoke", fold=0, size=24, steps=1, epochs=1,
              cache_dir=tmp_path / "crops", train_changes={"prior_bias": True, "batch_size": 8})
    assert res["train_changes"] == {"prior_bias": True, "batch_size": 8}
    assert res["train_config"]["prior_bias"] is True and res["train_config"]["batch_size"] == 8
    with pytest.raises(Ra2Error, match="unknown training setting 'prior'"):
        run(phantom, "narrowing", profile="smoke", cache_dir=tmp_path / "crops", train_changes={"prior": 1})
    assert main(["--data", str(phantom), "--dataset", "narrowing", "--profile", "smoke",
                 "--train", "[1]"]) == 1


def test_evaluate_with_patient_context_scores_its_own_frame(phantom, tmp_path):
    import pandas as pd

    from ra2.metrics import score
    from ra2.scoring.evaluate import evaluate, markdown

    result = evaluate(phantom, tmp_path / "ev", profile="smoke", progress=False)
    ctx = result["with_context"]
    assert ctx is not None and (tmp_path / "ev" / "ensembles" / "context.json").is_file()
    frame = pd.read_csv(tmp_path / "ev" / "predictions_context.csv")
    assert tuple(frame.columns) == contract.COLUMNS
    np.testing.assert_allclose(frame[list(contract.EROSION_COLUMNS)].sum(axis=1), frame[contract.OVERALL_EROSION])
    again = score(frame, pd.read_csv(phantom / "gold.csv"))
    assert ctx["official"]["sc3"]["ensemble"] == pytest.approx(again["sc3"])
    assert ctx["official"]["sc2"]["ensemble"] == pytest.approx(again["sc2"])
    assert ctx["official"]["sc3"]["baseline"] == pytest.approx(result["official"]["sc3"]["baseline"])
    assert "SC3, with patient context" in markdown(result)


def test_val_every_validates_every_kth_and_the_last_epoch(phantom, tmp_path):
    import dataclasses

    from ra2.scoring.data import build_crop_sets
    from ra2.scoring.folds import fold_indices, patient_folds
    from ra2.scoring.train import train_member

    prof = get_profile("smoke")
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


def test_tta_choice_is_recorded_and_refit_remakes_it(phantom, tmp_path, capsys):
    import dataclasses

    from ra2.scoring.augment import tta_views
    from ra2.scoring.data import CropSet
    from ra2.scoring.ensemble import Ensemble
    from ra2.scoring.refit import main as refit_main
    from ra2.scoring.train import predict_images

    out = tmp_path / "reg"
    prof = dataclasses.replace(get_profile("smoke"), tta="auto")
    train_regressors(phantom / "train", out, profile=prof, progress=False, seed=1, datasets=["narrowing"])
    folder = out / "narrowing"
    spec = json.loads((folder / "ensemble.json").read_text())
    choice = spec["tta_choice"]
    assert choice["mode"] == "auto"
    assert spec["tta"] == (choice["log2_rmse_tta"] < choice["log2_rmse_plain"] - 1e-12)
    assert spec["oof"]["log2_rmse_raw"] == pytest.approx(
        choice["log2_rmse_tta"] if spec["tta"] else choice["log2_rmse_plain"])
    assert Ensemble(folder).spec["tta"] == spec["tta"]
    with np.load(folder / "oof_predictions.npz") as z:
        trained = {k: z[k] for k in z.files}

    # forced on: the saved out-of-fold predictions become each member's mean over the views, on its own
    # validation patients (worked out here from the member files and the cached crops)
    assert refit_main([str(out), "--train", str(phantom / "train"), "--tta", "on", "--crops", str(out / "crops")]) == 0
    assert "tta on" in capsys.readouterr().out
    spec_on = json.loads((folder / "ensemble.json").read_text())
    assert spec_on["tta"] is True and spec_on["members"] == spec["members"]
    crops = CropSet.load(next((out / "crops").glob("narrowing_*.npz")))
    ens = Ensemble(folder)
    expected = np.full(len(crops), np.nan)
    for k, member in enumerate(ens.member_dirs):
        val = trained["folds"] == k
        model = ens.member_network(member)
        expected[val] = np.mean([predict_images(model, v) for v in tta_views(crops.images[val])], axis=0)
    with np.load(folder / "oof_predictions.npz") as z:
        np.testing.assert_allclose(z["predictions"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(z["folds"], trained["folds"])

    # forced off: the plain predictions reproduce what training saved (when training chose off)
    assert refit_main([str(out), "--train", str(phantom / "train"), "--tta", "off", "--crops", str(out / "crops")]) == 0
    spec_off = json.loads((folder / "ensemble.json").read_text())
    assert spec_off["tta"] is False and spec_off["tta_choice"]["log2_rmse_tta"] is None
    assert spec_off["tta_choice"]["log2_rmse_plain"] == pytest.approx(choice["log2_rmse_plain"], rel=1e-5)

    # crops that are not the ones the ensemble was trained on are refused with the file named
    with np.load(folder / "oof_predictions.npz") as z:
        doctored = {k: z[k] for k in z.files}
    doctored["labels"] = doctored["labels"][::-1].copy()
    np.savez(folder / "oof_predictions.npz", **doctored)
    assert refit_main([str(out), "--train", str(phantom / "train"), "--crops", str(out / "crops")]) == 1
    err = capsys.readouterr().err
    assert "oof_predictions.npz" in err and "not the ones this ensemble was trained on" in err
    assert refit_main([str(out), "--train", str(tmp_path / "nowhere")]) == 1
    assert "nowhere/training.csv: no such file" in capsys.readouterr().err
