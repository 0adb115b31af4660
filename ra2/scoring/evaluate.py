"""Measure the regressors on held-out phantom patients, against a predict-the-training-mean baseline.

    python -m ra2.scoring.evaluate --data DIR --out DIR [--profile cpu] [--train-patients 40]
        [--test-patients 15] [--size-scale 0.5] [--seed 0]

Generates a phantom set in ``--data`` (unless ``DIR/train/training.csv`` already exists), trains the three
ensembles on ground-truth crops of ``DIR/train`` (:func:`ra2.scoring.train.train_regressors`), cuts the
ground-truth crops of the held-out ``DIR/test`` patients (``gold_annotations.json``, scores from
``gold.csv``), predicts them and reports the per-joint log2 RMSE for narrowing and for erosion (foot and
hand erosion pooled) of

- the ensembles (averaged members, zero threshold from out-of-fold predictions),
- the baseline: every joint predicted as its column's mean over the training patients,
- all-zero predictions (for scale).

The improvement is ``1 - ensemble / baseline``. Beside this pooled per-joint form it reports the official
SC2 (narrowing) and SC3 (erosion) of :func:`ra2.metrics.score`: the ensembles' crop predictions are put
into a 90-column prediction frame of the held-out patients (``OUT/predictions.csv``; columns of a data
set not trained in this run keep the baseline's value, and SC2/SC3 are reported only when every data set
of their columns was trained) and scored against ``gold.csv``, like the baseline's frame from
:func:`ra2.baseline.predict_means`. Results go to ``OUT/evaluation.json`` and are printed as Markdown
tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.baseline import predict_means
from ra2.scoring.metrics import log2_rmse

GROUPS = {"narrowing": ("narrowing",), "erosion": ("foot_erosion", "hand_erosion")}
OFFICIAL = {"narrowing": "sc2", "erosion": "sc3"}  # the official metric of each group's columns


def evaluate(data_dir: str | Path, out_dir: str | Path, profile: str = "cpu", train_patients: int = 40,
             test_patients: int = 15, size_scale: float = 0.5, seed: int = 0, progress: bool = True,
             tta: bool | None = None, sampling: str | None = None, epochs: int | None = None,
             patience: int | None = None, datasets=None, ensembles_dir: str | Path | None = None) -> dict:
    """Train on the phantom's train split, score its test split; returns (and writes) the results.

    ``ensembles_dir``: score the ensembles already trained there (``<dataset>/ensemble.json`` + members,
    as written by :func:`~ra2.scoring.train.train_regressors`) instead of training; ``profile``,
    ``sampling``, ``epochs``, ``patience`` are then ignored. ``tta``: None follows each ensemble's
    recorded choice (``ensemble.json``), True / False forces test-time augmentation on / off.
    """
    from ra2.io import read_gold_csv, read_training_csv
    from ra2.scoring.aggregate import add_overall
    from ra2.scoring.context import load_context
    from ra2.scoring.data import build_crop_sets, read_labels
    from ra2.scoring.thresholds import apply_threshold
    from ra2.scoring.ensemble import Ensemble
    from ra2.scoring.profiles import get_profile
    from ra2.scoring.train import train_regressors

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    t0 = time.time()
    generated = not (data_dir / "train" / "training.csv").is_file()
    if generated:
        from ra2.phantom import generate_dataset

        generate_dataset(data_dir, train_patients=train_patients, test_patients=test_patients, seed=seed,
                         size_scale=size_scale)
    t_data = time.time() - t0
    datasets = tuple(datasets or contract.DATASETS)
    if ensembles_dir is None:
        ensembles_dir = out_dir / "ensembles"
        trained = train_regressors(data_dir / "train", ensembles_dir,
                                   profile=get_profile(profile, sampling, epochs, patience), progress=progress,
                                   seed=seed, crops_dir=out_dir / "crops", datasets=datasets)
    else:
        ensembles_dir = Path(ensembles_dir)
        trained = {}
        for d in datasets:
            spec = ensembles_dir / d / "ensemble.json"
            if not spec.is_file():
                raise Ra2Error(f"{spec}: no such file (no trained {d} ensemble in {ensembles_dir})")
            trained[d] = json.loads(spec.read_text())
        profile = trained[datasets[0]].get("profile", "unknown")
    t_train = time.time() - t0 - t_data

    train_labels = read_labels(data_dir / "train" / "training.csv")
    column_mean = train_labels[list(contract.JOINT_COLUMNS)].astype(float).mean(axis=0)
    ensembles = {d: Ensemble(ensembles_dir / d) for d in datasets}
    sizes = {d: e.input_size for d, e in ensembles.items()}
    margin = next(iter(ensembles.values())).margin
    test_sets = build_crop_sets(data_dir / "test", data_dir / "gold_annotations.json", sizes,
                                labels_csv=data_dir / "gold.csv", margin=margin, cache_dir=out_dir / "crops")
    per_dataset, predictions, raw_predictions, tta_used = {}, {}, {}, {}
    pooled = {g: {"pred": [], "base": [], "gold": []} for g, members in GROUPS.items()
              if any(d in datasets for d in members)}
    for d, e in ensembles.items():
        crops = test_sets[d]
        if len(crops) == 0:
            raise Ra2Error(f"{data_dir}: no test crops for {d}")
        raw = e.predict_clipped(crops.images, tta=tta)
        tta_used[d] = e.uses_tta(tta)
        pred = apply_threshold(raw, e.threshold)  # what Ensemble.predict returns
        predictions[d], raw_predictions[d] = pred, raw
        base = column_mean.loc[crops.columns].to_numpy(dtype=float)
        per_dataset[d] = _scores(pred, base, crops.labels)
        per_dataset[d]["threshold"] = e.threshold
        group = "narrowing" if d == "narrowing" else "erosion"
        pooled[group]["pred"].append(pred)
        pooled[group]["base"].append(base)
        pooled[group]["gold"].append(crops.labels)
    groups = {g: _scores(*(np.concatenate(v[k]) for k in ("pred", "base", "gold"))) for g, v in pooled.items()}
    gold_frame = read_gold_csv(data_dir / "gold.csv")
    base_frame = predict_means(read_training_csv(data_dir / "train" / "training.csv"), gold_frame)
    ens_frame, filled = ensemble_frame(base_frame, test_sets, predictions)
    out_dir.mkdir(parents=True, exist_ok=True)
    ens_frame.to_csv(out_dir / "predictions.csv", index=False)
    complete = [g for g, members in GROUPS.items() if all(d in datasets for d in members)]
    official = official_scores(ens_frame, base_frame, gold_frame, complete)
    context = load_context(ensembles_dir) if set(datasets) == set(contract.DATASETS) else None
    with_context = None
    if context is not None:
        raw_frame, _ = ensemble_frame(base_frame, test_sets, raw_predictions)
        ctx_frame = add_overall(context.apply(raw_frame))
        ctx_frame.to_csv(out_dir / "predictions_context.csv", index=False)
        gold_cells = gold_frame.set_index(contract.PATIENT_COLUMN).loc[ctx_frame[contract.PATIENT_COLUMN]]
        with_context = {
            "official": official_scores(ctx_frame, base_frame, gold_frame, complete),
            "groups": {g: _scores(*(ctx_frame[cols].to_numpy(dtype=float).ravel(),
                                    base_frame[cols].to_numpy(dtype=float).ravel(),
                                    gold_cells[cols].to_numpy(dtype=float).ravel()))
                       for g, cols in (("narrowing", list(contract.NARROWING_COLUMNS)),
                                       ("erosion", list(contract.EROSION_COLUMNS)))},
            "thresholds": context.thresholds, "cross_fitted": context.report.get("cross_fitted"),
        }
    result = {
        "profile": profile, "seed": seed, "tta": tta_used, "sampling": sampling or "profile default",
        "epochs": epochs or "profile default", "patience": patience or "profile default",
        "datasets": list(datasets), "ensembles": str(ensembles_dir),
        "phantom": {"folder": str(data_dir), "train_patients": int(len(train_labels)),
                    "test_patients": len(set().union(*(s.patient_ids.tolist() for s in test_sets.values()))),
                    "generated_here": generated, "size_scale": size_scale if generated else None},
        "groups": groups, "datasets": per_dataset, "official": official,
        "joints_filled_with_baseline": filled,
        "with_context": with_context,
        "thresholds": {d: e.threshold for d, e in ensembles.items()},
        "out_of_fold": {d: trained[d]["oof"] for d in datasets},
        "seconds": {"phantom": round(t_data, 1), "training": round(t_train, 1),
                    "total": round(time.time() - t0, 1)},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def ensemble_frame(base_frame, test_sets: dict, predictions: dict) -> tuple[object, int]:
    """The 90-column prediction frame of the ensembles: ``base_frame`` (rows = test patients) with every
    crop's joint cell replaced by its prediction, ``Overall_*`` re-summed.

    Args:
        base_frame: baseline predictions ``[P, 90]`` (:func:`ra2.baseline.predict_means`).
        test_sets: data set -> :class:`~ra2.scoring.data.CropSet` of the test crops.
        predictions: data set -> ``[N]`` predictions of that set's crops, in crop order.

    Returns:
        ``(frame, number of joint cells of the trained data sets that no crop covered)``: those cells keep
        the baseline value.
    """
    from ra2.scoring.aggregate import add_overall

    frame = base_frame.copy()
    row = {str(p): i for i, p in enumerate(frame[contract.PATIENT_COLUMN])}
    covered = set()
    for d, pred in predictions.items():
        crops = test_sets[d]
        for pid, col, value in zip(crops.patient_ids, crops.columns, np.asarray(pred, dtype=np.float64)):
            frame.iat[row[str(pid)], frame.columns.get_loc(str(col))] = value
            covered.add((str(pid), str(col)))
    columns = {s.column for d in predictions for s in contract.scores_of_dataset(d)}
    filled = sum((p, c) not in covered for p in row for c in columns)
    return add_overall(frame), int(filled)


def official_scores(ens_frame, base_frame, gold_frame, groups) -> dict:
    """Official SC2 (narrowing) / SC3 (erosion) of both frames vs the gold frame, for ``groups``.

    Returns ``{"sc2": {"ensemble", "baseline", "improvement"}, ...}`` (only the groups asked for) and
    ``"all": {"ensemble": score(...), "baseline": score(...)}`` with every official metric.
    """
    from ra2.metrics import score

    ens, base = score(ens_frame, gold_frame), score(base_frame, gold_frame)
    out: dict = {"all": {"ensemble": ens, "baseline": base}}
    for g in groups:
        key = OFFICIAL[g]
        e, b = ens[key], base[key]
        out[key] = {"ensemble": e, "baseline": b,
                    "improvement": 1.0 - e / b if e is not None and b not in (None, 0) else None}
    return out


def _scores(pred, base, gold) -> dict:
    model, baseline = log2_rmse(pred, gold), log2_rmse(base, gold)
    return {"ensemble_log2_rmse": model, "baseline_log2_rmse": baseline,
            "zeros_log2_rmse": log2_rmse(np.zeros_like(gold), gold),
            "improvement": 1.0 - model / baseline if baseline > 0 else float("nan"), "n_joints": int(len(gold))}


def markdown(result: dict) -> str:
    lines = ["| joints | n | ensemble log2 RMSE | training-mean baseline | all zeros | improvement |",
             "|---|---|---|---|---|---|"]
    rows = list(result["groups"].items()) + [(f"({d})", v) for d, v in result["datasets"].items()]
    for name, v in rows:
        lines.append(f"| {name} | {v['n_joints']} | {v['ensemble_log2_rmse']:.4f} | "
                     f"{v['baseline_log2_rmse']:.4f} | {v['zeros_log2_rmse']:.4f} | {100 * v['improvement']:.1f}% |")
    official = {k: v for k, v in result.get("official", {}).items() if k != "all"}
    if official:
        lines += ["", "| official metric | ensemble | training-mean baseline | improvement |", "|---|---|---|---|"]
        for key, v in official.items():
            def fmt(x, pct=False):
                return "NA" if x is None else (f"{100 * x:.1f}%" if pct else f"{x:.4f}")
            lines.append(f"| {key.upper()} | {fmt(v['ensemble'])} | {fmt(v['baseline'])} | "
                         f"{fmt(v['improvement'], pct=True)} |")
            ctx = (result.get("with_context") or {}).get("official", {}).get(key)
            if ctx:
                lines.append(f"| {key.upper()}, with patient context | {fmt(ctx['ensemble'])} | "
                             f"{fmt(ctx['baseline'])} | {fmt(ctx['improvement'], pct=True)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ra2.scoring.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="phantom folder (generated if absent)")
    parser.add_argument("--out", required=True, help="output folder: ensembles/, crops/, evaluation.json")
    parser.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "full"))
    parser.add_argument("--train-patients", type=int, default=40)
    parser.add_argument("--test-patients", type=int, default=15)
    parser.add_argument("--size-scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tta", action="store_const", const=True, default=None,
                        help="force test-time augmentation on (default: each ensemble's recorded choice)")
    parser.add_argument("--no-tta", action="store_const", const=False, dest="tta",
                        help="force test-time augmentation off")
    parser.add_argument("--sampling", choices=("balanced", "weights", "none"),
                        help="override the profile's sampling for every data set")
    parser.add_argument("--epochs", type=int, help="override the profile's epochs")
    parser.add_argument("--patience", type=int, help="override the profile's early-stopping patience")
    parser.add_argument("--datasets", nargs="+", choices=contract.DATASETS, help="train/score only these")
    parser.add_argument("--ensembles", help="score the ensembles trained in this folder instead of training")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = evaluate(args.data, args.out, profile=args.profile, train_patients=args.train_patients,
                          test_patients=args.test_patients, size_scale=args.size_scale, seed=args.seed,
                          progress=not args.no_progress, tta=args.tta, sampling=args.sampling,
                          epochs=args.epochs, patience=args.patience, datasets=args.datasets,
                          ensembles_dir=args.ensembles)
    except Ra2Error as exc:
        print(f"ra2: error: {exc}", file=sys.stderr)
        return 1
    print(markdown(result))
    print(f"thresholds {result['thresholds']}; seconds {result['seconds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
