"""Estimates for the joints the model could not predict, at the smallest unit (a joint, a film).

A joint is *unpredicted* when its film is missing, unreadable or failed in detection (the whole limb), or when
its own crop or its data set's scoring failed (:class:`ra2.pipeline.predict.Predictor` records which). Its
estimate:

- **the other side**: when the same joint of the patient's other limb (:func:`ra2.contract.other_side`:
  ``LH_pip_E__2`` <-> ``RH_pip_E__2``, ``LF_*`` <-> ``RF_*``) was predicted by the model, the mean of that
  prediction and the joint's training mean.
  Rheumatoid arthritis is a symmetric polyarthritis, so the other side carries information about the patient;
  averaging with the training mean keeps the estimate from copying the other side's error. Measured on the
  demo's 30 held-out phantom patients with the gold scores standing in for the other side's predictions
  (per-joint log2 RMSE of the left hand's joints): training mean 0.461, other side alone 0.383, the average
  0.339 (left foot: 0.583 / 0.441 / 0.422; right hand 0.519 / 0.383 / 0.387);
- **the training mean** of the joint otherwise (0 when there is no training mean, e.g. no ``training.csv``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ra2 import contract

OTHER_SIDE = "other_side"
TRAINING_MEAN = "training_mean"
ESTIMATES = (OTHER_SIDE, TRAINING_MEAN)

OTHER_SIDE_WEIGHT = 0.5
"""Weight of the other side's prediction in its estimate (the rest goes to the training mean)."""

def fill_unpredicted(frame: pd.DataFrame, training_means: dict[str, float]) -> tuple[pd.DataFrame, np.ndarray]:
    """Fill the NaN joint cells of ``frame`` by the rule of this module.

    Args:
        frame: ``[P, Patient_ID + 86 joints]``; NaN marks an unpredicted joint. The other side's values are
            read before anything is filled, so one estimate never feeds another.
        training_means: joint column -> training mean (missing columns count as 0).

    Returns:
        ``(filled frame (a copy), kinds [P, 86] object array)``: per joint cell ``None`` (the model's),
        :data:`OTHER_SIDE` or :data:`TRAINING_MEAN`, columns in ``contract.JOINT_COLUMNS`` order.
    """
    cols = list(contract.JOINT_COLUMNS)
    values = frame[cols].to_numpy(dtype=float)
    means = np.array([float(training_means.get(c, 0.0)) for c in cols])
    other = frame[[contract.other_side(c) for c in cols]].to_numpy(dtype=float)
    missing = np.isnan(values)
    use_other = missing & ~np.isnan(other)
    filled = np.where(missing, np.broadcast_to(means, values.shape), values)
    filled = np.where(use_other, OTHER_SIDE_WEIGHT * other + (1.0 - OTHER_SIDE_WEIGHT) * means, filled)
    kinds = np.full(values.shape, None, dtype=object)
    kinds[missing] = TRAINING_MEAN
    kinds[use_other] = OTHER_SIDE
    out = frame.copy()
    out[cols] = filled
    return out, kinds


__all__ = ["fill_unpredicted", "ESTIMATES", "OTHER_SIDE", "TRAINING_MEAN"]
