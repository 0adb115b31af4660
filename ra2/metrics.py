"""The official RA2 DREAM Challenge scoring (SC1, SC2, SC3 and the secondary metrics).

Definitions (challenge.md section 4, as the organisers re-implemented them in
``Sage-Bionetworks-Challenges/ra2-analysis``):

1. Negative predictions are set to 0 (no upper clip); gold and prediction both become ``log2(x + 1)``.
2. Each patient ``p`` gets a weight ``w_p`` from its **gold** ``Overall_Tol`` (:func:`weights_from_total`).
3. SC1 = ``sum_p w_p |log2(g_p+1) - log2(y_p+1)| / sum_p w_p`` on ``Overall_Tol`` (the submitted total
   as is, not re-summed from the joints). ``overall_erosion`` / ``overall_narrowing``: the same on
   ``Overall_erosion`` / ``Overall_narrowing``.
4. SC2 = ``sum_p w_p RMSE_p / sum_p w_p`` where ``RMSE_p = sqrt(mean_j (log2(g_pj+1) - log2(y_pj+1))^2)``
   over the patient's 42 narrowing columns; SC3 the same over the 44 erosion columns; ``sc2_hand`` etc.
   restrict the columns to the hands (``LH``/``RH``) or feet (``LF``/``RF``).

Decisions where the challenge text leaves room:

- **NA**: when every prediction of a metric's column set (all patients, after clipping negatives to 0)
  is 0, that joint metric is undefined and returned as ``None`` (SC2/SC3 and their hand/foot variants).
  SC1 and the two overall metrics are always defined.
- **Invalid submissions raise**: a gold patient missing from the predictions, a missing column, a
  duplicate patient or a non-finite value raises :class:`ra2.Ra2Error` naming it (the organisers
  report NA for an invalid submission; an exception names the reason). Predictions for patients not in
  the gold standard are ignored; rows are matched by ``Patient_ID``, so row order does not matter.
- **Weights of non-integer totals**: the bins are read by their upper bounds, ``total <= 0 -> 1``,
  ``<= 1 -> 2``, ``<= 3 -> 2.143547``, ``<= 7 -> 3.863745``, ``<= 20 -> 8``, ``<= 55 -> 16``,
  ``<= 148 -> 32``, else 64. Integer totals get exactly the organisers' table; a total such as 3.5
  joins the bin above (4-7). (The organisers' R code gives weight 0 to a non-integer total between two
  bins, silently dropping that patient; gold totals are integers, so this never mattered to them.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ra2 import Ra2Error
from ra2 import contract as C
from ra2.io import match_patient_rows

WEIGHT_UPPER_BOUNDS = (0.0, 1.0, 3.0, 7.0, 20.0, 55.0, 148.0)
"""Inclusive upper bounds of the weight bins of the gold ``Overall_Tol``."""
WEIGHT_VALUES = (1.0, 2.0, 2.143547, 3.863745, 8.0, 16.0, 32.0, 64.0)
"""Patient weight of each bin; the last one is for totals above 148."""

SCORE_KEYS = ("sc1", "sc2", "sc3", "overall_narrowing", "overall_erosion",
              "sc2_hand", "sc2_foot", "sc3_hand", "sc3_foot")
"""Keys of :func:`score`'s result, in this order."""


# --------------------------------------------------------------------------------------------------
# Array-level metrics
# --------------------------------------------------------------------------------------------------
def log_transform(x: np.ndarray) -> np.ndarray:
    """``log2(max(x, 0) + 1)`` elementwise (negative values clipped to 0 first), float64."""
    return np.log2(np.maximum(np.asarray(x, dtype=np.float64), 0.0) + 1.0)


def weights_from_total(gold_total: np.ndarray) -> np.ndarray:
    """Patient weights from the gold ``Overall_Tol``: ``[P] -> [P]`` float64 (see module docstring).

    0 -> 1, 1 -> 2, 2-3 -> 2.143547, 4-7 -> 3.863745, 8-20 -> 8, 21-55 -> 16, 56-148 -> 32, >148 -> 64;
    a non-integer total goes to the first bin whose upper bound it does not exceed.
    """
    total = np.asarray(gold_total, dtype=np.float64)
    if not np.all(np.isfinite(total)):
        raise Ra2Error("gold Overall_Tol holds a missing or infinite value")
    if np.any(total < 0):
        raise Ra2Error("gold Overall_Tol holds a negative value")
    bins = np.searchsorted(np.array(WEIGHT_UPPER_BOUNDS), total, side="left")
    return np.array(WEIGHT_VALUES, dtype=np.float64)[bins]


def weighted_abs_log_error(pred: np.ndarray, gold: np.ndarray, weights: np.ndarray) -> float:
    """``sum_p w_p |log2(g_p+1) - log2(max(y_p,0)+1)| / sum_p w_p``. pred, gold, weights: ``[P]``."""
    pred, gold, weights = (np.asarray(a, dtype=np.float64) for a in (pred, gold, weights))
    err = np.abs(log_transform(gold) - log_transform(pred))
    return float(np.sum(weights * err) / np.sum(weights))


def weighted_log_rmse(pred: np.ndarray, gold: np.ndarray, weights: np.ndarray) -> float | None:
    """Weighted mean over patients of the per-patient RMSE in log2(x+1) space.

    pred, gold: ``[P, J]`` (patients x joint columns); weights: ``[P]``. Negative predictions are
    clipped to 0. Returns None (NA) when every clipped prediction is 0.
    """
    pred = np.maximum(np.asarray(pred, dtype=np.float64), 0.0)
    gold = np.asarray(gold, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if pred.shape != gold.shape or pred.ndim != 2 or weights.shape != (pred.shape[0],):
        raise ValueError(f"shapes disagree: pred {pred.shape}, gold {gold.shape}, weights {weights.shape}")
    if not np.any(pred != 0.0):
        return None
    rmse = np.sqrt(np.mean((log_transform(gold) - log_transform(pred)) ** 2, axis=1))
    return float(np.sum(weights * rmse) / np.sum(weights))


# --------------------------------------------------------------------------------------------------
# DataFrame-level metrics
# --------------------------------------------------------------------------------------------------
def _aligned(pred_df: pd.DataFrame, gold_df: pd.DataFrame,
             columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Values of ``columns`` for the gold patients, in gold order: (pred [P, K], gold [P, K], ids).

    Rows are matched by ``Patient_ID`` compared as text. Raises Ra2Error for what makes a submission
    invalid: a missing column or gold patient, a duplicate patient, a non-numeric or non-finite value.
    """
    for name, df in (("predictions", pred_df), ("gold standard", gold_df)):
        if C.PATIENT_COLUMN not in df.columns:
            raise Ra2Error(f"{name}: missing column {C.PATIENT_COLUMN!r}")
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise Ra2Error(f"{name}: missing column(s) " + ", ".join(repr(c) for c in missing))
    pred_ids = [str(x) for x in pred_df[C.PATIENT_COLUMN]]
    gold_ids = [str(x) for x in gold_df[C.PATIENT_COLUMN]]
    if not gold_ids:
        raise Ra2Error("gold standard: no patients")
    if len(set(gold_ids)) != len(gold_ids):
        dup = next(p for p in gold_ids if gold_ids.count(p) > 1)
        raise Ra2Error(f"gold standard: duplicate patient {dup!r}")
    order = match_patient_rows(pred_ids, gold_ids, "predictions", "duplicate patient",
                               "missing gold patient(s)")
    cols = list(columns)
    try:
        pred = pred_df[cols].to_numpy(dtype=np.float64)[order]
        gold = gold_df[cols].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Ra2Error(f"non-numeric score value ({exc})") from None
    for name, arr in (("predictions", pred), ("gold standard", gold)):
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            r, c = bad[0]
            raise Ra2Error(f"{name}: patient {gold_ids[r]!r}, column {cols[c]!r}: "
                           f"missing or infinite value")
    return pred, gold, gold_ids


def _weights(gold_df: pd.DataFrame) -> np.ndarray:
    if C.OVERALL_TOTAL not in gold_df.columns:
        raise Ra2Error(f"gold standard: missing column {C.OVERALL_TOTAL!r}")
    return weights_from_total(gold_df[C.OVERALL_TOTAL].to_numpy(dtype=np.float64))


def _overall_error(pred_df: pd.DataFrame, gold_df: pd.DataFrame, column: str) -> float:
    pred, gold, _ = _aligned(pred_df, gold_df, (column,))
    return weighted_abs_log_error(pred[:, 0], gold[:, 0], _weights(gold_df))


def _joint_rmse(pred_df: pd.DataFrame, gold_df: pd.DataFrame, columns: Sequence[str]) -> float | None:
    pred, gold, _ = _aligned(pred_df, gold_df, columns)
    return weighted_log_rmse(pred, gold, _weights(gold_df))


def sc1(pred: pd.DataFrame, gold: pd.DataFrame) -> float:
    """SC1: weighted mean absolute log2(x+1) error of ``Overall_Tol``. Frames: ``Patient_ID`` + scores."""
    return _overall_error(pred, gold, C.OVERALL_TOTAL)


def sc2(pred: pd.DataFrame, gold: pd.DataFrame) -> float | None:
    """SC2: weighted mean over patients of the log2(x+1) RMSE over the 42 narrowing columns (None: NA)."""
    return _joint_rmse(pred, gold, C.NARROWING_COLUMNS)


def sc3(pred: pd.DataFrame, gold: pd.DataFrame) -> float | None:
    """SC3: weighted mean over patients of the log2(x+1) RMSE over the 44 erosion columns (None: NA)."""
    return _joint_rmse(pred, gold, C.EROSION_COLUMNS)


def score(pred_df: pd.DataFrame, gold_df: pd.DataFrame) -> dict[str, float | None]:
    """Every official metric of a prediction frame against a gold frame (rows matched by Patient_ID).

    Returns ``{sc1, sc2, sc3, overall_narrowing, overall_erosion, sc2_hand, sc2_foot, sc3_hand,
    sc3_foot}`` (see :data:`SCORE_KEYS`): floats, or None where the metric is NA. Lower is better.
    """
    hands, feet = C.HAND_LIMBS, C.FOOT_LIMBS
    return {
        "sc1": sc1(pred_df, gold_df),
        "sc2": sc2(pred_df, gold_df),
        "sc3": sc3(pred_df, gold_df),
        "overall_narrowing": _overall_error(pred_df, gold_df, C.OVERALL_NARROWING),
        "overall_erosion": _overall_error(pred_df, gold_df, C.OVERALL_EROSION),
        "sc2_hand": _joint_rmse(pred_df, gold_df, C.limb_columns(hands, C.NARROWING)),
        "sc2_foot": _joint_rmse(pred_df, gold_df, C.limb_columns(feet, C.NARROWING)),
        "sc3_hand": _joint_rmse(pred_df, gold_df, C.limb_columns(hands, C.EROSION)),
        "sc3_foot": _joint_rmse(pred_df, gold_df, C.limb_columns(feet, C.EROSION)),
    }


def score_files(pred_path: str | os.PathLike, gold_path: str | os.PathLike) -> dict[str, float | None]:
    """:func:`score` of a ``predictions.csv`` against a gold CSV (the ``ra2 score`` command).

    Raises :class:`ra2.Ra2Error` naming the file, patient and column for an unreadable file, a missing
    column or patient, or a non-numeric cell.
    """
    from ra2.io import read_gold_csv, read_predictions_csv

    gold = read_gold_csv(gold_path)
    pred = read_predictions_csv(pred_path)
    try:
        return score(pred, gold)
    except Ra2Error as exc:
        raise Ra2Error(f"scoring {pred_path} against {gold_path}: {exc}") from None


def per_joint_log2_rmse(pred_df: pd.DataFrame, gold_df: pd.DataFrame, columns: Sequence[str]) -> float:
    """Unweighted RMSE in log2(x+1) space over every (patient, column) cell of ``columns``.

    ``sqrt(mean_{p, j} (log2(max(y_pj, 0) + 1) - log2(g_pj + 1))^2)`` over the gold patients and the
    given columns, every cell counted once (no patient weights, no per-patient grouping, never NA): a
    per-joint model-selection metric for the regressors, not an official score. Rows are matched by
    ``Patient_ID``.
    """
    if len(columns) == 0:
        raise ValueError("per_joint_log2_rmse needs at least one column")
    pred, gold, _ = _aligned(pred_df, gold_df, columns)
    return float(np.sqrt(np.mean((log_transform(gold) - log_transform(pred)) ** 2)))
