"""Re-make the post-training choices of trained ensembles without retraining them.

Training ends with choices made on the out-of-fold predictions (:func:`ra2.scoring.train.finish_ensemble`):
test-time augmentation on or off, then the zero cut-off; the patient context model is fitted on the same
predictions. This module re-predicts each member's validation patients from the training folder the
ensembles were trained on (with and without the test-time views), re-makes those choices, rewrites
``ensemble.json`` and ``oof_predictions.npz``, and refits ``context.json`` when all three ensembles are
there. Use it for ensembles trained before a choice existed, or to try another ``--tta`` mode:

    python bench/refit_ensembles.py ENSEMBLES_DIR --train TRAIN_DIR [--tta auto|on|off]
    python bench/refit_ensembles.py ENSEMBLES_DIR --context-only [--ridge 1.0]   # the context model alone

The crops are cut again (or read from the cache) with each ensemble's crop size and margin; they must come
out in the order the ensemble saved (same patients, columns and scores), else the folder is refused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.models_folder import ENSEMBLE_OOF, METADATA_FILE
from ra2.scoring.data import CropSet, build_crop_sets
from ra2.scoring.ensemble import Ensemble, load_ensembles
from ra2.scoring.predict import predict_images, predict_views
from ra2.scoring.train import TTA_MODES, finish_ensemble, training_csv

from experiment_cli import run_main

_CHOICES = ("threshold", "tta", "tta_choice", "oof", "threshold_curve")  # what finish_ensemble rewrites


def refit_ensemble(ensemble: Ensemble, crops: CropSet, tta_mode: str = "auto") -> dict:
    """Re-predict the out-of-fold crops of ``ensemble`` and re-make its choices; returns the new
    ``ensemble.json`` content (also written, with ``oof_predictions.npz``).

    Args:
        crops: the training crop set of the ensemble's data set, in the order of its
            ``oof_predictions.npz`` (checked).
    """
    folder = ensemble.folder
    path = folder / ENSEMBLE_OOF
    if not path.is_file():
        raise Ra2Error(f"{path}: no such file (the ensemble's folds are needed)")
    with np.load(path, allow_pickle=False) as z:
        saved = {k: z[k] for k in ("labels", "patient_ids", "columns", "folds")}
    same = (len(saved["labels"]) == len(crops)
            and np.array_equal(saved["patient_ids"].astype(str), crops.patient_ids.astype(str))
            and np.array_equal(saved["columns"].astype(str), crops.columns.astype(str))
            and np.allclose(saved["labels"], crops.labels, equal_nan=True))
    if not same:
        raise Ra2Error(f"{path}: the training crops cut now ({len(crops)}) are not the ones this ensemble "
                       f"was trained on ({len(saved['labels'])}); give the same training folder")
    folds = saved["folds"]
    oof = np.full(len(crops), np.nan)
    oof_views = None if tta_mode == "off" else np.full(len(crops), np.nan)
    for member in ensemble.member_dirs:
        meta = json.loads((member / METADATA_FILE).read_text())
        val = folds == int(meta["fold"])
        model = ensemble.member_network(member)
        oof[val] = predict_images(model, crops.images[val])
        if oof_views is not None:
            oof_views[val] = predict_views(model, crops.images[val])
    if np.isnan(oof).any():
        raise Ra2Error(f"{folder}: its members' folds do not cover every training crop")
    summary = {k: v for k, v in ensemble.spec.items() if k not in _CHOICES}
    return finish_ensemble(summary, folder, crops, folds, oof, oof_views, tta_mode, ensemble.config.max_score)


def refit(ensembles_dir: str | Path, train_dir: str | Path, tta_mode: str = "auto",
          annotations: str | Path | None = None, crops_dir: str | Path | None = None) -> dict:
    """:func:`refit_ensemble` for every ensemble under ``ensembles_dir``, then the context model.

    Args:
        train_dir: the challenge-layout training folder the ensembles were trained on.
        annotations: site boxes (default ``train_dir/annotations.json``).
        crops_dir: crop cache (default ``ensembles_dir/crops``).

    Returns:
        data set -> new ``ensemble.json`` content, plus ``"context"`` (the refitted model's cross-fitted
        report) when all three ensembles are there.
    """
    if tta_mode not in TTA_MODES:
        raise Ra2Error(f"unknown test-time augmentation mode {tta_mode!r}; expected one of {TTA_MODES}")
    ensembles_dir, train_dir = Path(ensembles_dir), Path(train_dir)
    csv = training_csv(train_dir)
    result: dict = {}
    for d, ens in load_ensembles(ensembles_dir).items():
        crops = build_crop_sets(train_dir, Path(annotations) if annotations else train_dir / "annotations.json",
                                {d: ens.input_size}, labels_csv=csv, margin=ens.margin,
                                cache_dir=Path(crops_dir) if crops_dir else ensembles_dir / "crops")[d]
        result[d] = refit_ensemble(ens, crops, tta_mode)
    if all((ensembles_dir / d / ENSEMBLE_OOF).is_file() for d in contract.DATASETS):
        from ra2.scoring.context import train_context

        result["context"] = train_context(ensembles_dir).report
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/refit_ensembles.py",
                                     description="Re-choose test-time augmentation and the zero cut-off of "
                                                 "trained ensembles from re-predicted out-of-fold crops; "
                                                 "refits the patient context model.")
    parser.add_argument("ensembles", help="folder with <dataset>/ensemble.json ensembles")
    parser.add_argument("--train", help="the training folder they were trained on (not with --context-only)")
    parser.add_argument("--tta", default="auto", choices=TTA_MODES)
    parser.add_argument("--annotations", help="site boxes (default TRAIN/annotations.json)")
    parser.add_argument("--crops", help="crop cache folder (default ENSEMBLES/crops)")
    parser.add_argument("--context-only", action="store_true",
                        help="only refit the context model on the saved out-of-fold predictions")
    parser.add_argument("--ridge", type=float, default=1.0, help="the context model's ridge penalty")
    args = parser.parse_args(argv)
    if args.context_only:
        from ra2.models_folder import CONTEXT_FILE
        from ra2.scoring.context import train_context

        model = train_context(args.ensembles, ridge=args.ridge)
        for d, rep in model.report["cross_fitted"].items():
            print(f"{d:14s} log2 RMSE {rep['raw_log2_rmse']:.4f} -> {rep['corrected_log2_rmse']:.4f} with "
                  f"context ({model.learner(d)}; cross-fitted, {rep['n_joints']} joints; cut-off "
                  f"{model.thresholds[d]:.2f})")
        for column, rep in model.report.get("totals", {}).items():
            print(f"{column:18s} SC1-weighted log2 error {rep['sum_error']:.4f} (sum of joints) -> "
                  f"{rep['calibrated_error']:.4f} calibrated (cross-fitted)")
        print(f"written {Path(args.ensembles) / CONTEXT_FILE}")
        return 0
    if not args.train:
        parser.error("--train is required (unless --context-only)")
    result = refit(args.ensembles, args.train, args.tta, args.annotations, args.crops)
    for d, spec in result.items():
        if d == "context":
            continue
        c = spec["tta_choice"]
        views = "-" if c["log2_rmse_tta"] is None else f"{c['log2_rmse_tta']:.4f}"
        print(f"{d:14s} out-of-fold log2 RMSE {c['log2_rmse_plain']:.4f} plain, {views} with views -> "
              f"tta {'on' if spec['tta'] else 'off'}, cut-off {spec['threshold']:.2f}")
    if "context" in result:
        print(f"context model refitted: {Path(args.ensembles) / 'context.json'}")
    return 0


if __name__ == "__main__":
    run_main(main)
