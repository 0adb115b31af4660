"""Patient totals: the three ``Overall_*`` columns calibrated on the sums of their joints.

SC1 scores the submitted ``Overall_Tol`` as it is, not re-summed from the joints, and weights patients by their
true total (1 for 0 up to 64 above 148). The sum of the joint predictions is biased: every joint's
prediction is shrunk towards the mean and cut to 0 below its data set's cut-off, so a patient's small
damages vanish from the sum and large ones are summed short. So each ``Overall_*`` column gets a
calibration in log2(x + 1) space, fitted on the training patients' cross-fitted joint predictions:

    log2(T + 1) = a * log2(S + 1) + c

with ``S`` the sum of the patient's final joint predictions of that total's columns (:data:`TOTAL_PARTS`) and
``(a, c)`` minimising the official weighted mean absolute log2 error (SC1's formula, each patient weighted by
its true ``Overall_Tol``): ``a`` on a grid, ``c`` the weighted median of the residuals (exact for an L1 loss).
The patient context model (:mod:`ra2.scoring.context`) fits and keeps them; ``predictions.csv`` holds the
calibrated totals, which are therefore not the sums of its joint columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ra2 import contract
from ra2.metrics import log_transform, weights_from_total

TOTAL_PARTS = {contract.OVERALL_TOTAL: contract.JOINT_COLUMNS, contract.OVERALL_EROSION: contract.EROSION_COLUMNS,
               contract.OVERALL_NARROWING: contract.NARROWING_COLUMNS}
"""Each ``Overall_*`` column and the joint columns whose predicted sum its calibration starts from."""

SLOPE_GRID = tuple(np.round(np.arange(0.5, 1.5001, 0.01), 4))


def calibrated_total(joint_sum, a: float, c: float, column: str) -> np.ndarray:
    """``[P]`` sums of joint predictions -> ``[P]`` calibrated totals ``2^(a log2(S+1) + c) - 1``, clipped to
    ``[0, the column's largest possible total]``."""
    top = float(sum(contract.MAX_SCORE[j] for j in TOTAL_PARTS[column]))
    z = a * log_transform(joint_sum) + c
    return np.clip(2.0 ** z - 1.0, 0.0, top)


def calibrated_frame(frame: pd.DataFrame, totals: dict[str, list[float]]) -> pd.DataFrame:
    """``frame`` (Patient_ID and the 86 final joint predictions) as the 90 challenge columns in order, each
    ``Overall_*`` column in ``totals`` (``column -> [a, c]``) calibrated, the others the plain sums."""
    out = contract.add_overall(frame)
    for column, parts in TOTAL_PARTS.items():
        if column in totals:
            a, c = totals[column]
            out[column] = calibrated_total(out[list(parts)].sum(axis=1).to_numpy(), a, c, column)
    return out


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The smallest value at which the cumulative weight reaches half the total (minimises
    ``sum w |v - m|``). ``values``, ``weights``: ``[N]``, weights > 0."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def sc1_error(pred: np.ndarray, gold: np.ndarray, weights: np.ndarray) -> float:
    """SC1's formula: ``sum_p w_p |log2(g_p+1) - log2(y_p+1)| / sum_p w_p``; all ``[P]``."""
    return float(np.sum(weights * np.abs(log_transform(pred) - log_transform(gold))) / np.sum(weights))


def fit_total(joint_sum: np.ndarray, gold_total: np.ndarray, weights: np.ndarray,
              slopes=SLOPE_GRID) -> tuple[float, float, float]:
    """The calibration ``(a, c)`` of one total minimising ``sum_p w_p |log2(T_p+1) - (a log2(S_p+1) + c)|``
    (the official SC1 error; ``a`` from ``slopes``, ties to the one nearest 1; ``c``: weighted median).

    Args:
        joint_sum, gold_total, weights: ``[P]`` predicted joint sums, true totals, the patients' weights.

    Returns:
        ``(a, c, weighted mean absolute log2 error of the fit)``.
    """
    x, y = log_transform(joint_sum), log_transform(gold_total)
    w = np.asarray(weights, dtype=np.float64)
    best = None
    for a in sorted(slopes, key=lambda v: abs(v - 1.0)):
        c = weighted_median(y - a * x, w)
        err = float(np.sum(w * np.abs(y - a * x - c)) / np.sum(w))
        if best is None or err < best[2] - 1e-12:
            best = (float(a), c, err)
    return best


def fit_totals(cut: pd.DataFrame, gold: pd.DataFrame, fold_of: np.ndarray) -> tuple[dict, dict]:
    """The calibrations of the three totals from cross-fitted joint predictions.

    Args:
        cut: ``[P, 86]`` cross-fitted, cut joint predictions of the training patients.
        gold: ``[P, 86]`` their true scores (a patient with an unknown joint is left out).
        fold_of: ``[P]`` patient folds, for the cross-fitted error the report gives.

    Returns:
        ``({column: [a, c]}, {column: {"sum_error", "calibrated_error", "n_patients", "a", "c"}})``: the
        weighted mean absolute log2 errors (SC1's formula) of the plain sums and of the calibration fitted
        without each fold's patients. Empty when fewer than 2 patients are complete.
    """
    known = gold.notna().all(axis=1).to_numpy()
    if known.sum() < 2:
        return {}, {}
    gold_k, cut_k, folds = gold[known], cut[known], fold_of[known]
    w = weights_from_total(gold_k[list(contract.JOINT_COLUMNS)].sum(axis=1).to_numpy())
    totals, report = {}, {}
    for column, parts in TOTAL_PARTS.items():
        s = cut_k[list(parts)].sum(axis=1).to_numpy()
        t = gold_k[list(parts)].sum(axis=1).to_numpy()
        a, c, _ = fit_total(s, t, w)
        totals[column] = [a, c]
        crossed = s.copy()  # a fold whose patients are all the training patients keeps the sums
        for k in np.unique(folds):
            rest = folds != k
            if rest.sum() >= 2:
                ak, ck, _ = fit_total(s[rest], t[rest], w[rest])
                crossed[folds == k] = calibrated_total(s[folds == k], ak, ck, column)
        report[column] = {"sum_error": sc1_error(s, t, w), "calibrated_error": sc1_error(crossed, t, w),
                          "n_patients": int(len(s)), "a": a, "c": c}
    return totals, report
