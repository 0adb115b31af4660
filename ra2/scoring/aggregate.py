"""From per-data-set joint predictions to one table of the 86 joints (``Overall_*`` columns come last, once,
from :func:`ra2.contract.add_overall`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract


def joint_frame(patient_ids: Sequence[str], joints: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """The joints table.

    Args:
        patient_ids: ``[P]`` patient ids, in output row order.
        joints: joint column -> ``[P]`` predicted scores, for all 86 joint columns (NaN: no prediction).

    Returns:
        DataFrame ``[P, 1 + 86]``: ``Patient_ID`` then the joint columns in ``contract.JOINT_COLUMNS`` order.
    """
    missing = [c for c in contract.JOINT_COLUMNS if c not in joints]
    if missing:
        raise Ra2Error(f"joint predictions lack {len(missing)} columns, first {missing[0]}")
    extra = [c for c in joints if c not in contract.SCORE_BY_COLUMN]
    if extra:
        raise Ra2Error(f"unknown joint column {extra[0]!r}")
    n = len(patient_ids)
    table = {contract.PATIENT_COLUMN: [str(p) for p in patient_ids]}
    for c in contract.JOINT_COLUMNS:
        v = np.asarray(joints[c], dtype=np.float64)
        if v.shape != (n,):
            raise Ra2Error(f"column {c}: {v.shape[0] if v.ndim else 0} values for {n} patients")
        table[c] = v
    return pd.DataFrame(table)
