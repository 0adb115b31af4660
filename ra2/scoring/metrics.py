"""Array forms of the error measures the scoring stage optimises and reports on crops.

:func:`log2_rmse` is :func:`ra2.metrics.per_joint_log2_rmse` (the project's one definition of the
pooled per-joint log2 RMSE) for aligned arrays of crop predictions and scores instead of 90-column
frames: ``sqrt(mean over all cells of (log2(max(p, 0) + 1) - log2(g + 1))^2)``, using the same
:func:`ra2.metrics.log_transform`. The official SC2/SC3 (:func:`ra2.metrics.sc2`, :func:`ra2.metrics.sc3`)
instead take an RMSE per patient and a weighted mean over patients.
"""

from __future__ import annotations

import numpy as np

from ra2.metrics import log_transform


def log2_rmse(predictions, gold) -> float:
    """Pooled per-joint log2 RMSE of ``predictions`` vs ``gold`` (same shape, any number of dimensions)."""
    p = np.asarray(predictions, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: predictions {p.shape} vs gold {g.shape}")
    if p.size == 0:
        raise ValueError("log2_rmse of an empty array")
    return float(np.sqrt(np.mean((log_transform(p) - log_transform(g)) ** 2)))


def mae(predictions, gold) -> float:
    """Mean absolute error of ``predictions`` vs ``gold`` (same shape), no clipping."""
    p = np.asarray(predictions, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    return float(np.mean(np.abs(p - g)))
