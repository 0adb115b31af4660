"""Per-joint uncertainty: the ensemble spread of every prediction, as a table beside ``predictions.csv``.

The spread of a joint is the standard deviation of its ensemble members' predictions on every test-time
view (:meth:`ra2.scoring.ensemble.Ensemble.predict_with_spread`, score units). ``predictions_uncertainty.csv``
has the rows and the 90 columns of ``predictions.csv``:

- a joint column: that joint's spread; empty (NaN) where the joint had no crop (its film is missing, so
  its prediction is a training mean or the context model's fill, not a network's);
- ``Overall_erosion`` / ``Overall_narrowing``: ``sqrt(sum of the squared spreads)`` of their joints (the
  spread of a sum of independent joints), ignoring empty joints; ``Overall_Tol``: the same over all 86.
  These are the spreads of the joints' sums; where the context model calibrates the totals
  (:mod:`ra2.scoring.totals`, ``T = 2^(a log2(S+1) + c) - 1``) the total's own spread is about
  ``a (T+1)/(S+1)`` times this.

``predictions.csv`` itself is unchanged: the challenge's format. The file is written and read through
:mod:`ra2.io` (:func:`ra2.io.write_uncertainty`, :func:`ra2.io.read_uncertainty`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract


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
