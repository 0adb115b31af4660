"""Per-joint uncertainty: the ensemble spread of every prediction, as a table beside ``predictions.csv``.

The spread of a joint is the standard deviation of its ensemble members' predictions on every test-time
view (:meth:`ra2.scoring.ensemble.Ensemble.predict_with_spread`, score units). ``predictions_uncertainty.csv``
has the rows and the 90 columns of ``predictions.csv``:

- a joint column: that joint's spread; empty (NaN) where the joint had no crop (its film is missing, so
  its prediction is a training mean or the context model's fill, not a network's);
- ``Overall_erosion`` / ``Overall_narrowing``: ``sqrt(sum of the squared spreads)`` of their joints (the
  spread of a sum of independent joints), ignoring empty joints; ``Overall_Tol``: the same over all 86.

``predictions.csv`` itself is unchanged: the challenge's format.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract

UNCERTAINTY_FILE = "predictions_uncertainty.csv"


def uncertainty_frame(spread: pd.DataFrame) -> pd.DataFrame:
    """``spread`` (``Patient_ID`` + the 86 joint columns, NaN allowed) -> the 90-column frame of
    :data:`ra2.contract.COLUMNS` with the ``Overall_*`` spreads (see the module docstring)."""
    missing = [c for c in (contract.PATIENT_COLUMN,) + contract.JOINT_COLUMNS if c not in spread.columns]
    if missing:
        raise Ra2Error(f"spread table lacks column(s) {', '.join(missing[:3])}")
    out = spread[[contract.PATIENT_COLUMN, *contract.JOINT_COLUMNS]].copy()

    def root_sum_sq(cols) -> np.ndarray:
        values = out[list(cols)].to_numpy(dtype=np.float64)
        return np.sqrt(np.nansum(values ** 2, axis=1))

    out[contract.OVERALL_EROSION] = root_sum_sq(contract.EROSION_COLUMNS)
    out[contract.OVERALL_NARROWING] = root_sum_sq(contract.NARROWING_COLUMNS)
    out[contract.OVERALL_TOTAL] = root_sum_sq(contract.JOINT_COLUMNS)
    return out[list(contract.COLUMNS)].reset_index(drop=True)


def write_uncertainty(spread: pd.DataFrame, template: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write :func:`uncertainty_frame` of ``spread`` to ``path`` in the template's row order (rows matched
    by ``Patient_ID`` as text; empty cells for NaN). Returns the path."""
    path = Path(path)
    frame = uncertainty_frame(spread)
    frame[contract.PATIENT_COLUMN] = frame[contract.PATIENT_COLUMN].astype(str)
    ids = [str(p) for p in template[contract.PATIENT_COLUMN]]
    absent = sorted(set(ids) - set(frame[contract.PATIENT_COLUMN]))
    if absent:
        raise Ra2Error(f"uncertainty for {path}: no spread for template patient(s) {', '.join(absent[:3])}")
    frame = frame.set_index(contract.PATIENT_COLUMN).loc[ids].reset_index()
    frame[contract.PATIENT_COLUMN] = list(template[contract.PATIENT_COLUMN])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)
    return path


def read_uncertainty(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``predictions_uncertainty.csv``: ``Patient_ID`` as text, every score column float (NaN where
    empty). Raises :class:`Ra2Error` naming the file for a missing file, column or a negative spread."""
    path = Path(path)
    if not path.is_file():
        raise Ra2Error(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype={contract.PATIENT_COLUMN: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise Ra2Error(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in contract.COLUMNS if c not in frame.columns]
    if missing:
        raise Ra2Error(f"{path}: missing column(s) {', '.join(missing[:3])}")
    try:
        values = frame[list(contract.COLUMNS[1:])].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise Ra2Error(f"{path}: a non-numeric spread value") from None
    if np.any(values[np.isfinite(values)] < 0):
        raise Ra2Error(f"{path}: a negative spread value")
    return frame[list(contract.COLUMNS)]
