"""The trivial reference predictor: every test patient gets the training set's mean score per joint.

Any learned model must beat it; it also gives the pipeline a valid ``predictions.csv`` without any
image processing. The ``Overall_*`` columns are the sums of the predicted joints (as in the training
data), not the training means of the ``Overall_*`` columns (the two agree up to rounding anyway).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ra2 import Ra2Error
from ra2 import contract as C


def training_means(train_df: pd.DataFrame) -> dict[str, float]:
    """Mean of every joint column over the training patients: ``{column: mean}`` for the 86 joint
    columns of ``contract.JOINT_COLUMNS``, in that order. train_df: as from ``io.read_training_csv``."""
    missing = [c for c in C.JOINT_COLUMNS if c not in train_df.columns]
    if missing:
        raise Ra2Error("training data: missing column(s) " + ", ".join(repr(c) for c in missing))
    if len(train_df) == 0:
        raise Ra2Error("training data: no patients, cannot compute means")
    values = train_df[list(C.JOINT_COLUMNS)].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise Ra2Error("training data: missing or infinite scores, cannot compute means")
    means = values.mean(axis=0)
    return {col: float(m) for col, m in zip(C.JOINT_COLUMNS, means)}


def predict_means(train_df: pd.DataFrame, template_df: pd.DataFrame) -> pd.DataFrame:
    """Predictions of the mean predictor for the template's patients.

    Returns a DataFrame ``[P rows, 90 columns]`` in ``contract.COLUMNS`` order and the template's row
    order: ``Patient_ID`` copied from the template (as str), each joint column the training mean of that
    column, ``Overall_erosion`` / ``Overall_narrowing`` the sums of the predicted erosion / narrowing
    joints and ``Overall_Tol`` their sum. Pass it to ``io.write_predictions`` together with the template.
    """
    if C.PATIENT_COLUMN not in template_df.columns:
        raise Ra2Error(f"template: missing column {C.PATIENT_COLUMN!r}")
    means = training_means(train_df)
    frame = pd.DataFrame({C.PATIENT_COLUMN: pd.Series([str(x) for x in template_df[C.PATIENT_COLUMN]], dtype=object),
                          **{col: np.full(len(template_df), means[col]) for col in C.JOINT_COLUMNS}})
    return C.add_overall(frame)
