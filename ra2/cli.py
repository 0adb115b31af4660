"""Command-line interface: argparse subcommands, each a thin call into a library function.

User errors (:class:`ra2.Ra2Error`) print one line ``ra2: error: ...`` and exit 1; internal bugs keep
their traceback. Heavy modules are imported inside the handlers so ``ra2 --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ra2 import Ra2Error, __version__, contract


def _cmd_phantom(args: argparse.Namespace) -> int:
    from ra2.phantom import generate_dataset

    scale = args.size_scale[0] if len(args.size_scale) == 1 else args.size_scale
    generate_dataset(Path(args.out), train_patients=args.train_patients,
                     test_patients=args.test_patients, seed=args.seed, size_scale=scale)
    print(f"phantom written to {args.out}: train/ ({args.train_patients} patients), "
          f"test/ ({args.test_patients} patients), gold.csv")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from ra2.metrics import score_files

    result = score_files(Path(args.predictions), Path(args.gold))
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key:24s} {'NA' if value is None else f'{value:.6f}'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ra2.evaluation.evaluate import evaluate, print_summary

    result = evaluate(Path(args.predictions), Path(args.gold), Path(args.out), baseline=args.baseline,
                      films=args.films, detections=args.detections, uncertainty=args.uncertainty,
                      n_resamples=args.resamples, seed=args.seed)
    print_summary(result, Path(args.out))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ra2.io import validate_predictions

    problems = validate_predictions(Path(args.predictions), Path(args.template))
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"{args.predictions}: valid")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ra2.demo import run_demo

    run_demo(Path(args.out), train_patients=args.train_patients, test_patients=args.test_patients,
             seed=args.seed, size_scale=args.size_scale, profile=args.profile)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import logging
    import os

    import tensorflow as tf

    from ra2.challenge_run import ModelStep, run_challenge
    from ra2.models_folder import shipped_detectors
    from ra2.profiles import run_profile

    profile, reason = run_profile(os.environ.get("RA2_PROFILE"), len(tf.config.list_physical_devices("GPU")))
    detectors = Path(os.environ["RA2_DETECTORS"]) if os.environ.get("RA2_DETECTORS") else shipped_detectors()
    logging.getLogger("ra2.run").info("model step: detector + regressor pipeline, profile %s (%s); "
                                      "detectors: %s", profile, reason, detectors or "trained from annotations.json")
    run_challenge(Path(args.train), Path(args.test), Path(args.output), Path(args.work),
                  model_step=ModelStep(profile, detectors_from=detectors, devices=_device_settings(args),
                                       profile_reason=reason))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ra2.pipeline.train import Trainer

    summary = Trainer(args.profile, seed=args.seed, progress=not args.no_progress,
                      detectors_from=args.detectors, train_detectors=args.train_detectors,
                      devices=_device_settings(args)).fit(
                          Path(args.train), Path(args.models))
    print(f"pipeline trained into {args.models} in {summary['seconds']['total']:.0f} s "
          f"(detectors: {summary['detectors']['source']})")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from ra2 import io
    from ra2.pipeline.predict import Predictor, write_prediction_extras

    test = Path(args.test)
    template = io.read_template_csv(Path(args.template) if args.template else test / io.TEMPLATE_CSV)
    result = Predictor.load(Path(args.models), progress=not args.no_progress).predict(test, template)
    path = io.write_predictions(result.predictions, template, Path(args.output) / io.PREDICTIONS_CSV)
    extra = write_prediction_extras(result, template, Path(args.output))
    print(f"{path}: {len(result.predictions)} patients; beside it {', '.join(p.name for p in extra)}")
    return 0


def _cmd_eval_detectors(args: argparse.Namespace) -> int:
    from ra2.detection.detect import evaluate_detection

    result = evaluate_detection(Path(args.models), Path(args.data),
                                Path(args.annotations) if args.annotations else None,
                                progress=not args.no_progress)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    for name in contract.DETECTORS:
        r = result[name]
        if not r["n_sites"]:
            print(f"{name:16s} no annotated sites")
            continue
        w = r["worst_site"]
        print(f"{name:16s} sites {r['n_sites']:5d}  IoU>=0.5 {r['hit_rate_iou50']:.3f}  mean IoU "
              f"{r['mean_iou']:.3f}  worst {w['site']} {w['hit_rate_iou50']:.3f}  sources {r['sources']}")
    c = result[contract.HANDS]["carpus"]
    if c["n"]:
        print(f"{'carpus':16s} boxes {c['n']:5d}  IoU>=0.5 {c['hit_rate_iou50']:.3f}  mean IoU {c['mean_iou']:.3f}")
    for name in contract.DETECTORS:
        p = result[name].get("points")
        if p:
            print(f"{name:16s} joint centres {p['n']:4d} ({p['from']})  in its own site's box {p['in_own_box']:.3f}  "
                  f"in another site's box {p['in_other_box']:.3f}  in no box {p['in_no_box']:.3f}")
    cp = result[contract.HANDS].get("carpus_points")
    if cp:
        print(f"{'carpus':16s} wrist points {cp['n']:4d}  inside the detected carpus box {cp['in_box']:.3f}")
    print(f"films {result['films']}, with the default layout placement: {result['films_with_default_layout']}")
    return 0


def _cmd_train_detectors(args: argparse.Namespace) -> int:
    from ra2.detection.train import train_detectors

    result = train_detectors(Path(args.data), Path(args.out), args.profile,
                             annotations=Path(args.annotations) if args.annotations else None, seed=args.seed,
                             progress=not args.no_progress, val_dir=Path(args.val) if args.val else None,
                             val_annotations=Path(args.val_annotations) if args.val_annotations else None,
                             detectors=args.detectors, devices=_device_settings(args).resolve())
    for name in contract.DETECTORS:
        if name not in result:
            if name in result["skipped"]:
                print(f"{name:16s} not trained: no annotated film carries its objects")
            continue
        meta = result[name]
        curve = meta.get("learning_curve") or []
        last = f", held-out recall@IoU0.5 {curve[-1]['recall_iou50']:.3f}" if curve else ""
        print(f"{name:16s} {meta['n_images']} images, {meta['recipe']['steps']} steps in "
              f"{meta['train_seconds']:.0f} s{last}")
    print(f"detectors written to {args.out} in {result['seconds']:.0f} s; check them with "
          f"`ra2 eval-detectors --models {args.out} --data DIR --annotations FILE`")
    return 0


def _cmd_annotations_import(args: argparse.Namespace) -> int:
    from ra2.annotation_import import import_annotations
    from ra2.annotations import write_annotations

    result = import_annotations(args.format, Path(args.src), Path(args.films), mapping=args.mapping,
                                skip_bad=args.skip_bad)
    for message in result.skipped:
        print(f"ra2: warning: skipped: {message}", file=sys.stderr)
    if not result.films:
        raise Ra2Error(f"{args.src}: no annotated film to write")
    write_annotations(Path(args.out), result.films)
    limbs = {}
    for f in result.films:
        limbs[f.limb] = limbs.get(f.limb, 0) + 1
    print(f"{args.out}: {len(result.films)} films ({', '.join(f'{k} {v}' for k, v in sorted(limbs.items()))}), "
          f"{result.n_objects} objects; {len(result.skipped)} bad records skipped, {result.ignored} ignored labels")
    return 0


def _cmd_annotations_export(args: argparse.Namespace) -> int:
    from ra2.annotation_export import export_annotations
    from ra2.annotations import read_annotations

    films = read_annotations(Path(args.annotations))
    paths = export_annotations(films, Path(args.films), Path(args.out), args.format, shapes=args.shapes)
    print(f"{args.out}: {len(films)} films written as {args.format} ({len(paths)} file{'s' * (len(paths) != 1)})")
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "export":
        return _cmd_review_export(args)
    from ra2.review.server import serve

    if not args.predictions or not args.films:
        raise Ra2Error("ra2 review needs --predictions RUN_DIR and --films DIR (or: ra2 review export --out DIR)")
    return serve(Path(args.predictions), Path(args.films), Path(args.gold) if args.gold else None, port=args.port,
                 reader=args.reader)


def _cmd_review_export(args: argparse.Namespace) -> int:
    from ra2.review.export import export_review

    # `ra2 review --predictions RUN export ...` and `ra2 review export --predictions RUN ...` both name the run
    run = args.export_run or args.predictions or "."
    films = args.export_films or args.films
    summary = export_review(Path(run), Path(args.out), Path(films) if films else None)
    print(f"{args.out}: training.csv ({summary['patients']} patients, {summary['joints_from_reader']} joint scores "
          f"from the reader), annotations.json ({summary['films']} films, {summary['boxes']} boxes: "
          f"{summary['boxes_drawn']} drawn by the reader, {summary['boxes_wrong']} marked wrong left out)")
    for line in summary["skipped"]:
        print(f"skipped: {line}")
    print(f"retrain: `ra2 train --train {args.out} --models DIR`; detectors: "
          f"`ra2 train-detectors --films {args.out} --annotations {args.out}/annotations.json --out DIR`")
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from ra2.detection.preannotate import preannotate_folder

    result = preannotate_folder(Path(args.films), Path(args.out), models_dir=Path(args.models), fmt=args.format,
                                overlays=args.overlays, progress=not args.no_progress)
    print(f"{args.out}: pre-annotations of {result['films']} films ({args.format}"
          f"{', overlays in ' + str(Path(args.out) / 'overlays') if args.overlays else ''}); box sources "
          f"{result['sources']}; films with the default layout placement: {result['films_with_default_layout']}")
    return 0


def _cmd_train_regressors(args: argparse.Namespace) -> int:
    from ra2.scoring.train import train_regressors

    result = train_regressors(Path(args.train), Path(args.out), profile=args.profile,
                              crops_dir=Path(args.crops) if args.crops else None,
                              progress=not args.no_progress, seed=args.seed,
                              annotations=Path(args.annotations) if args.annotations else None,
                              devices=_device_settings(args).resolve())
    for name, summary in result.items():
        if name in contract.DATASETS:
            print(f"{name:14s} threshold {summary['threshold']:.2f}  out-of-fold log2 RMSE "
                  f"{summary['oof']['log2_rmse_thresholded']:.4f} ({summary['oof']['n_samples']} crops)")
    for name, rep in (result.get("context") or {}).get("cross_fitted", {}).items():
        print(f"{name:14s} with patient context ({rep.get('learner', 'linear')}): log2 RMSE "
              f"{rep['corrected_log2_rmse']:.4f} (cross-fitted; {rep['raw_log2_rmse']:.4f} without)")
    print(f"ensembles written to {args.out} in {result['seconds']:.0f} s")
    return 0


def _device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--mixed-precision``, ``--xla``, ``--devices`` and the test-only ``--logical-cpus`` (:mod:`ra2.devices`)."""
    from ra2.devices import SWITCHES

    parser.add_argument("--mixed-precision", default="auto", choices=SWITCHES,
                        help="mixed_float16 training: auto = where a GPU is visible; on forces it (also on a CPU)")
    parser.add_argument("--xla", default="auto", choices=SWITCHES,
                        help="XLA-compiled training steps: auto = where a GPU is visible; on forces it")
    parser.add_argument("--devices", default="all", help="'all' visible GPUs (without a GPU: the CPU), or a "
                        "number N of them; more than one: MirroredStrategy, batch per replica as the profile's")
    parser.add_argument("--logical-cpus", type=int, default=None, help=argparse.SUPPRESS)  # tests: split the CPU


def _device_settings(args: argparse.Namespace):
    from ra2.devices import DeviceSettings

    return DeviceSettings(args.mixed_precision, args.xla, args.devices)


def _profile_argument(parser: argparse.ArgumentParser, entry_point: str) -> None:
    """``--profile`` with the profiles of :mod:`ra2.profiles`, the entry point's default, and what each is."""
    from ra2.profiles import DEFAULTS, PROFILES, help_text

    parser.add_argument("--profile", default=DEFAULTS[entry_point], choices=PROFILES, help=help_text(entry_point))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ra2", description="Score rheumatoid-arthritis joint damage (Sharp/van der Heijde) on "
        "hand and foot radiographs: RA2 DREAM Challenge pipeline.")
    parser.add_argument("--version", action="version", version=f"ra2 {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("phantom", help="write a synthetic (phantom) challenge data set")
    p.add_argument("--out", required=True, help="output folder (train/, test/, gold.csv)")
    p.add_argument("--train-patients", type=int, default=20)
    p.add_argument("--test-patients", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size-scale", type=float, nargs="+", default=[1.0],
                   help="scale film sizes (1.0: about 1000-3000 px per side; 0.3 for quick tests); several "
                   "values are used in turn, one per patient (films of mixed resolutions)")
    p.set_defaults(func=_cmd_phantom)

    p = sub.add_parser("score", help="official SC1/SC2/SC3 and secondary metrics")
    p.add_argument("--predictions", required=True)
    p.add_argument("--gold", required=True)
    p.add_argument("--json", action="store_true", help="print JSON (keys sc1, sc2, sc3, ...)")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("evaluate", help="metrics with bootstrap intervals, figures and a self-contained "
                       "report.html for a predictions.csv against a gold CSV")
    p.add_argument("--predictions", required=True, help="predictions.csv (its predictions_uncertainty.csv and "
                   "run.json beside it are used when there)")
    p.add_argument("--gold", required=True, help="gold-standard CSV (90 columns)")
    p.add_argument("--out", required=True, help="output folder: metrics.json, *.png, report.html")
    p.add_argument("--baseline", help="training.csv: compare with its per-joint training means")
    p.add_argument("--films", help="folder of the test films (with --detections: box overlays, crop sheet)")
    p.add_argument("--detections", help="detections.json written by `ra2 predict` beside predictions.csv")
    p.add_argument("--uncertainty", help="per-joint spread (default: predictions_uncertainty.csv beside "
                   "--predictions, when there)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of patients")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("validate", help="check a predictions.csv against its template")
    p.add_argument("--predictions", required=True)
    p.add_argument("--template", required=True)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("run", help="the container's job: train on --train, predict --test, write "
                       "--output/predictions.csv (always a complete, valid file)")
    p.add_argument("--train", default="/train")
    p.add_argument("--test", default="/test")
    p.add_argument("--output", default="/output")
    p.add_argument("--work", default="/tmp/ra2-work", help="scratch folder")
    _device_arguments(p)
    p.set_defaults(func=_cmd_run)

    from ra2.demo import DEMO_DEFAULTS

    p = sub.add_parser("demo", help="the whole job on a generated phantom data set (what `make demo` runs)")
    p.add_argument("--out", default="demo_out", help="output folder")
    p.add_argument("--train-patients", type=int, default=DEMO_DEFAULTS["train_patients"])
    p.add_argument("--test-patients", type=int, default=DEMO_DEFAULTS["test_patients"])
    p.add_argument("--seed", type=int, default=DEMO_DEFAULTS["seed"])
    p.add_argument("--size-scale", type=float, default=DEMO_DEFAULTS["size_scale"])
    _profile_argument(p, "demo")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("train", help="train the pipeline: regressor ensembles on crops of the detected joints "
                       "(shipped detectors unless told otherwise)")
    p.add_argument("--train", required=True, help="training folder: training.csv + films (+ annotations.json)")
    p.add_argument("--models", required=True, help="output folder (detectors/, regressors/, pipeline.json)")
    _profile_argument(p, "train")
    det = p.add_mutually_exclusive_group()
    det.add_argument("--detectors", help="folder of trained detectors to use (default: those already in "
                     "MODELS/detectors, else the shipped ones in weights/detectors)")
    det.add_argument("--train-detectors", action="store_true",
                     help="train the detectors on TRAIN/annotations.json first (`ra2 train-detectors` alone)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress output (batch jobs)")
    _device_arguments(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("predict", help="predict a test folder with a trained models folder")
    p.add_argument("--test", required=True, help="test folder: films (+ template.csv)")
    p.add_argument("--models", required=True, help="folder written by `ra2 train`")
    p.add_argument("--output", required=True, help="folder receiving predictions.csv")
    p.add_argument("--template", help="template.csv (default TEST/template.csv)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("eval-detectors", help="IoU of the detected site boxes against ground-truth annotations, "
                       "and where each joint's centre (the marked point, else the box centre) falls: in its own "
                       "site's box, another's, none")
    p.add_argument("--models", required=True, help="detectors folder (MODELS/detectors of `ra2 train`)")
    p.add_argument("--data", required=True, help="folder of the films")
    p.add_argument("--annotations", help="ground truth (default DATA/annotations.json)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_eval_detectors)

    p = sub.add_parser("train-detectors", help="train the four joint detectors on annotated films")
    p.add_argument("--data", "--films", dest="data", required=True, help="folder of the training films")
    p.add_argument("--out", required=True, help="output folder: <detector>/{config.json, model.weights.h5, "
                   "layout.json, metadata.json}")
    p.add_argument("--annotations", help="joint annotations of the films (default DATA/annotations.json; what "
                   "`ra2 annotations import` wrote, a partial set too)")
    p.add_argument("--detectors", nargs="+", choices=contract.DETECTORS,
                   help="detectors to train (default: every detector with objects on some film)")
    p.add_argument("--val", help="held-out annotated films: a learning curve per detector in its metadata")
    p.add_argument("--val-annotations", help="their annotations (default VAL/annotations.json)")
    _profile_argument(p, "train-detectors")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    _device_arguments(p)
    p.set_defaults(func=_cmd_train_detectors)

    p = sub.add_parser("annotations", help="convert annotations: import COCO / labelme / VIA files into ra2's "
                       "format, export ra2 annotations for labelme")
    asub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = asub.add_parser("import", help="COCO, labelme or VIA 2.x annotations -> one ra2 annotation file")
    a.add_argument("--format", required=True, choices=("coco", "labelme", "via"))
    a.add_argument("--src", required=True, help="COCO or VIA JSON file, or a folder of labelme JSON files")
    a.add_argument("--films", required=True, help="folder of the films ({Patient_ID}-{LH|RH|LF|RF}.<ext>)")
    a.add_argument("--out", required=True, help="ra2 annotation file to write (e.g. FILMS/annotations.json)")
    a.add_argument("--mapping", help="label mapping: a JSON/YAML file {label: site id | class | carpus | null} "
                   "or a built-in name: default (ra2 + ra2-landmarks), ra2, ra2-landmarks")
    a.add_argument("--skip-bad", action="store_true", help="skip bad records with a warning instead of stopping")
    a.set_defaults(func=_cmd_annotations_import)
    a = asub.add_parser("export", help="a ra2 annotation file -> labelme files (one per film) or one COCO file")
    a.add_argument("--annotations", required=True, help="ra2 annotation file (e.g. TRAIN/annotations.json)")
    a.add_argument("--films", required=True, help="folder of the films (labelme imagePath points there)")
    a.add_argument("--out", required=True, help="output folder")
    a.add_argument("--format", default="labelme", choices=("labelme", "coco"))
    a.add_argument("--shapes", default="rectangle", choices=("rectangle", "polygon"),
                   help="write each site's box (default) or its polygon (the carpus stays a box)")
    a.set_defaults(func=_cmd_annotations_export)

    p = sub.add_parser("review", help="a reader checks and corrects the flagged joints in a browser "
                       "(127.0.0.1); `review export`: the corrections as training data")
    p.add_argument("--predictions", help="the run folder: predictions.csv, predictions_uncertainty.csv, "
                   "detections.json (ra2 predict/run/demo); review_log.jsonl and reviewed.csv are written there")
    p.add_argument("--films", help="the films of its patients (the test folder)")
    p.add_argument("--gold", help="a gold CSV: show each joint's true score too")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: any free port)")
    p.add_argument("--reader", default=os.environ.get("USER") or "reader",
                   help="the reader's name, written with every correction (default $USER)")
    p.set_defaults(func=_cmd_review)
    rsub = p.add_subparsers(dest="action", required=False, metavar="ACTION")
    a = rsub.add_parser("export", help="the corrections as a training folder: training.csv, annotations.json, "
                        "the films")
    a.add_argument("--predictions", dest="export_run", help="the reviewed run folder (default: here)")
    a.add_argument("--films", dest="export_films", help="the films (default: those the review showed, from "
                   "RUN/review_session.json)")
    a.add_argument("--out", required=True, help="training folder to write (ra2 train --train OUT)")
    a.set_defaults(func=_cmd_review)

    p = sub.add_parser("detect", help="detect the joints of a folder of films and write pre-annotations for "
                       "correction in labelme (plus PNG overlays)")
    p.add_argument("--films", required=True, help="folder of the films ({Patient_ID}-{LH|RH|LF|RF}.<ext>)")
    p.add_argument("--models", required=True, help="detectors folder (e.g. weights/detectors)")
    p.add_argument("--out", required=True, help="output folder: <film stem>.json (labelme) or "
                   "annotations.coco.json, overlays/<film stem>.png")
    p.add_argument("--format", default="labelme", choices=("labelme", "coco"))
    p.add_argument("--overlays", action="store_true", help="also draw each film's boxes, labels, scores and "
                   "sources into OUT/overlays/<film stem>.png")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_detect)

    p = sub.add_parser("train-regressors", help="train the three 5-fold regressor ensembles on joint crops")
    p.add_argument("--train", required=True, help="training folder: training.csv + films (+ annotations.json)")
    p.add_argument("--out", required=True, help="output folder: <dataset>/member_<k>/, <dataset>/ensemble.json")
    p.add_argument("--crops", help="crop cache folder (default OUT/crops)")
    p.add_argument("--annotations", help="site boxes (default TRAIN/annotations.json)")
    _profile_argument(p, "train-regressors")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (batch jobs)")
    _device_arguments(p)
    p.set_defaults(func=_cmd_train_regressors)
    return parser


def entry() -> None:
    """The ``ra2`` console script and ``python -m ra2``: TensorFlow's native log noise filtered out of the
    terminal (:mod:`ra2.runinfo`), then :func:`main`."""
    from ra2.runinfo import quiet_native_logs

    quiet_native_logs()
    sys.exit(main())


# command -> (the argument naming its output folder, or None; whether it loads TensorFlow models)
RUN_SETUP = {"phantom": ("out", False), "score": (None, False), "evaluate": ("out", False), "validate": (None, False),
             "run": ("output", True),
             "demo": ("out", True), "train": ("models", True), "predict": ("output", True),
             "eval-detectors": (None, True), "train-detectors": ("out", True), "train-regressors": ("out", True),
             "annotations": (None, False), "detect": ("out", True), "review": (None, False)}
QUIET_COMMANDS = ("score", "validate")
"""Commands whose output is their printed answer: the run set-up logs only warnings for them."""


def main(argv: list[str] | None = None) -> int:
    import logging

    from ra2.runinfo import start_run

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "logical_cpus", None):
        from ra2.devices import split_cpu

        try:
            split_cpu(args.logical_cpus)  # before anything starts TensorFlow's devices
        except Ra2Error as exc:
            print(f"ra2: error: {exc}", file=sys.stderr)
            return 1
    out_arg, uses_tf = RUN_SETUP[args.command]
    arguments = {k: v for k, v in vars(args).items() if k != "func"}
    try:
        start_run(f"ra2 {args.command}", arguments, out_dir=getattr(args, out_arg) if out_arg else None,
                  seed=getattr(args, "seed", None), tensorflow=uses_tf,
                  level=logging.WARNING if args.command in QUIET_COMMANDS else logging.INFO)
        return int(args.func(args) or 0)
    except Ra2Error as exc:
        print(f"ra2: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ra2: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    entry()
