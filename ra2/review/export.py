"""``ra2 review export``: a review log -> a training folder that ``ra2 train`` and ``ra2 train-detectors`` accept.

For every patient a reader touched (at least one score or box in ``review_log.jsonl``), ``OUT`` receives:

- ``training.csv``: the 90 challenge columns; a joint a reader scored keeps the reader's score, every other joint
  the run's prediction rounded to the nearest whole score (halves up, as the page rounds) and clipped to its
  range (the model's label, unchecked);
  ``Overall_*`` are the sums (:func:`ra2.contract.add_overall`). Read back by :func:`ra2.io.read_training_csv`.
- ``review_mask.csv``: ``Patient_ID`` and the 86 joint columns, 1 where a reader gave the score, 0 where the model
  did; for a user who wants to train on checked labels only.
- the patients' films, copied (``{Patient_ID}-{limb}.<ext>``), so ``OUT`` is a complete training folder;
- ``boxes.coco.json``: each film's boxes (the run's detected boxes; a box marked wrong left out; a box the reader
  drew instead of it), labelled by site id, and on hand films the hands detector's ``{limb}_carpus`` region (the
  run's carpus box from ``detections.json``; for runs that did not record it, the bounding box of the film's
  wrist boxes, which is how the phantom's carpus region is drawn), in COCO form
  (:func:`ra2.annotation_export.coco_document`), and
  ``annotations.json``: the same read through the project's importer (:func:`ra2.annotation_import.import_annotations`,
  which also derives the carpus crop from the wrist boxes), the file ``ra2 train-detectors`` reads. Boxes are
  ``(y1, x1, y2, x2)`` in pixels of the original film.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract

TRAINING_FILE = "training.csv"
MASK_FILE = "review_mask.csv"
BOXES_FILE = "boxes.coco.json"
ANNOTATIONS_FILE = "annotations.json"
READER_SOURCE = "reader"


def training_labels(store) -> tuple[list[int], np.ndarray, np.ndarray]:
    """``(rows, labels [R, 86] float64, from_reader [R, 86] bool)`` for the patients a reader touched, in template
    order (see the module docstring for the rule)."""
    touched = {e["patient"] for e in store.events}
    rows = [r for r, pid in enumerate(store.run.patient_ids) if pid in touched]
    maxima = np.array([contract.MAX_SCORE[c] for c in contract.JOINT_COLUMNS], dtype=np.float64)
    model = np.clip(np.floor(np.maximum(store.run.joint_values[rows], 0.0) + 0.5), 0.0, maxima)
    reader = store.reviewed[rows]
    labels = np.where(reader, store.values[rows], model)
    return rows, labels, reader


def export_review(run_dir: str | Path, out: str | Path, films_dir: str | Path | None = None) -> dict:
    """Write the training folder ``out`` from the review of ``run_dir`` (films in ``films_dir``; None: the folder
    the review showed, from ``RUN/review_session.json``). Returns
    ``{"patients", "joints_from_reader", "films", "boxes", "boxes_wrong", "boxes_drawn", "skipped"}``.
    Raises :class:`Ra2Error` when there is no log or it holds no correction."""
    from ra2 import io
    from ra2.annotation_export import LabelledBox, coco_document
    from ra2.annotation_import import film_shape, import_annotations
    from ra2.annotations import write_annotations
    from ra2.review.run import open_run
    from ra2.review.store import BOX_OK, BOX_WRONG, LOG_FILE, ReviewStore, read_session

    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / LOG_FILE).is_file():
        raise Ra2Error(f"{run_dir / LOG_FILE}: no review log (run `ra2 review --predictions {run_dir}` first)")
    films_dir = Path(films_dir) if films_dir is not None else Path(read_session(run_dir)["films"])
    store = ReviewStore(open_run(run_dir, films_dir), read_only=True)  # beside a live server: writes nothing
    rows, labels, reader = training_labels(store)
    if not rows:
        raise Ra2Error(f"{store.log_path}: no correction yet, nothing to export")
    out.mkdir(parents=True, exist_ok=True)
    ids = [store.run.patient_ids[r] for r in rows]

    frame = pd.DataFrame(labels, columns=list(contract.JOINT_COLUMNS))
    frame.insert(0, contract.PATIENT_COLUMN, ids)
    frame = contract.add_overall(frame)
    template = pd.DataFrame({c: ids if c == contract.PATIENT_COLUMN else [""] * len(ids) for c in contract.COLUMNS})
    io.write_predictions(frame, template, out / TRAINING_FILE)
    mask = pd.DataFrame(reader.astype(int), columns=list(contract.JOINT_COLUMNS))
    mask.insert(0, contract.PATIENT_COLUMN, ids)
    mask.to_csv(out / MASK_FILE, index=False)

    films, n_boxes, n_wrong, n_drawn, n_carpus = [], 0, 0, 0, 0
    for pid in ids:
        for limb in contract.LIMBS:
            try:
                src = io.find_film(films_dir, pid, limb)
            except Ra2Error:
                continue
            dst = out / src.name
            if src.resolve() != dst.resolve():
                shutil.copy2(src, dst)
            detected = store.run.boxes(pid, limb)
            sources = store.run.box_sources(pid, limb)
            drawn = {site: state for (p, site), state in store.boxes.items()
                     if p == pid and contract.SITE_BY_ID[site].limb == limb}
            boxes = []
            for site in sorted(set(detected) | set(drawn), key=lambda s: list(contract.SITE_BY_ID).index(s)):
                state = drawn.get(site, BOX_OK)
                if state == BOX_WRONG:
                    n_wrong += 1
                    continue
                if state == BOX_OK:
                    if site not in detected:
                        continue
                    boxes.append(LabelledBox(site, tuple(detected[site]), source=sources.get(site, "detected")))
                else:
                    n_drawn += 1
                    boxes.append(LabelledBox(site, tuple(state), source=READER_SOURCE))
            if boxes and limb in contract.HAND_LIMBS:
                carpus = _carpus_box(store.run.carpus_box(pid, limb), boxes)
                if carpus is not None:
                    boxes.append(LabelledBox(f"{limb}_{contract.CARPUS_CLASS}", carpus, source="detected"))
                    n_carpus += 1
            if boxes:
                h, w = film_shape(src)
                films.append((src.name, h, w, boxes))
                n_boxes += len(boxes)
    skipped: list[str] = []
    if films:
        (out / BOXES_FILE).write_text(json.dumps(coco_document(films), indent=1) + "\n")
        result = import_annotations("coco", out / BOXES_FILE, out, mapping="ra2", skip_bad=True)
        skipped = result.skipped
        write_annotations(out / ANNOTATIONS_FILE, result.films)
    return {"patients": len(ids), "joints_from_reader": int(reader.sum()), "films": len(films), "boxes": n_boxes,
            "boxes_wrong": n_wrong, "boxes_drawn": n_drawn, "carpus_regions": n_carpus, "skipped": skipped}


def _carpus_box(recorded, boxes) -> tuple[float, float, float, float] | None:
    """The hands detector's carpus region of one hand film, ``(y1, x1, y2, x2)`` film pixels: the run's
    ``recorded`` box, else the bounding box of the film's wrist boxes in ``boxes`` (:class:`LabelledBox` list),
    else None (no wrist box)."""
    if recorded is not None:
        return tuple(float(v) for v in recorded)
    wrist = np.array([b.box for b in boxes if contract.SITE_BY_ID[b.label].family == "wrist"], dtype=np.float64)
    if not len(wrist):
        return None
    return (float(wrist[:, 0].min()), float(wrist[:, 1].min()), float(wrist[:, 2].max()), float(wrist[:, 3].max()))
