"""Per-joint log2 RMSE: the error measure the scoring stage optimises and reports.

Written locally because ``ra2/metrics.py`` (official SC1/SC2/SC3) lives on another branch; this is the
unweighted, per-joint form: ``sqrt(mean over all (patient, joint) of (log2(p+1) - log2(g+1))^2)`` with
negative predictions clipped to 0 (as the official scorer does). The official SC2/SC3 first take an RMSE
per patient and then a weighted mean over patients; per-joint log2 RMSE pools all joints instead.
"""

from __future__ import annotations

import numpy as np


def log2_rmse(predictions, gold) -> float:
    """Per-joint log2 RMSE of ``predictions`` vs ``gold`` (same shape, any number of dimensions)."""
    p = np.maximum(np.asarray(predictions, dtype=np.float64), 0.0)
    g = np.asarray(gold, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: predictions {p.shape} vs gold {g.shape}")
    if p.size == 0:
        raise ValueError("log2_rmse of an empty array")
    return float(np.sqrt(np.mean((np.log2(p + 1.0) - np.log2(g + 1.0)) ** 2)))


def mae(predictions, gold) -> float:
    p = np.asarray(predictions, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    return float(np.mean(np.abs(p - g)))
