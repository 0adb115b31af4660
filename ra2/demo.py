"""`make demo` / `ra2 demo`: the whole job on a generated phantom data set.

What runs: phantom data set -> the shipped joint detectors (``weights/detectors``; trained on the phantom's
annotations only when none are shipped) -> joints detected on every training film -> regressor ensembles
trained on crops cut around the DETECTED boxes (profile ``demo``: the ``cpu`` networks with a recipe cut to
minutes) -> the test films detected, cropped and scored -> ``predictions.csv`` (validated) -> official
scores, printed beside the scores of the reference predictor (each joint's training mean) on the same test
patients -> ``ra2 evaluate``'s report of the run (``out/report/report.html``: intervals, figures, the joints
flagged by their ensemble spread), whose path is printed last.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ra2.profiles import DEFAULTS

DEMO_DEFAULTS = {"train_patients": 100, "test_patients": 30, "seed": 0, "size_scale": 0.6,
                 "profile": DEFAULTS["demo"]}


def run_demo(out: Path, train_patients: int = DEMO_DEFAULTS["train_patients"],
             test_patients: int = DEMO_DEFAULTS["test_patients"], seed: int = DEMO_DEFAULTS["seed"],
             size_scale: float = DEMO_DEFAULTS["size_scale"], profile: str = DEMO_DEFAULTS["profile"],
             log=print) -> dict:
    """Generate a phantom set under ``out/phantom``, train the pipeline, predict, validate and score.

    Writes ``out/models/`` (detectors, regressors, pipeline.json, environment.json), ``out/predictions.csv``
    with ``out/predictions_uncertainty.csv`` and ``out/detections.json`` beside it, ``out/baseline_predictions.csv``,
    ``out/scores.json`` (``{"model": ..., "baseline": ..., "seconds": ...}``), ``out/phantom_contact_sheet.png``
    and ``out/report/`` (:func:`ra2.evaluation.evaluate.evaluate`: metrics.json, figures, report.html). Returns
    the model's score dictionary (keys of :func:`ra2.metrics.score`).
    """
    from ra2 import io
    from ra2.baseline import predict_means
    from ra2.evaluation.evaluate import REPORT_FILE, evaluate
    from ra2.metrics import score_files
    from ra2.phantom import generate_dataset
    from ra2.phantom.contact_sheet import contact_sheet
    from ra2.pipeline.predict import Predictor, write_prediction_extras
    from ra2.pipeline.train import Trainer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "phantom"
    t0 = time.perf_counter()
    generate_dataset(data, train_patients=train_patients, test_patients=test_patients, seed=seed,
                     size_scale=size_scale)
    log(f"[demo] phantom: {train_patients} training + {test_patients} test patients "
        f"(seed {seed}, size scale {size_scale}) in {time.perf_counter() - t0:.1f} s -> {data}")
    contact_sheet(data / "train", out / "phantom_contact_sheet.png")
    log(f"[demo] contact sheet of phantom films -> {out / 'phantom_contact_sheet.png'}")

    train_df = io.read_training_csv(data / "train" / "training.csv")
    template = io.read_template_csv(data / "test" / "template.csv")
    log(f"[demo] predictor: DETECTOR + REGRESSOR PIPELINE (profile {profile}): 4 Mask R-CNN joint "
        "detectors, regressor ensembles trained here on crops cut around the detected boxes")
    t1 = time.perf_counter()
    trainer = Trainer(profile, seed=seed, progress=False)
    summary = trainer.fit(data / "train", out / "models")
    log(f"[demo] detectors: {summary['detectors']['source']}")
    t_train = time.perf_counter() - t1
    log(f"[demo] trained in {t_train:.0f} s (detectors {summary['seconds']['detectors']:.0f} s, detection of "
        f"training films {summary['seconds']['detect_training_films']:.0f} s, regressors "
        f"{summary['seconds']['regressors']:.0f} s); training box sources {summary['training_box_sources']}")
    t2 = time.perf_counter()
    result = Predictor.load(out / "models").predict(data / "test", template)
    predictions = result.predictions
    t_pred = time.perf_counter() - t2
    log(f"[demo] predicted {len(template)} test patients in {t_pred:.0f} s; box sources "
        f"{result.run['box_sources']}")
    pred_path = out / io.PREDICTIONS_CSV
    io.write_predictions(predictions, template, pred_path)
    write_prediction_extras(result, template, out)
    problems = io.validate_predictions(pred_path, data / "test" / "template.csv")
    if problems:
        raise RuntimeError("demo wrote an invalid predictions.csv:\n" + "\n".join(problems))
    log(f"[demo] {pred_path}: valid ({len(template)} patients x {predictions.shape[1]} columns)")

    base_path = out / "baseline_predictions.csv"
    io.write_predictions(predict_means(train_df, template), template, base_path)
    scores = score_files(pred_path, data / "gold.csv")
    baseline = score_files(base_path, data / "gold.csv")
    total = time.perf_counter() - t0
    (out / "scores.json").write_text(json.dumps(
        {"model": scores, "baseline": baseline, "profile": profile,
         "seconds": {"train": round(t_train, 1), "predict": round(t_pred, 1), "total": round(total, 1)}},
        indent=2, sort_keys=True) + "\n")
    log(f"[demo] {'score':20s} {'model':>10s} {'baseline (training means)':>26s}")
    for key, value in scores.items():
        b = baseline.get(key)
        log(f"[demo] {key:20s} {'NA' if value is None else f'{value:.4f}':>10s} "
            f"{'NA' if b is None else f'{b:.4f}':>26s}")
    gains = {k: (1 - scores[k] / baseline[k]) * 100 for k in ("sc1", "sc2", "sc3")
             if scores.get(k) is not None and baseline.get(k)}
    log("[demo] better than the baseline by " + ", ".join(f"{k.upper()} {v:.1f}%" for k, v in gains.items())
        + " (lower scores are better)")
    t3 = time.perf_counter()
    result = evaluate(pred_path, data / "gold.csv", out / "report", baseline=data / "train" / "training.csv",
                      films=data / "test", detections=out / "detections.json")
    spread = result.get("spread")
    if spread:
        d = spread["difference"]
        interval = f" (difference {d['value']:+.3f}, 95% CI [{d['low']:+.3f}, {d['high']:+.3f}])" \
            if d["low"] is not None else ""
        log(f"[demo] the {round(100 * spread['top_fraction'])}% of joints with the highest ensemble spread: MAE "
            f"{spread['mae_flagged']:.3f}, the rest {spread['mae_rest']:.3f}{interval}")
    total = time.perf_counter() - t0
    log(f"[demo] outputs in {out}/: predictions.csv (+ predictions_uncertainty.csv, detections.json), "
        f"baseline_predictions.csv, scores.json, phantom_contact_sheet.png, models/ (detectors, regressors, "
        f"pipeline.json), phantom/ (the data, gold.csv), report/ (metrics.json, figures; evaluated in "
        f"{time.perf_counter() - t3:.0f} s); total {total:.0f} s")
    log(f"[demo] report: {out / 'report' / REPORT_FILE}")
    return scores
