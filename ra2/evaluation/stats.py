"""Agreement statistics of a prediction table against a gold table: official metrics with bootstrap intervals,
per joint group and per joint agreement, and how well the ensemble spread predicts the error.

Frames are challenge tables (``Patient_ID`` + score columns); rows are matched by ``Patient_ID`` (the gold
order is kept). Scores are in score units unless a name says log2 (``log2(max(x, 0) + 1)``, the metric's
space, :func:`ra2.metrics.log_transform`).

- :func:`bootstrap_official`: every official metric (:data:`ra2.metrics.SCORE_KEYS`) for the model and the
  baseline, with a percentile bootstrap interval over patients (``scipy.stats.bootstrap``, 1,000 resamples,
  seeded), and the paired interval of model minus baseline (the same resampled patients for both).
- :func:`agreement`: MAE, RMSE in log2 space, Spearman's rho (``scipy.stats.spearmanr``), quadratically
  weighted Cohen's kappa and the confusion matrix of rounded scores, for one set of (gold, prediction) pairs.
- :func:`joint_agreement`: :func:`agreement` per joint group (:data:`JOINT_GROUPS`) and per joint column.
- :func:`spread_vs_error`: the joints with the highest ensemble spread against the rest.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from ra2 import Ra2Error, contract
from ra2 import metrics as M
from ra2.io import match_patient_rows

N_RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 0


def _group(kind: str, where: str) -> tuple[str, ...]:
    out = []
    for s in contract.SCORES:
        if s.kind != kind:
            continue
        if where == "foot" and s.limb in contract.FOOT_LIMBS:
            out.append(s.column)
        elif where == "wrist" and s.site.family == "wrist":
            out.append(s.column)
        elif where == "hand" and s.limb in contract.HAND_LIMBS and s.site.family != "wrist":
            out.append(s.column)
    return tuple(out)


JOINT_GROUPS: dict[str, tuple[str, ...]] = {
    f"{where}_{kind}": _group(kind, where)
    for kind in (contract.EROSION, contract.NARROWING) for where in ("hand", "wrist", "foot")}
"""Joint groups: hand (fingers: MCP, PIP, thumb IP), wrist and foot, each for erosion and narrowing; both sides
together. Every joint column is in exactly one group."""


def group_of(column: str) -> str:
    """The :data:`JOINT_GROUPS` name of a joint column."""
    for name, cols in JOINT_GROUPS.items():
        if column in cols:
            return name
    raise KeyError(column)


# --------------------------------------------------------------------------------------------------
# Official metrics with intervals
# --------------------------------------------------------------------------------------------------
def _metric_columns() -> dict[str, tuple[str, ...]]:
    hands, feet = contract.HAND_LIMBS, contract.FOOT_LIMBS
    return {"sc1": (contract.OVERALL_TOTAL,), "sc2": contract.NARROWING_COLUMNS, "sc3": contract.EROSION_COLUMNS,
            "overall_narrowing": (contract.OVERALL_NARROWING,), "overall_erosion": (contract.OVERALL_EROSION,),
            "sc2_hand": contract.limb_columns(hands, contract.NARROWING),
            "sc2_foot": contract.limb_columns(feet, contract.NARROWING),
            "sc3_hand": contract.limb_columns(hands, contract.EROSION),
            "sc3_foot": contract.limb_columns(feet, contract.EROSION)}


def _official_on_rows(pred: dict[str, np.ndarray], gold: dict[str, np.ndarray], weights: np.ndarray,
                      rows: np.ndarray) -> np.ndarray:
    """The 9 official metrics (order of :data:`ra2.metrics.SCORE_KEYS`) on the patients ``rows`` (indices,
    repeats allowed); NaN where a metric is NA."""
    w = weights[rows]
    out = []
    for key in M.SCORE_KEYS:
        p, g = pred[key][rows], gold[key][rows]
        if p.shape[1] == 1:
            out.append(M.weighted_abs_log_error(p[:, 0], g[:, 0], w))
        else:
            v = M.weighted_log_rmse(p, g, w)
            out.append(np.nan if v is None else v)
    return np.asarray(out, dtype=np.float64)


def _interval(value: float | None, low: float, high: float) -> dict:
    ok = value is not None and np.isfinite(value) and np.isfinite(low) and np.isfinite(high)
    return {"value": None if value is None or not np.isfinite(value) else float(value),
            "low": float(low) if ok else None, "high": float(high) if ok else None}


def bootstrap_official(pred_df: pd.DataFrame, gold_df: pd.DataFrame, baseline_df: pd.DataFrame | None = None,
                       n_resamples: int = N_RESAMPLES, seed: int = SEED, confidence: float = CONFIDENCE) -> dict:
    """Official metrics with percentile bootstrap intervals over patients.

    Each resample draws the gold patients with replacement (``scipy.stats.bootstrap``, ``rng`` seeded with
    ``seed``) and recomputes every metric, patient weights included, for the model and the baseline on the
    same patients.

    Returns ``{metric: {"model": {"value", "low", "high"}, "baseline": {...}, "difference": {...}}}`` for
    every key of :data:`ra2.metrics.SCORE_KEYS`; ``value`` is the metric on all patients (as
    :func:`ra2.metrics.score`), ``difference`` is model minus baseline (negative: the model is better);
    ``baseline``/``difference`` are absent without ``baseline_df``. None where a metric is NA.
    """
    cols = _metric_columns()
    weights = M.weights_from_total(gold_df[contract.OVERALL_TOTAL].to_numpy(dtype=np.float64))
    gold, model, base = {}, {}, {}
    for key in M.SCORE_KEYS:
        p, g, _ = M._aligned(pred_df, gold_df, cols[key])
        model[key], gold[key] = p, g
        if baseline_df is not None:
            base[key] = M._aligned(baseline_df, gold_df, cols[key])[0]
    n = len(weights)
    k = len(M.SCORE_KEYS)

    def statistic(rows):
        m = _official_on_rows(model, gold, weights, rows)
        if baseline_df is None:
            return m
        b = _official_on_rows(base, gold, weights, rows)
        return np.concatenate([m, b, m - b])

    point = statistic(np.arange(n))
    if n < 2:
        low = high = np.full_like(point, np.nan)
    else:
        with warnings.catch_warnings():  # a metric constant over the resamples (e.g. a paired difference) is fine
            warnings.simplefilter("ignore", sps.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sps.bootstrap((np.arange(n),), statistic, vectorized=False, n_resamples=n_resamples,
                                confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
        dist = res.bootstrap_distribution  # [metrics, n_resamples]
        alpha = (1 - confidence) / 2
        # percentiles of the finite resamples: a resample where a metric is NA (all its predictions 0) leaves
        # the others intact; a metric NA in every resample has no interval
        low, high = np.full(len(dist), np.nan), np.full(len(dist), np.nan)
        for i, row in enumerate(dist):
            row = row[np.isfinite(row)]
            if len(row):
                low[i], high[i] = np.percentile(row, [100 * alpha, 100 * (1 - alpha)])
    out = {}
    for i, key in enumerate(M.SCORE_KEYS):
        entry = {"model": _interval(point[i], low[i], high[i])}
        if baseline_df is not None:
            entry["baseline"] = _interval(point[k + i], low[k + i], high[k + i])
            entry["difference"] = _interval(point[2 * k + i], low[2 * k + i], high[2 * k + i])
        out[key] = entry
    return out


# --------------------------------------------------------------------------------------------------
# Per joint agreement
# --------------------------------------------------------------------------------------------------
def round_scores(x: np.ndarray, max_score: int) -> np.ndarray:
    """Scores ``[N]`` clipped to ``[0, max_score]`` and rounded half up to integers (int64)."""
    return np.floor(np.clip(np.asarray(x, dtype=np.float64), 0, max_score) + 0.5).astype(np.int64)


def confusion_matrix(gold: np.ndarray, pred: np.ndarray, max_score: int) -> np.ndarray:
    """``[K, K]`` int64 counts, ``K = max_score + 1``: row = rounded gold score, column = rounded prediction
    (:func:`round_scores`)."""
    k = max_score + 1
    g, p = round_scores(gold, max_score), round_scores(pred, max_score)
    out = np.zeros((k, k), dtype=np.int64)
    np.add.at(out, (g, p), 1)
    return out


def quadratic_kappa(confusion: np.ndarray) -> float | None:
    """Quadratically weighted Cohen's kappa of a ``[K, K]`` confusion matrix (rows: rater 1, columns: rater 2).

    ``kappa = 1 - sum(W * O) / sum(W * E)`` with ``W_ij = (i - j)^2 / (K - 1)^2``, ``O`` the observed
    proportions and ``E`` the outer product of their marginals. None when undefined (``sum(W * E) = 0``:
    both raters put every case in one and the same category).
    """
    o = np.asarray(confusion, dtype=np.float64)
    k = o.shape[0]
    if o.shape != (k, k) or k < 2 or o.sum() == 0:
        return None
    o = o / o.sum()
    i, j = np.indices((k, k))
    w = (i - j) ** 2 / (k - 1) ** 2
    e = np.outer(o.sum(axis=1), o.sum(axis=0))
    denominator = float(np.sum(w * e))
    if denominator == 0.0:
        return None
    return 1.0 - float(np.sum(w * o)) / denominator


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho of two ``[N]`` arrays (``scipy.stats.spearmanr``); None when either is constant or
    ``N < 2``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return None
    return float(sps.spearmanr(a, b).statistic)


def agreement(gold: np.ndarray, pred: np.ndarray, max_score: int) -> dict:
    """Agreement of ``[N]`` predictions with ``[N]`` gold scores of one score range ``0..max_score``.

    Returns ``{"n", "mae", "rmse_log2", "spearman", "kappa", "confusion"}``: MAE in score units (predictions
    clipped to 0 below, as the metric does), RMSE of ``log2(x + 1)``, Spearman's rho, the quadratically
    weighted kappa of the rounded scores and their confusion matrix (list of rows, gold x predicted).
    """
    gold = np.asarray(gold, dtype=np.float64)
    pred = np.maximum(np.asarray(pred, dtype=np.float64), 0.0)
    cm = confusion_matrix(gold, pred, max_score)
    return {"n": int(len(gold)), "mae": float(np.mean(np.abs(pred - gold))),
            "rmse_log2": float(np.sqrt(np.mean((M.log_transform(pred) - M.log_transform(gold)) ** 2))),
            "spearman": spearman(gold, pred), "kappa": quadratic_kappa(cm), "confusion": cm.tolist()}


def joint_agreement(pred_df: pd.DataFrame, gold_df: pd.DataFrame) -> dict:
    """:func:`agreement` per joint group and per joint column.

    Returns ``{"groups": {group: agreement}, "joints": {column: agreement + {"group"}}}``. A group pools
    every (patient, joint) cell of its columns; its confusion matrix spans the group's score range.
    """
    pred, gold, _ = M._aligned(pred_df, gold_df, contract.JOINT_COLUMNS)
    index = {c: i for i, c in enumerate(contract.JOINT_COLUMNS)}
    joints = {}
    for c in contract.JOINT_COLUMNS:
        joints[c] = agreement(gold[:, index[c]], pred[:, index[c]], contract.MAX_SCORE[c]) | {"group": group_of(c)}
    groups = {}
    for name, cols in JOINT_GROUPS.items():
        idx = [index[c] for c in cols]
        groups[name] = agreement(gold[:, idx].ravel(), pred[:, idx].ravel(), max(contract.MAX_SCORE[c] for c in cols))
    return {"groups": groups, "joints": joints}


# --------------------------------------------------------------------------------------------------
# Spread against error
# --------------------------------------------------------------------------------------------------
def _flagged_minus_rest(s: np.ndarray, e: np.ndarray, top_fraction: float) -> float:
    """MAE of the top ``top_fraction`` of cells by spread ``s`` minus the MAE of the rest (``e``: abs errors)."""
    order = np.argsort(-s, kind="stable")
    k = max(1, int(round(top_fraction * len(s))))
    return float(e[order[:k]].mean() - e[order[k:]].mean()) if len(s) > k else np.nan


def spread_vs_error(pred_df: pd.DataFrame, gold_df: pd.DataFrame, spread_df: pd.DataFrame,
                    top_fraction: float = 0.1, n_bins: int = 10, n_flagged: int = 20,
                    n_resamples: int = N_RESAMPLES, seed: int = SEED, confidence: float = CONFIDENCE) -> dict:
    """How well the ensemble spread of a joint predicts its error.

    Every (patient, joint) cell with a finite spread counts once. The cells are ranked by spread (ties by
    column order, then patient order); the top ``top_fraction`` of them (at least one) are *flagged*.

    Returns ``{"n", "top_fraction", "n_flagged_cells", "mae_flagged", "mae_rest", "rmse_log2_flagged",
    "rmse_log2_rest", "spearman_spread_abs_error", "by_dataset": {dataset: {"n", "mae_flagged", "mae_rest",
    "spearman_spread_abs_error"}}, "difference": {"value", "low", "high"}, "bins": [{"spread_low",
    "spread_high", "mean_spread", "mae", "n"}],
    "flagged": [{"patient", "column", "prediction", "gold", "spread", "abs_error"}]}``; ``by_dataset`` ranks
    within each regressor data set (the score ranges differ: foot erosion 0-10 spreads more than narrowing
    0-4), ``bins`` are ``n_bins`` quantile bins of spread, ``flagged`` the ``n_flagged`` highest-spread cells.
    Absolute errors are in score units. ``difference`` is ``mae_flagged - mae_rest`` with a percentile bootstrap
    interval over patients (each resample takes every cell of the drawn patients and ranks them afresh).
    """
    if not 0 < top_fraction < 1:
        raise ValueError(f"top_fraction must be in (0, 1), got {top_fraction}")
    cols = contract.JOINT_COLUMNS
    pred, gold, ids = M._aligned(pred_df, gold_df, cols)
    spread_rows = match_patient_rows([str(p) for p in spread_df[contract.PATIENT_COLUMN]], ids, "uncertainty",
                                       "duplicate patient", "missing patient(s)")
    spread = spread_df[list(cols)].to_numpy(dtype=np.float64)[spread_rows]
    ok = np.isfinite(spread)
    if not ok.any():
        raise Ra2Error("uncertainty: no finite spread value")
    abs_err = np.abs(np.maximum(pred, 0.0) - gold)
    log_err = M.log_transform(pred) - M.log_transform(gold)
    rows, colidx = np.nonzero(ok)  # row-major: patient, then column order
    s, e, le = spread[ok], abs_err[ok], log_err[ok]
    order = np.argsort(-s, kind="stable")
    n = len(s)
    n_top = max(1, int(round(top_fraction * n)))
    top, rest = order[:n_top], order[n_top:]
    edges = np.quantile(s, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            bins.append({"spread_low": float(edges[b]), "spread_high": float(edges[b + 1]),
                         "mean_spread": float(s[sel].mean()), "mae": float(e[sel].mean()), "n": int(sel.sum())})
    datasets = np.array([contract.SCORE_BY_COLUMN[cols[c]].dataset for c in colidx])
    by_dataset = {}
    for d in contract.DATASETS:
        sel = datasets == d
        if sel.sum() >= 2:
            o = np.argsort(-s[sel], kind="stable")
            k = max(1, int(round(top_fraction * sel.sum())))
            ed = e[sel][o]
            by_dataset[d] = {"n": int(sel.sum()), "mae_flagged": float(ed[:k].mean()),
                             "mae_rest": float(ed[k:].mean()) if len(ed) > k else None,
                             "spearman_spread_abs_error": spearman(s[sel], e[sel])}
    cells_of = [np.flatnonzero(rows == r) for r in range(len(ids))]

    def statistic(patients):
        sel = np.concatenate([cells_of[p] for p in patients])
        return _flagged_minus_rest(s[sel], e[sel], top_fraction)

    diff = _flagged_minus_rest(s, e, top_fraction)
    low = high = np.nan
    if len(ids) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sps.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sps.bootstrap((np.arange(len(ids)),), statistic, vectorized=False, n_resamples=n_resamples,
                                confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
        dist = res.bootstrap_distribution[np.isfinite(res.bootstrap_distribution)]
        if len(dist):
            alpha = (1 - confidence) / 2
            low, high = np.percentile(dist, [100 * alpha, 100 * (1 - alpha)])
    flagged = [{"patient": ids[rows[i]], "column": cols[colidx[i]], "prediction": float(pred[rows[i], colidx[i]]),
                "gold": float(gold[rows[i], colidx[i]]), "spread": float(s[i]), "abs_error": float(e[i])}
               for i in order[:n_flagged]]
    return {"n": int(n), "top_fraction": float(top_fraction), "n_flagged_cells": int(n_top),
            "mae_flagged": float(e[top].mean()), "mae_rest": float(e[rest].mean()) if len(rest) else None,
            "rmse_log2_flagged": float(np.sqrt(np.mean(le[top] ** 2))),
            "rmse_log2_rest": float(np.sqrt(np.mean(le[rest] ** 2))) if len(rest) else None,
            "spearman_spread_abs_error": spearman(s, e), "by_dataset": by_dataset,
            "difference": _interval(diff, low, high), "bins": bins, "flagged": flagged}


def worst_cells(pred_df: pd.DataFrame, gold_df: pd.DataFrame, columns: Sequence[str], n: int) -> list[dict]:
    """The ``n`` (patient, column) cells of ``columns`` with the largest absolute error, largest first:
    ``[{"patient", "column", "prediction", "gold", "abs_error"}]``."""
    cols = list(columns)
    pred, gold, ids = M._aligned(pred_df, gold_df, cols)
    err = np.abs(np.maximum(pred, 0.0) - gold)
    order = np.argsort(-err.ravel(), kind="stable")[:n]
    out = []
    for flat in order:
        r, c = divmod(int(flat), len(cols))
        out.append({"patient": ids[r], "column": cols[c], "prediction": float(pred[r, c]), "gold": float(gold[r, c]),
                    "abs_error": float(err[r, c])})
    return out
