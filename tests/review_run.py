"""A prediction run folder made without models, for the review tests: the shared phantom's test patients with
predictions = gold + seeded noise (the spread is |noise| plus a little jitter, so it tracks the error, as the
ensembles' does), ``predictions_uncertainty.csv`` and ``detections.json`` from the ground-truth boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ra2 import contract as C
from ra2 import io
from ra2.annotations import read_annotations
from ra2.scoring.uncertainty import uncertainty_frame

SOURCES = ("detected", "reassigned", "layout")


def fake_run(phantom: Path, folder: Path, seed: int = 5) -> Path:
    """Write ``folder/predictions.csv``, ``predictions_uncertainty.csv``, ``detections.json``; returns ``folder``.
    Box sources cycle through :data:`SOURCES` so that the page shows all three colours."""
    folder.mkdir(parents=True, exist_ok=True)
    gold = io.read_gold_csv(phantom / "gold.csv")
    rng = np.random.default_rng(seed)
    pred = gold.copy()
    noise = rng.normal(0, 0.7, (len(gold), len(C.JOINT_COLUMNS)))
    pred[list(C.JOINT_COLUMNS)] = np.round(np.maximum(gold[list(C.JOINT_COLUMNS)].to_numpy() + noise, 0), 2)
    pred = C.add_overall(pred)
    template = io.read_template_csv(phantom / "test" / "template.csv")
    io.write_predictions(pred, template, folder / "predictions.csv")
    spread = pred[[C.PATIENT_COLUMN]].copy()
    for i, c in enumerate(C.JOINT_COLUMNS):
        spread[c] = np.abs(noise[:, i]) + rng.uniform(0, 0.05, len(gold))
    io.write_uncertainty(uncertainty_frame(spread), template, folder / io.UNCERTAINTY_CSV)
    det = {"films": {}, "box_sources": {}, "sources": {}, "missing_films": []}
    for ann in read_annotations(phantom / "gold_annotations.json"):
        key = f"{ann.patient_id}-{ann.limb}"
        det["films"][key] = {o.site_id: list(o.box) for o in ann.objects if o.site_id}
        det["box_sources"][key] = {s: SOURCES[i % 3] for i, s in enumerate(det["films"][key])}
    (folder / "detections.json").write_text(json.dumps(det))
    return folder
