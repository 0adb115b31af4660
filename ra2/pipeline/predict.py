"""Prediction: ``Predictor.load(models_dir).predict(test_dir, template)`` -> :class:`PredictResult`.

The road (docs/pipeline.md)::

    every test film: read once -> detect_film -> site_crops -> ensembles (+ patient context)
        -> 86 joints; a joint without a prediction (lost film, failed crop or ensemble)
        -> ra2.fallback (the other side averaged with the training mean, else the training mean)
        -> Overall_*: the context model's calibrated totals (ContextModel.overall), else the sums (contract.add_overall)

Everything a prediction produced comes back in the :class:`PredictResult`; the predictor keeps no state of
its last call. :func:`write_prediction_extras` writes the files beside ``predictions.csv``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import contract
from ra2 import models_folder as mf
from ra2.pipeline.films import DetectionRecord, detected_films
from ra2.runinfo import write_json

log = logging.getLogger("ra2.pipeline")

PATIENTS_PER_CHUNK = 16
""":meth:`Predictor.predict` detects, crops and scores this many patients at a time: its memory does not grow
with the test set (docs/benchmarks.md: peak RSS for 10 and 100 patients)."""

"""Beside ``predictions.csv``: :meth:`ra2.pipeline.films.DetectionRecord.to_dict` of the prediction."""


@dataclass
class PredictResult:
    """What one :meth:`Predictor.predict` produced.

    Attributes:
        predictions: ``[P, 90]`` frame in ``contract.COLUMNS`` order, one row per template patient in its
            order (``Patient_ID`` as the template's text; ``Overall_*``: the context model's calibrated totals,
            the sums of the joints without one).
        spread: ``[P, 87]``: ``Patient_ID`` + the 86 joint columns, each joint's ensemble spread (standard
            deviation over members x test-time views, score units), NaN where no network predicted the joint
            (:mod:`ra2.scoring.uncertainty`).
        detections: the boxes found on each film and what was lost (:class:`DetectionRecord`).
        run: the run record: patients, films read / missing / failed, box sources, crop and scoring failures,
            fallback joints by reason and by estimate, joints from training means.
    """

    predictions: pd.DataFrame
    spread: pd.DataFrame
    detections: DetectionRecord
    run: dict


class Predictor:
    """Predict a test folder with a trained models folder (detectors + regressor ensembles).

    Args:
        detector: a :class:`ra2.detection.detect.JointDetector` (or anything with its ``detect_film``).
        ensembles: data set -> :class:`ra2.scoring.ensemble.Ensemble`.
        training_means: joint column -> training mean (the fallback's estimate).
        progress: progress bars.
        context: a :class:`ra2.scoring.context.ContextModel`, or None.
        patients_per_chunk: patients detected, cropped and scored at a time (memory).
    """

    def __init__(self, detector, ensembles: dict, training_means: dict[str, float] | None = None,
                 progress: bool = False, context=None, patients_per_chunk: int = PATIENTS_PER_CHUNK):
        self.detector = detector
        self.ensembles = ensembles
        self.context = context
        self.training_means = training_means or {}
        self.progress = progress
        self.patients_per_chunk = int(patients_per_chunk)

    @classmethod
    def load(cls, models_dir: str | Path, progress: bool = False) -> Predictor:
        """The predictor of a models folder written by :class:`ra2.pipeline.train.Trainer`."""
        from ra2.detection.detect import JointDetector
        from ra2.scoring.context import load_context
        from ra2.scoring.ensemble import load_ensembles

        models_dir = Path(models_dir)
        regressors = models_dir / mf.REGRESSORS_DIR
        return cls(JointDetector.load(models_dir / mf.DETECTORS_DIR), load_ensembles(regressors),
                   mf.training_means(models_dir), progress=progress, context=load_context(regressors))

    def predict(self, test_dir: str | Path, template: pd.DataFrame | None = None,
                boxes: dict | None = None) -> PredictResult:
        """Predictions for the patients of ``template`` (default ``test_dir/template.csv``).

        ``boxes``: ``{(patient_id, limb): {site id: (y1, x1, y2, x2) film pixels}}`` to use instead of
        detecting (e.g. the ground truth, to measure the regressors alone).

        Failures cost the smallest unit: a film that is missing, unreadable or fails in detection costs its
        limb's joints; a joint whose crop cannot be cut, or whose data set's ensemble fails, costs that joint.
        Each such joint gets the estimate of :mod:`ra2.fallback` (the other side's prediction averaged with the
        training mean, else the training mean), and the result's ``run`` counts them.
        """
        from ra2.fallback import fill_unpredicted
        from ra2.io import TEMPLATE_CSV, read_template_csv
        from ra2.scoring.data import crop_sets_from_films
        from ra2.scoring.ensemble import predict_joints_with_spread

        test_dir = Path(test_dir)
        if template is None:
            template = read_template_csv(test_dir / TEMPLATE_CSV)
        pids = [str(p) for p in template[contract.PATIENT_COLUMN]]
        sizes = {d: e.input_size for d, e in self.ensembles.items()}
        margin = next(iter(self.ensembles.values())).margin
        record = DetectionRecord()
        crop_failures: dict = {}
        scoring_failures: dict = {}
        reasons: dict[tuple[int, str], str] = {}
        frames, spreads = [], []
        for start in range(0, len(pids), self.patients_per_chunk):  # memory bounded by the chunk, not the test set
            part = pids[start:start + self.patients_per_chunk]
            crop_part: dict = {}
            scoring_part: dict = {}
            label = (f"detecting joints on test films (patients {start + 1}-{start + len(part)} of {len(pids)})"
                     if self.progress else None)
            films = detected_films(self.detector, test_dir, part, record, label, boxes=boxes)
            chunk, spread = predict_joints_with_spread(
                self.ensembles, crop_sets_from_films(films, None, sizes, margin=margin, failures=crop_part),
                part, context=self.context, failures=scoring_part)
            for (row, column), reason in fallback_reasons(part, record.lost_films(), crop_part,
                                                          scoring_part).items():
                chunk.loc[row, column] = np.nan
                reasons[(start + row, column)] = reason
            crop_failures.update(crop_part)
            for dataset, message in scoring_part.items():
                scoring_failures.setdefault(dataset, message)
            frames.append(chunk)
            spreads.append(spread)
        if frames:
            frame = pd.concat(frames, ignore_index=True)
            spread = pd.concat(spreads, ignore_index=True)
        else:
            frame, spread = predict_joints_with_spread(self.ensembles, {}, [])
        for (pid, site_id), message in crop_failures.items():
            log.warning("%s %s: crop failed (%s); its joints get fallback estimates", pid, site_id, message)
        for dataset, message in scoring_failures.items():
            log.warning("%s ensemble failed (%s); its joints get fallback estimates", dataset, message)
        unscored = frame[list(contract.JOINT_COLUMNS)].isna().to_numpy()
        for row, col in zip(*np.nonzero(unscored)):  # no crop for a reason not recorded above (should not happen)
            reasons.setdefault((int(row), contract.JOINT_COLUMNS[col]), "no_prediction")
        frame, kinds = fill_unpredicted(frame, self.training_means)
        by_reason = dict(Counter(reasons.values()))
        by_estimate = dict(Counter(kinds[kinds != None]))  # noqa: E711 - element-wise on an object array
        run = {
            "patients": len(pids), "films_read": record.read, "missing_films": record.missing,
            "failed_films": record.failed,
            "box_sources": record.sources,
            "crop_failures": {f"{p} {s}": m for (p, s), m in crop_failures.items()},
            "scoring_failures": scoring_failures,
            "fallback_joints": {"total": int(len(reasons)), "by_reason": by_reason, "by_estimate": by_estimate},
            "joints_from_training_means": int(by_estimate.get("training_mean", 0))}
        # the Overall_* columns: the context model's calibrated totals, or the sums without one
        totals = self.context.overall(frame) if self.context is not None else contract.add_overall(frame)
        return PredictResult(totals, spread, record, run)


def fallback_reasons(patient_ids: list[str], lost_films: dict[str, str], crop_failures: dict,
                     scoring_failures: dict) -> dict[tuple[int, str], str]:
    """``(row, joint column) -> reason`` of every joint the model could not predict: the joints of a lost film
    (``film_missing`` / ``film_unreadable`` / ``detection_failed``), of a site whose crop failed
    (``crop_failed``), of a data set whose ensemble failed (``scoring_failed``). Rows index ``patient_ids``;
    lost films of other patients are ignored."""
    row = {p: i for i, p in enumerate(patient_ids)}
    out: dict[tuple[int, str], str] = {}
    for key, reason in lost_films.items():
        pid, limb = key.rsplit("-", 1)
        if pid not in row:  # another chunk's patient
            continue
        for column in contract.limb_columns(limb):
            out[(row[pid], column)] = reason
    for (pid, site_id), _ in crop_failures.items():
        for score in contract.scores_of_site(site_id):
            out.setdefault((row[pid], score.column), "crop_failed")
    for dataset in scoring_failures:
        for score in contract.scores_of_dataset(dataset):
            for r in range(len(patient_ids)):
                out.setdefault((r, score.column), "scoring_failed")
    return out


def write_prediction_extras(result: PredictResult, template: pd.DataFrame, folder: str | Path) -> list[Path]:
    """Beside ``predictions.csv`` in ``folder``: ``predictions_uncertainty.csv`` (each joint's ensemble spread,
    :func:`ra2.io.write_uncertainty`) and ``detections.json`` (:meth:`DetectionRecord.to_dict`: boxes
    ``(y1, x1, y2, x2)`` in film pixels and their sources) of a :class:`PredictResult`. Returns both paths."""
    from ra2.io import DETECTIONS_JSON, UNCERTAINTY_CSV, write_uncertainty
    from ra2.scoring.uncertainty import uncertainty_frame

    folder = Path(folder)
    unc = write_uncertainty(uncertainty_frame(result.spread), template, folder / UNCERTAINTY_CSV)
    write_json(folder / DETECTIONS_JSON, result.detections.to_dict())
    return [unc, folder / DETECTIONS_JSON]
