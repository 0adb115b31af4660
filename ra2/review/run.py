"""What a prediction run left in its folder, read for review, and which of its joints are flagged.

A run folder is what ``ra2 predict`` / ``ra2 run`` / ``ra2 demo`` write: ``predictions.csv`` (90 columns, the
template's order), ``predictions_uncertainty.csv`` (each joint's ensemble spread, same rows and columns) and
``detections.json`` (site boxes ``(y1, x1, y2, x2)`` in pixels of the original, unmirrored film, and each box's
source). The review reads them through the project's own readers and never writes them.

Flags: every (patient, joint) cell with a finite spread is ranked by spread, highest first (ties: patient order,
then column order); the top :data:`FLAG_FRACTION` of them (at least one) are flagged, the same rule as the
evaluation report's "flagged for review" (:func:`ra2.evaluation.stats.spread_vs_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract
from ra2.io import DETECTIONS_JSON, PREDICTIONS_CSV, TEMPLATE_CSV

FLAG_FRACTION = 0.1
"""Share of the joints with a spread that are flagged for review (the report's top 10%)."""


def flag_cells(spread: np.ndarray, fraction: float = FLAG_FRACTION) -> np.ndarray:
    """``spread`` ``[P, 86]`` float (NaN: no spread) -> ``[P, 86]`` bool, True for the flagged cells (see the
    module docstring). All False when no cell has a finite spread."""
    spread = np.asarray(spread, dtype=np.float64)
    ok = np.isfinite(spread)
    flagged = np.zeros(spread.shape, dtype=bool)
    if not ok.any():
        return flagged
    rows, cols = np.nonzero(ok)  # row-major: patient, then column
    order = np.argsort(-spread[ok], kind="stable")
    n_top = max(1, round(fraction * len(order)))
    top = order[:n_top]
    flagged[rows[top], cols[top]] = True
    return flagged


@dataclass
class ReviewRun:
    """One run folder opened for review. Arrays are ``[P, 86]`` in ``patient_ids`` (template) order and
    :data:`ra2.contract.JOINT_COLUMNS` order.

    ``predictions``: ``[P, 90]`` frame of ``predictions.csv`` (``Patient_ID`` str, the rest float64), template
    order. ``spread``: float64, NaN where a joint had no crop. ``gold``: float64 or None. ``flagged``: bool.
    ``detections``: the parsed ``detections.json`` (``films``: ``"{patient}-{limb}"`` -> site id -> box
    ``(y1, x1, y2, x2)`` original-film pixels; ``box_sources``: the same keys -> site id -> source), or an empty
    one when the run has no such file.
    """

    run_dir: Path
    films_dir: Path
    template_path: Path
    template: pd.DataFrame
    predictions: pd.DataFrame
    spread: np.ndarray
    gold: np.ndarray | None
    gold_path: Path | None
    flagged: np.ndarray
    detections: dict

    @property
    def patient_ids(self) -> list[str]:
        return [str(p) for p in self.predictions[contract.PATIENT_COLUMN]]

    @property
    def joint_values(self) -> np.ndarray:
        """The predicted joint scores ``[P, 86]`` float64."""
        return self.predictions[list(contract.JOINT_COLUMNS)].to_numpy(dtype=np.float64)

    def patient_order(self) -> list[int]:
        """Row indices of the patients, most uncertain first: by their highest joint spread (a patient without
        any spread last), ties in template order."""
        top = np.where(np.isfinite(self.spread), self.spread, -np.inf).max(axis=1, initial=-np.inf)
        return [int(i) for i in np.argsort(-top, kind="stable")]

    def boxes(self, patient: str, limb: str) -> dict[str, list[float]]:
        """Site id -> detected box ``[y1, x1, y2, x2]`` (original-film pixels) of one film; empty when none."""
        return dict(self.detections["films"].get(f"{patient}-{limb}", {}))

    def carpus_box(self, patient: str, limb: str) -> list[float] | None:
        """The hands detector's carpus box ``[y1, x1, y2, x2]`` (original-film pixels) of a hand film, or None
        (not a hand film, none found, or a ``detections.json`` written before the carpus was recorded)."""
        return self.detections.get("carpus", {}).get(f"{patient}-{limb}")

    def box_sources(self, patient: str, limb: str) -> dict[str, str]:
        """Site id -> box source (``detected`` / ``reassigned`` / ``layout`` ...) of one film."""
        return dict(self.detections.get("box_sources", {}).get(f"{patient}-{limb}", {}))


def _template_path(run_dir: Path, films_dir: Path) -> Path:
    """The template the reviewed file is validated against: ``FILMS/template.csv`` where the films folder is a
    test folder, else the run's own ``predictions.csv`` (written in the template's columns and rows)."""
    candidate = films_dir / TEMPLATE_CSV
    return candidate if candidate.is_file() else run_dir / PREDICTIONS_CSV


def open_run(run_dir: str | Path, films_dir: str | Path, gold: str | Path | None = None) -> ReviewRun:
    """Read a run folder for review (see the module docstring). Raises :class:`Ra2Error` naming the file for a
    missing folder, a missing or broken ``predictions.csv`` / ``predictions_uncertainty.csv``, a broken
    ``detections.json``, a template whose patients differ from the predictions', or a gold CSV lacking one of
    them."""
    from ra2 import io
    from ra2.evaluation.films import read_detections

    run_dir, films_dir = Path(run_dir), Path(films_dir)
    if not run_dir.is_dir():
        raise Ra2Error(f"--predictions {run_dir}: not a folder (expected the output folder of ra2 predict/run/demo)")
    if not films_dir.is_dir():
        raise Ra2Error(f"--films {films_dir}: not a folder")
    pred_path = run_dir / PREDICTIONS_CSV
    if not pred_path.is_file():
        raise Ra2Error(f"{pred_path}: no such file (is {run_dir} the output folder of ra2 predict/run/demo?)")
    template_path = _template_path(run_dir, films_dir)
    template = io.read_template_csv(template_path)
    template_ids = [str(p) for p in template[contract.PATIENT_COLUMN]]
    pred = io.read_predictions_csv(pred_path)
    rows = io.match_patient_rows([str(p) for p in pred[contract.PATIENT_COLUMN]], template_ids, str(pred_path),
                                 "duplicate patient", f"no prediction for {template_path}'s patient(s)")
    pred = pred.iloc[rows].reset_index(drop=True)

    unc_path = run_dir / io.UNCERTAINTY_CSV
    if unc_path.is_file():
        unc = io.read_uncertainty(unc_path)
        urows = io.match_patient_rows([str(p) for p in unc[contract.PATIENT_COLUMN]], template_ids, str(unc_path),
                                      "duplicate patient", "no spread for patient(s)")
        spread = unc[list(contract.JOINT_COLUMNS)].to_numpy(dtype=np.float64)[urows]
    else:  # an older run: nothing is flagged, every joint can still be reviewed
        spread = np.full((len(template_ids), len(contract.JOINT_COLUMNS)), np.nan)

    det_path = run_dir / DETECTIONS_JSON
    detections = read_detections(det_path) if det_path.is_file() else {"films": {}, "box_sources": {}}

    gold_values, gold_path = None, None
    if gold is not None:
        gold_path = Path(gold)
        gdf = io.read_gold_csv(gold_path)
        grows = io.match_patient_rows([str(p) for p in gdf[contract.PATIENT_COLUMN]], template_ids, str(gold_path),
                                      "duplicate patient", "no gold score for patient(s)")
        gold_values = gdf[list(contract.JOINT_COLUMNS)].to_numpy(dtype=np.float64)[grows]

    return ReviewRun(run_dir=run_dir, films_dir=films_dir, template_path=template_path, template=template,
                     predictions=pred, spread=spread, gold=gold_values, gold_path=gold_path,
                     flagged=flag_cells(spread), detections=detections)
