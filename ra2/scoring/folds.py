"""Patient-grouped k-fold splits: no patient ever sits in both the training and validation part of a fold.

Patients are ordered by their total damage (random tie-break from the seed) and dealt to the folds in a
snake order (0, 1, ..., k-1, k-1, ..., 0, ...), so every fold gets a similar share of damaged patients and
of patients; then each patient's samples follow it.
"""

from __future__ import annotations

import numpy as np


def patient_folds(patient_ids, n_folds: int = 5, seed: int = 0, labels=None) -> np.ndarray:
    """Fold number (0..n_folds-1) of every sample.

    Args:
        patient_ids: ``[N]`` patient id of each sample.
        n_folds: number of folds; at most the number of distinct patients.
        seed: tie-break / shuffle seed.
        labels: optional ``[N]`` scores; patients are balanced over folds by their summed score.

    Returns:
        ``[N]`` int fold of each sample; all samples of one patient share one fold.
    """
    pids = np.asarray(patient_ids).astype(str)
    patients = np.unique(pids)
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    if len(patients) < n_folds:
        raise ValueError(f"{len(patients)} patients cannot fill {n_folds} folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(patients))
    if labels is not None:
        lab = np.asarray(labels, dtype=np.float64)
        index = {p: i for i, p in enumerate(patients)}
        totals = np.zeros(len(patients))
        np.add.at(totals, np.array([index[p] for p in pids]), lab)
        order = order[np.argsort(-totals[order], kind="stable")]
    snake = np.concatenate([np.arange(n_folds), np.arange(n_folds)[::-1]])
    patient_fold = {patients[j]: int(snake[r % (2 * n_folds)]) for r, j in enumerate(order)}
    return np.array([patient_fold[p] for p in pids], dtype=np.int64)


def fold_indices(folds: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, validation indices)`` of fold ``k`` from :func:`patient_folds`' output."""
    folds = np.asarray(folds)
    return np.flatnonzero(folds != k), np.flatnonzero(folds == k)
