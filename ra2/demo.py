"""`make demo` / `ra2 demo`: the main job on the embedded phantom default.

At this stage of the project the demo is: phantom data set -> the reference predictor that predicts each
joint's training mean -> ``predictions.csv`` (validated) -> official scores. It says so plainly in its
output; the full train-then-predict pipeline replaces the reference predictor when it lands.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

DEMO_DEFAULTS = {"train_patients": 24, "test_patients": 12, "seed": 0, "size_scale": 0.35}


def run_demo(out: Path, train_patients: int = DEMO_DEFAULTS["train_patients"],
             test_patients: int = DEMO_DEFAULTS["test_patients"], seed: int = DEMO_DEFAULTS["seed"],
             size_scale: float = DEMO_DEFAULTS["size_scale"], log=print) -> dict:
    """Generate a phantom set under ``out/phantom``, predict, validate and score.

    Writes ``out/predictions.csv``, ``out/scores.json`` and ``out/phantom_contact_sheet.png``.
    Returns the score dictionary (keys of :func:`ra2.metrics.score`).
    """
    from ra2 import io
    from ra2.baseline import predict_means
    from ra2.metrics import score_files
    from ra2.phantom import generate_dataset
    from ra2.phantom.contact_sheet import contact_sheet

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
    log("[demo] predictor: REFERENCE BASELINE (each joint's training mean); the detector + regressor "
        "pipeline is not wired into the demo yet")
    predictions = predict_means(train_df, template)
    pred_path = out / "predictions.csv"
    io.write_predictions(predictions, template, pred_path)
    problems = io.validate_predictions(pred_path, data / "test" / "template.csv")
    if problems:
        raise RuntimeError("demo wrote an invalid predictions.csv:\n" + "\n".join(problems))
    log(f"[demo] {pred_path}: valid ({len(template)} patients x {predictions.shape[1]} columns)")

    scores = score_files(pred_path, data / "gold.csv")
    (out / "scores.json").write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    for key, value in scores.items():
        log(f"[demo] {key:20s} {'NA' if value is None else f'{value:.4f}'}")
    log(f"[demo] scores -> {out / 'scores.json'} (lower is better)")
    return scores
