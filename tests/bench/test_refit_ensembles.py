"""bench/refit_ensembles.py: test-time augmentation and cut-off re-chosen from the members; the context model
refitted from saved out-of-fold predictions."""

import json

import numpy as np
import pytest

from ra2 import contract
from ra2.profiles import regressor_profile
from ra2.scoring.train import train_regressors

from experiment_cli import call


def test_tta_choice_is_recorded_and_refit_remakes_it(phantom, tmp_path, capsys):
    import dataclasses

    from refit_ensembles import main as refit_main

    from ra2.scoring.data import CropSet
    from ra2.scoring.ensemble import Ensemble
    from ra2.scoring.predict import predict_images, tta_views

    out = tmp_path / "reg"
    prof = dataclasses.replace(regressor_profile("smoke"), tta="auto")
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
    assert call(refit_main, [str(out), "--train", str(phantom / "train"), "--tta", "on",
                             "--crops", str(out / "crops")]) == 0
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
    assert call(refit_main, [str(out), "--train", str(phantom / "train"), "--tta", "off",
                             "--crops", str(out / "crops")]) == 0
    spec_off = json.loads((folder / "ensemble.json").read_text())
    assert spec_off["tta"] is False and spec_off["tta_choice"]["log2_rmse_tta"] is None
    assert spec_off["tta_choice"]["log2_rmse_plain"] == pytest.approx(choice["log2_rmse_plain"], rel=1e-5)

    # crops that are not the ones the ensemble was trained on are refused with the file named
    with np.load(folder / "oof_predictions.npz") as z:
        doctored = {k: z[k] for k in z.files}
    doctored["labels"] = doctored["labels"][::-1].copy()
    np.savez(folder / "oof_predictions.npz", **doctored)
    assert call(refit_main, [str(out), "--train", str(phantom / "train"), "--crops", str(out / "crops")]) == 1
    err = capsys.readouterr().err
    assert "oof_predictions.npz" in err and "not the ones this ensemble was trained on" in err
    assert call(refit_main, [str(out), "--train", str(tmp_path / "nowhere")]) == 1
    assert "nowhere/training.csv: no such file" in capsys.readouterr().err


def test_command_fits_from_saved_out_of_fold_predictions(tmp_path, capsys):
    from refit_ensembles import main

    from ra2.scoring.context import fit_context, load_context

    from csv_factory import context_patients

    raw, gold = context_patients(20, 5, context_matters=True)
    pids = np.array([f"P{i:02d}" for i in range(len(raw))])
    for d in contract.DATASETS:
        cols = [s.column for s in contract.scores_of_dataset(d)]
        (tmp_path / d).mkdir()
        np.savez(tmp_path / d / "oof_predictions.npz", predictions=raw[cols].to_numpy().ravel(),
                 labels=gold[cols].to_numpy().ravel(), patient_ids=np.repeat(pids, len(cols)),
                 columns=np.tile(cols, len(pids)), folds=np.zeros(len(pids) * len(cols), int))
    assert call(main, [str(tmp_path), "--context-only"]) == 0
    assert "with context" in capsys.readouterr().out
    direct = fit_context(raw.set_axis(pids), gold.set_axis(pids))
    saved = load_context(tmp_path)
    for d in contract.DATASETS:
        np.testing.assert_allclose(saved.weights[d], direct.weights[d])
    (tmp_path / "narrowing" / "oof_predictions.npz").unlink()
    assert call(main, [str(tmp_path), "--context-only"]) == 1
    assert "narrowing/oof_predictions.npz: no such file" in capsys.readouterr().err
