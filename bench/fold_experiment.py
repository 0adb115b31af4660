"""Try a training recipe on one validation fold of the training patients (model selection, not evaluation).

    python bench/fold_experiment.py --data PHANTOM --dataset hand_erosion [--fold 0] [--size 96]
        [--epochs 10] [--steps 30] [--lr 1e-3] [--schedule cosine] [--sampling none] [--loss mae]
        [--net '{"stem_strides": 1}'] [--train '{"oversample": 4, "oversample_unbiased": true}']

Cuts the ground-truth crops of ``PHANTOM/train`` (``annotations.json``, scores from ``training.csv``),
splits the training patients into the profile's folds (:func:`ra2.scoring.folds.patient_folds`, the split
the ensembles use), trains one member on every fold but ``--fold`` and reports its validation per-joint log2
RMSE beside the fold's baseline (every validation crop predicted as the mean score of the fold's training
crops), and the RMSE at the zero cut-off that is best on the same fold (optimistic: for comparing recipes
that shift the predictions, such as oversampling), the validation RMSE per joint group and the mean prediction
per true score. The held-out
``PHANTOM/test`` patients are never read, so recipes chosen here do not see them. Each run appends one
JSON line to ``--log`` (default ``PHANTOM/../fold_experiments.jsonl``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.profiles import PROFILES

from experiment_cli import run_main


def run(data_dir: str | Path, dataset: str, profile: str = "cpu", fold: int = 0, size: int | None = None,
        epochs: int | None = None, steps: int | None = None, lr: float | None = None,
        schedule: str | None = None, sampling: str | None = None, loss: str | None = None,
        seed: int = 0, cache_dir: str | Path | None = None, progress: bool = False,
        net_changes: dict | None = None, patience: int | None = None,
        train_changes: dict | None = None) -> dict:
    """Train one member of ``dataset`` on the training folds, score it on fold ``fold``; returns the result.

    Every ``None`` argument keeps the profile's setting. ``size``: crop side in pixels. ``net_changes``:
    :class:`~ra2.scoring.models.RegressorConfig` fields to replace (e.g. ``{"stem_strides": 1}``).
    """
    from ra2.profiles import regressor_profile
    from ra2.scoring.context import site_group
    from ra2.scoring.data import build_crop_sets
    from ra2.scoring.folds import fold_indices, patient_folds
    from ra2.scoring.metrics import log2_rmse
    from ra2.scoring.thresholds import search_threshold
    from ra2.scoring.train import train_member

    data_dir = Path(data_dir)
    prof = regressor_profile(profile, sampling, epochs, patience)
    net = prof.networks[dataset]
    if size is not None:
        net = dataclasses.replace(net, input_size=size)
    if net_changes is not None and not isinstance(net_changes, dict):
        raise Ra2Error(f"network settings must be a JSON object of RegressorConfig fields, got {net_changes!r}")
    if net_changes:
        fields = {f.name for f in dataclasses.fields(net)}
        unknown = sorted(set(net_changes) - fields)
        if unknown:
            raise Ra2Error(f"unknown network setting {unknown[0]!r}; expected one of {sorted(fields)}")
        net = dataclasses.replace(net, **{k: tuple(v) if isinstance(v, list) else v
                                          for k, v in net_changes.items()})
    train = prof.training[dataset]
    changes = {k: v for k, v in (("steps_per_epoch", steps), ("learning_rate", lr), ("lr_schedule", schedule),
                                 ("loss", loss)) if v is not None}
    if train_changes is not None and not isinstance(train_changes, dict):
        raise Ra2Error(f"training settings must be a JSON object of TrainConfig fields, got {train_changes!r}")
    if train_changes:
        fields = {f.name for f in dataclasses.fields(train)} - {"augment"}
        unknown = sorted(set(train_changes) - fields)
        if unknown:
            raise Ra2Error(f"unknown training setting {unknown[0]!r}; expected one of {sorted(fields)}")
        changes.update(train_changes)
    train = dataclasses.replace(train, **changes)
    crops = build_crop_sets(data_dir / "train", data_dir / "train" / "annotations.json",
                            {dataset: net.input_size}, labels_csv=data_dir / "train" / "training.csv",
                            margin=prof.margin, cache_dir=cache_dir or data_dir.parent / "crops")[dataset]
    folds = patient_folds(crops.patient_ids, prof.n_folds, seed=seed, labels=crops.labels)
    tr, va = fold_indices(folds, fold)
    t0 = time.time()
    _, meta, pred = train_member(net, train, crops.subset(tr), crops.subset(va), seed=seed + 101 * fold,
                                 progress=progress, desc=f"{dataset} fold {fold}")
    gold = crops.labels[va]
    baseline = log2_rmse(np.full(len(va), crops.labels[tr].mean()), gold)
    cutoff, curve = search_threshold(pred, gold)
    groups = np.array([site_group(str(c)) for c in crops.columns[va]])
    return {
        "dataset": dataset, "profile": profile, "fold": fold, "input_size": net.input_size,
        "net_changes": net_changes or {}, "train_changes": train_changes or {},
        "train_config": {k: v for k, v in train.to_dict().items() if k != "augment"},
        "n_train": int(len(tr)), "n_val": int(len(va)), "n_train_nonzero": int((crops.labels[tr] > 0).sum()),
        "val_log2_rmse": meta["validation"]["log2_rmse"], "baseline_log2_rmse": baseline,
        "zeros_log2_rmse": log2_rmse(np.zeros_like(gold), gold),
        "improvement": 1.0 - meta["validation"]["log2_rmse"] / baseline,
        # the zero cut-off searched on this same validation fold: optimistic, for comparing recipes only
        "val_cutoff": cutoff, "val_log2_rmse_at_cutoff": curve[cutoff],
        # per joint group (mcp_hand, wrist_hand, mtp_foot, ...): where a recipe helps or hurts
        "val_log2_rmse_by_group": {g: round(log2_rmse(pred[groups == g], gold[groups == g]), 4)
                                   for g in sorted(set(groups))},
        "mean_prediction_by_score": {int(v): round(float(pred[np.rint(gold) == v].mean()), 3)
                                     for v in np.unique(np.rint(gold[np.isfinite(gold)]))},
        "best_epoch": meta["best_epoch"], "epochs_run": meta["epochs_run"],
        "history": [round(h["val_log2_rmse"], 4) for h in meta["history"]],
        "seconds": round(time.time() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/fold_experiment.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="phantom folder (train/ is used, test/ never)")
    parser.add_argument("--dataset", required=True, choices=contract.DATASETS)
    parser.add_argument("--profile", default="cpu", choices=PROFILES)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--size", type=int, help="crop side in pixels")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps", type=int, help="batches per epoch")
    parser.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    parser.add_argument("--lr", type=float, help="(initial) learning rate")
    parser.add_argument("--schedule", choices=("constant", "cosine"))
    parser.add_argument("--sampling", choices=("balanced", "weights", "none"))
    parser.add_argument("--loss", choices=("mae", "logcosh", "mse", "log2_mse"))
    parser.add_argument("--net", type=json.loads, default=None,
                        help='network settings to replace, as JSON, e.g. \'{"stem_strides": 1, "blocks": [4, 8]}\'')
    parser.add_argument("--train", type=json.loads, default=None, dest="train_changes",
                        help='training settings to replace, as JSON, e.g. \'{"prior_bias": true}\'')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", help="JSON-lines file the result is appended to")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.data, args.dataset, args.profile, args.fold, args.size, args.epochs, args.steps,
                 args.lr, args.schedule, args.sampling, args.loss, args.seed, progress=args.progress,
                 net_changes=args.net, patience=args.patience, train_changes=args.train_changes)
    log = Path(args.log) if args.log else Path(args.data).parent / "fold_experiments.jsonl"
    with log.open("a") as f:
        f.write(json.dumps(result, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "train_config"}))
    return 0


if __name__ == "__main__":
    run_main(main)
