"""Measure the regressors on held-out phantom patients, against a predict-the-training-mean baseline.

    python bench/evaluate_regressors.py --data DIR --out DIR [--profile cpu] [--train-patients 40]
        [--test-patients 15] [--size-scale 0.5] [--seed 0] [--ensembles DIR] [--detectors DIR]

Generates a phantom set in ``--data`` (unless ``DIR/train/training.csv`` already exists), trains the three
ensembles on ground-truth crops of ``DIR/train`` (:func:`ra2.scoring.train.train_regressors`; or scores the
ensembles already in ``--ensembles``), then predicts the held-out ``DIR/test`` patients with the pipeline's
own :class:`ra2.pipeline.predict.Predictor`, the crops cut around

- the ground-truth boxes (``gold_annotations.json``): the regressors alone;
- with ``--detectors``: the boxes those detectors find (``weights/detectors`` for the shipped ones): what the
  whole pipeline gets, and how much it loses to the detection.

Each variant is predicted with and without the patient context stage and scored against ``gold.csv``:
the official SC1/SC2/SC3 (:func:`ra2.metrics.score`) and the pooled per-joint log2 RMSE of narrowing and of
erosion (foot and hand erosion pooled), beside the baseline's (every joint its training mean,
:func:`ra2.baseline.predict_means`) and all-zero predictions. The improvement is ``1 - model / baseline``.
Joints of data sets without an ensemble (``--datasets``) get their training means, and the official metric of
a group is reported only when all its data sets were trained. Results go to ``OUT/evaluation.json`` (and the
prediction frames to ``OUT/predictions_<variant>.csv``) and are printed as Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.models_folder import ENSEMBLE_FILE
from ra2.profiles import PROFILES

from experiment_cli import run_main

GROUPS = {"narrowing": ("narrowing",), "erosion": ("foot_erosion", "hand_erosion")}
OFFICIAL = {"narrowing": "sc2", "erosion": "sc3"}  # the official metric of each group's columns
GROUP_COLUMNS = {"narrowing": contract.NARROWING_COLUMNS, "erosion": contract.EROSION_COLUMNS}


def gold_boxes(annotations_path: Path) -> dict:
    """``{(patient_id, limb): {site id: box}}`` of the annotated films (original-film pixels)."""
    from ra2.annotations import read_annotations

    return {(a.patient_id, a.limb): {o.site_id: tuple(o.box) for o in a.objects if o.site_id is not None}
            for a in read_annotations(annotations_path)}


def cell_scores(frame, base_frame, gold_frame, columns) -> dict:
    """Pooled per-joint log2 RMSE over ``columns`` of the patients' cells: model, baseline, all zeros."""
    from ra2.scoring.metrics import log2_rmse

    def cells(f):
        return f.set_index(contract.PATIENT_COLUMN).loc[gold_frame[contract.PATIENT_COLUMN], list(columns)] \
            .to_numpy(dtype=float).ravel()

    pred, base, gold = cells(frame), cells(base_frame), cells(gold_frame)
    model, baseline = log2_rmse(pred, gold), log2_rmse(base, gold)
    return {"ensemble_log2_rmse": model, "baseline_log2_rmse": baseline,
            "zeros_log2_rmse": log2_rmse(np.zeros_like(gold), gold),
            "improvement": 1.0 - model / baseline if baseline > 0 else float("nan"), "n_joints": int(len(gold))}


def official_scores(frame, base_frame, gold_frame, groups) -> dict:
    """Official SC2 (narrowing) / SC3 (erosion) of both frames vs the gold frame, for ``groups``, and
    ``"all": {"ensemble": score(...), "baseline": score(...)}`` with every official metric."""
    from ra2.metrics import score

    ens, base = score(frame, gold_frame), score(base_frame, gold_frame)
    out: dict = {"all": {"ensemble": ens, "baseline": base}}
    for g in groups:
        key = OFFICIAL[g]
        e, b = ens[key], base[key]
        out[key] = {"ensemble": e, "baseline": b,
                    "improvement": 1.0 - e / b if e is not None and b not in (None, 0) else None}
    return out


def evaluate(data_dir: str | Path, out_dir: str | Path, profile: str = "cpu", train_patients: int = 40,
             test_patients: int = 15, size_scale: float = 0.5, seed: int = 0, progress: bool = True,
             sampling: str | None = None, epochs: int | None = None, patience: int | None = None, datasets=None,
             ensembles_dir: str | Path | None = None, detectors_dir: str | Path | None = None) -> dict:
    """Train on the phantom's train split (unless ``ensembles_dir``), predict its test split; returns (and
    writes) the results (see the module docstring)."""
    from ra2.baseline import predict_means, training_means
    from ra2.io import read_gold_csv, read_training_csv, write_predictions
    from ra2.pipeline.predict import Predictor
    from ra2.profiles import regressor_profile
    from ra2.scoring.context import load_context
    from ra2.scoring.ensemble import Ensemble
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
        train_regressors(data_dir / "train", ensembles_dir, profile=regressor_profile(profile, sampling, epochs,
                                                                                      patience),
                         progress=progress, seed=seed, crops_dir=out_dir / "crops", datasets=datasets)
    ensembles_dir = Path(ensembles_dir)
    specs = {}
    for d in datasets:
        spec = ensembles_dir / d / ENSEMBLE_FILE
        if not spec.is_file():
            raise Ra2Error(f"{spec}: no such file (no trained {d} ensemble in {ensembles_dir})")
        specs[d] = json.loads(spec.read_text())
    t_train = time.time() - t0 - t_data

    train_df = read_training_csv(data_dir / "train" / "training.csv")
    gold_frame = read_gold_csv(data_dir / "gold.csv")
    base_frame = predict_means(train_df, gold_frame)
    ensembles = {d: Ensemble(ensembles_dir / d) for d in datasets}
    context = load_context(ensembles_dir) if set(datasets) == set(contract.DATASETS) else None
    complete = [g for g, members in GROUPS.items() if all(d in datasets for d in members)]
    variants = {"ground_truth_boxes": (None, gold_boxes(data_dir / "gold_annotations.json"))}
    if detectors_dir is not None:
        from ra2.detection.detect import JointDetector

        variants["detected_boxes"] = (JointDetector.load(detectors_dir), None)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, (detector, boxes) in variants.items():
        res = {}
        for ctx_name, ctx in (("ensembles", None), ("with_context", context)):
            if ctx_name == "with_context" and ctx is None:
                continue
            predictor = Predictor(detector, ensembles, training_means(train_df), progress=progress, context=ctx)
            predicted = predictor.predict(data_dir / "test", gold_frame[[contract.PATIENT_COLUMN]], boxes=boxes)
            frame = predicted.predictions
            write_predictions(frame, gold_frame, out_dir / f"predictions_{name}_{ctx_name}.csv")
            res[ctx_name] = {
                "official": official_scores(frame, base_frame, gold_frame, complete),
                "groups": {g: cell_scores(frame, base_frame, gold_frame, GROUP_COLUMNS[g]) for g in GROUPS},
                "datasets": {d: cell_scores(frame, base_frame, gold_frame,
                                            [s.column for s in contract.scores_of_dataset(d)]) for d in datasets},
                "box_sources": predicted.run["box_sources"],
                "joints_from_training_means": predicted.run["joints_from_training_means"]}
        results[name] = res
    result = {
        "ensembles": str(ensembles_dir), "profile": specs[datasets[0]].get("profile", "unknown"), "seed": seed,
        "datasets": list(datasets), "detectors": str(detectors_dir) if detectors_dir else None,
        "phantom": {"folder": str(data_dir), "train_patients": int(len(train_df)),
                    "test_patients": int(len(gold_frame)), "generated_here": generated,
                    "size_scale": size_scale if generated else None},
        "variants": results, "tta": {d: e.uses_tta() for d, e in ensembles.items()},
        "thresholds": {d: e.threshold for d, e in ensembles.items()},
        "context_thresholds": context.thresholds if context is not None else None,
        "out_of_fold": {d: specs[d]["oof"] for d in datasets},
        "seconds": {"phantom": round(t_data, 1), "training": round(t_train, 1), "total": round(time.time() - t0, 1)},
    }
    if "detected_boxes" in results:
        result["loss_to_detection"] = {
            ctx: {key: (results["detected_boxes"][ctx]["official"]["all"]["ensemble"][key]
                        / results["ground_truth_boxes"][ctx]["official"]["all"]["ensemble"][key] - 1.0)
                  for key in ("sc1", "sc2", "sc3")
                  if results["ground_truth_boxes"][ctx]["official"]["all"]["ensemble"][key]}
            for ctx in results["ground_truth_boxes"]}
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def markdown(result: dict) -> str:
    def fmt(x, pct=False):
        return "NA" if x is None else (f"{100 * x:.1f}%" if pct else f"{x:.4f}")

    lines = []
    for variant, by_ctx in result["variants"].items():
        for ctx, res in by_ctx.items():
            lines += [f"**{variant.replace('_', ' ')}, {ctx.replace('_', ' ')}**", "",
                      "| joints | n | model log2 RMSE | training-mean baseline | all zeros | improvement |",
                      "|---|---|---|---|---|---|"]
            rows = list(res["groups"].items()) + [(f"({d})", v) for d, v in res["datasets"].items()]
            for name, v in rows:
                lines.append(f"| {name} | {v['n_joints']} | {v['ensemble_log2_rmse']:.4f} | "
                             f"{v['baseline_log2_rmse']:.4f} | {v['zeros_log2_rmse']:.4f} | "
                             f"{100 * v['improvement']:.1f}% |")
            official = {k: v for k, v in res["official"].items() if k != "all"}
            if official:
                lines += ["", "| official metric | model | training-mean baseline | improvement |", "|---|---|---|---|"]
                for key, v in official.items():
                    lines.append(f"| {key.upper()} | {fmt(v['ensemble'])} | {fmt(v['baseline'])} | "
                                 f"{fmt(v['improvement'], pct=True)} |")
            lines.append("")
    for ctx, loss in (result.get("loss_to_detection") or {}).items():
        lines.append(f"detected vs ground-truth boxes ({ctx.replace('_', ' ')}): " +
                     ", ".join(f"{k.upper()} {100 * v:+.1f}%" for k, v in loss.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/evaluate_regressors.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="phantom folder (generated if absent)")
    parser.add_argument("--out", required=True, help="output folder: ensembles/, crops/, evaluation.json")
    parser.add_argument("--profile", default="cpu", choices=PROFILES)
    parser.add_argument("--train-patients", type=int, default=40)
    parser.add_argument("--test-patients", type=int, default=15)
    parser.add_argument("--size-scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampling", choices=("balanced", "weights", "none"),
                        help="override the profile's sampling for every data set")
    parser.add_argument("--epochs", type=int, help="override the profile's epochs")
    parser.add_argument("--patience", type=int, help="override the profile's early-stopping patience")
    parser.add_argument("--datasets", nargs="+", choices=contract.DATASETS, help="train/score only these")
    parser.add_argument("--ensembles", help="score the ensembles trained in this folder instead of training")
    parser.add_argument("--detectors", help="also predict with the boxes these detectors find")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    result = evaluate(args.data, args.out, profile=args.profile, train_patients=args.train_patients,
                      test_patients=args.test_patients, size_scale=args.size_scale, seed=args.seed,
                      progress=not args.no_progress, sampling=args.sampling, epochs=args.epochs,
                      patience=args.patience, datasets=args.datasets, ensembles_dir=args.ensembles,
                      detectors_dir=args.detectors)
    print(markdown(result))
    print(f"thresholds {result['thresholds']}; seconds {result['seconds']}")
    return 0


if __name__ == "__main__":
    run_main(main)
