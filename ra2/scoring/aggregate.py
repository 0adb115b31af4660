"""From 86 joint predictions to the 90-column predictions table.

``Overall_erosion`` = sum of the erosion (``_E__``) joints, ``Overall_narrowing`` = sum of the narrowing
(``_J__``) joints, ``Overall_Tol`` = their sum; columns in ``contract.COLUMNS`` order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract


def predictions_frame(patient_ids: Sequence[str], joints: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """The predictions table.

    Args:
        patient_ids: ``[P]`` patient ids, in output row order.
        joints: joint column -> ``[P]`` predicted scores, for all 86 joint columns.

    Returns:
        DataFrame with the 90 columns of ``contract.COLUMNS`` in order, one row per patient.
    """
    missing = [c for c in contract.JOINT_COLUMNS if c not in joints]
    if missing:
        raise Ra2Error(f"joint predictions lack {len(missing)} columns, first {missing[0]}")
    extra = [c for c in joints if c not in contract.SCORE_BY_COLUMN]
    if extra:
        raise Ra2Error(f"unknown joint column {extra[0]!r}")
    n = len(patient_ids)
    table = {c: np.asarray(joints[c], dtype=np.float64) for c in contract.JOINT_COLUMNS}
    for c, v in table.items():
        if v.shape != (n,):
            raise Ra2Error(f"column {c}: {v.shape[0] if v.ndim else 0} values for {n} patients")
    frame = pd.DataFrame(table)
    return add_overall(frame.assign(**{contract.PATIENT_COLUMN: list(patient_ids)}))


def add_overall(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (Patient_ID + 86 joint columns) with the three Overall_* sums, in contract order."""
    out = frame.copy()
    out[contract.OVERALL_EROSION] = out[list(contract.EROSION_COLUMNS)].sum(axis=1)
    out[contract.OVERALL_NARROWING] = out[list(contract.NARROWING_COLUMNS)].sum(axis=1)
    out[contract.OVERALL_TOTAL] = out[contract.OVERALL_EROSION] + out[contract.OVERALL_NARROWING]
    return out[list(contract.COLUMNS)].reset_index(drop=True)
