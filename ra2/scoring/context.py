"""Patient context: a second stage that corrects each joint's ensemble prediction with the patient's others.

A crop shows one joint, but damage is not independent between joints: rheumatoid arthritis is symmetric,
erosion and narrowing of a joint go together, and a patient's disease activity drives all of them. So
the mean predicted narrowing of a patient says something about an MCP erosion that the MCP crop alone
shows only faintly. The context model is a linear regression per data set in log2(x + 1) space (the
metric's space), fitted on the ensembles' out-of-fold predictions of the training patients:

    log2(y + 1) ~ w . [own, other side, other kind, patient hand erosion, patient foot erosion,
                       patient narrowing] + b

- ``own``: log2(p + 1) of the joint's raw ensemble prediction;
- ``other side``: the same joint of the other hand / foot; ``other kind``: the narrowing score of the
  same site for an erosion column and vice versa (0 where the site has only one kind);
- ``patient ...``: the mean log2(p + 1) of the patient's joints of each data set.

The weights are learnt from data, so where joints are not correlated they go to 0 and the stage
reproduces the ensemble. The zero cut-off of each data set is searched on cross-fitted corrected
predictions (fitted without the patients scored) and replaces the ensemble's own cut-off. Raw ensemble
predictions that are missing (a joint without a crop) are replaced by the training mean of that column's
out-of-fold prediction before the features are formed.

**Patient totals.** SC1 scores the submitted ``Overall_Tol`` as it is, not re-summed from the joints, and
weights patients by their true total (up to 64 for the most damaged). The sum of the joint predictions is
biased: every joint's prediction is shrunk towards the mean and cut to 0 below the cut-off, so a patient's
small damages vanish from the sum and large ones are summed short. So each of the three ``Overall_*`` columns
gets its own calibration in log2(x + 1) space, fitted on the training patients' cross-fitted joint predictions:

    log2(T + 1) = a * log2(S + 1) + c

with ``S`` the sum of the patient's (cut) joint predictions of that total's columns and ``(a, c)`` minimising
the official weighted mean absolute log2 error (SC1's formula, the patients' weights from their true
``Overall_Tol``): ``a`` on a grid, ``c`` the weighted median of the residuals (exact for L1). The calibrated
totals are what ``predictions.csv`` holds in its ``Overall_*`` columns (:meth:`ContextModel.overall`), so they are
not the sums of the joint columns. A ``context.json`` without totals (written before 2026-12-05) keeps the sums.

Saved as ``context.json`` beside the ensembles (:meth:`ContextModel.save`); the pipeline applies it when
present (:func:`load_context`). :func:`ra2.scoring.train.train_regressors_on_crops` fits it after training all three
ensembles; to refit it after retraining one of them:

    python bench/refit_ensembles.py ENSEMBLES_DIR --context-only
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract
from ra2.metrics import log_transform
from ra2.models_folder import CONTEXT_FILE, ENSEMBLE_OOF
from ra2.runinfo import write_json
from ra2.scoring.thresholds import apply_threshold, search_threshold

FEATURES = ("own", "other_side", "other_kind", "patient_hand_erosion", "patient_foot_erosion",
            "patient_narrowing")
_SCORE = contract.SCORE_BY_COLUMN
_DATASET_COLUMNS = {d: tuple(s.column for s in contract.scores_of_dataset(d)) for d in contract.DATASETS}


def other_kind(column: str) -> str | None:
    """The same site's column of the other kind (``LH_pip_E__2`` <-> ``LH_pip_J__2``), or None."""
    other = column.replace("_E__", "_J__") if "_E__" in column else column.replace("_J__", "_E__")
    return other if other in _SCORE else None


def features(raw: pd.DataFrame) -> dict[str, np.ndarray]:
    """Feature matrices of every joint column.

    Args:
        raw: ``[P, 86]`` raw ensemble predictions (score units, no NaN), columns ``contract.JOINT_COLUMNS``.

    Returns:
        column -> ``[P, len(FEATURES)]`` float64 (see the module docstring), rows in ``raw``'s order.
    """
    lp = pd.DataFrame(log_transform(raw[list(contract.JOINT_COLUMNS)].to_numpy()), columns=contract.JOINT_COLUMNS)
    means = {d: lp[list(cols)].to_numpy().mean(axis=1) for d, cols in _DATASET_COLUMNS.items()}
    zeros = np.zeros(len(lp))
    out = {}
    for c in contract.JOINT_COLUMNS:
        kind = other_kind(c)
        out[c] = np.stack([lp[c].to_numpy(), lp[contract.other_side(c)].to_numpy(),
                           lp[kind].to_numpy() if kind else zeros,
                           means["hand_erosion"], means["foot_erosion"], means["narrowing"]], axis=1)
    return out


def _design(feats: dict[str, np.ndarray], columns) -> np.ndarray:
    x = np.concatenate([feats[c] for c in columns])
    return np.concatenate([x, np.ones((len(x), 1))], axis=1)


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Least squares with an L2 penalty on every weight but the intercept (the last column)."""
    penalty = ridge * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(x.T @ x + penalty, x.T @ y)


@dataclass
class ContextModel:
    """Weights (``[len(FEATURES) + 1]`` per data set, intercept last), cut-offs and fill values."""

    weights: dict[str, list[float]]
    thresholds: dict[str, float]
    fill: dict[str, float]  # column -> mean raw out-of-fold prediction (replaces a missing prediction)
    ridge: float = 1.0
    report: dict = field(default_factory=dict)
    totals: dict[str, list[float]] = field(default_factory=dict)  # Overall_* column -> [a, c] (module docstring)

    def corrected(self, raw: pd.DataFrame) -> pd.DataFrame:
        """``raw`` ([P, >= 86] raw ensemble predictions, NaN where missing) with its joint columns replaced
        by the corrected predictions before the cut-off (score units, clipped to each column's range)."""
        missing = [c for c in contract.JOINT_COLUMNS if c not in raw.columns]
        if missing:
            raise Ra2Error(f"context model: predictions lack column {missing[0]!r}")
        filled = raw[list(contract.JOINT_COLUMNS)].astype(float).fillna(
            {c: self.fill.get(c, 0.0) for c in contract.JOINT_COLUMNS})
        feats = features(filled)
        out = raw.copy()
        for d, cols in _DATASET_COLUMNS.items():
            w = np.asarray(self.weights[d], dtype=np.float64)
            for c in cols:
                z = _design(feats, [c]) @ w
                out[c] = np.clip(2.0 ** np.maximum(z, 0.0) - 1.0, 0.0, _SCORE[c].max_score)
        return out

    def apply(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Corrected predictions with each data set's zero cut-off applied (see :meth:`corrected`)."""
        out = self.corrected(raw)
        for d, cols in _DATASET_COLUMNS.items():
            for c in cols:
                out[c] = apply_threshold(out[c].to_numpy(), self.thresholds[d])
        return out

    def overall(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (Patient_ID, the 86 final joint predictions, any ``Overall_*``) with the three ``Overall_*``
        columns set to the calibrated patient totals (module docstring; the plain sums where the model has no
        calibration), as :func:`ra2.contract.add_overall` lays them out: the 90 columns in order."""
        out = contract.add_overall(frame)
        for column, parts in TOTAL_PARTS.items():
            if column in self.totals:
                a, c = self.totals[column]
                out[column] = calibrated_total(out[list(parts)].sum(axis=1).to_numpy(), a, c, column)
        return out

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON to ``path`` (atomically: :func:`ra2.runinfo.write_json`)."""
        return write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "ContextModel":
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
            model = cls(**doc)
        except (json.JSONDecodeError, TypeError) as exc:
            raise Ra2Error(f"{path}: not a context model: {exc}") from exc
        bad = [d for d in contract.DATASETS if len(model.weights.get(d, ())) != len(FEATURES) + 1]
        if bad:
            raise Ra2Error(f"{path}: needs {len(FEATURES) + 1} weights for data set {bad[0]!r}")
        odd = [c for c, v in model.totals.items() if c not in TOTAL_PARTS or len(v) != 2]
        if odd:
            raise Ra2Error(f"{path}: totals: {odd[0]!r} is not an Overall_* column with [a, c]")
        return model


TOTAL_PARTS = {contract.OVERALL_TOTAL: contract.JOINT_COLUMNS, contract.OVERALL_EROSION: contract.EROSION_COLUMNS,
               contract.OVERALL_NARROWING: contract.NARROWING_COLUMNS}
"""Each ``Overall_*`` column and the joint columns whose predicted sum its calibration starts from."""

SLOPE_GRID = tuple(np.round(np.arange(0.5, 1.5001, 0.01), 4))


def calibrated_total(joint_sum, a: float, c: float, column: str) -> np.ndarray:
    """``[P]`` sums of joint predictions -> ``[P]`` calibrated totals ``2^(a log2(S+1) + c) - 1``, clipped to
    ``[0, the column's largest possible total]``."""
    top = float(sum(_SCORE[j].max_score for j in TOTAL_PARTS[column]))
    z = a * log_transform(joint_sum) + c
    return np.clip(2.0 ** z - 1.0, 0.0, top)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The smallest value at which the cumulative weight reaches half the total (minimises
    ``sum w |v - m|``). ``values``, ``weights``: ``[N]``, weights > 0."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


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


def fit_context(raw: pd.DataFrame, gold: pd.DataFrame, n_folds: int = 5, ridge: float = 1.0,
                seed: int = 0) -> ContextModel:
    """Fit the context model on out-of-fold predictions of the training patients.

    Args:
        raw: ``[P, 86]`` raw out-of-fold ensemble predictions (NaN where a joint had no crop).
        gold: ``[P, 86]`` true scores, same rows and columns (NaN: unknown, left out of the fit).
        n_folds: patient folds for the cross-fitted predictions the cut-offs are searched on (at most one
            per patient).

    Returns:
        the fitted :class:`ContextModel`; ``report`` holds the cross-fitted per-joint log2 RMSE of the raw
        and corrected predictions per data set.
    """
    cols = list(contract.JOINT_COLUMNS)
    raw = raw[cols].astype(float).reset_index(drop=True)
    gold = gold[cols].astype(float).reset_index(drop=True)
    if len(raw) != len(gold):
        raise ValueError(f"{len(raw)} rows of predictions but {len(gold)} of scores")
    if len(raw) < 2:
        raise Ra2Error(f"context model: {len(raw)} patients, need at least 2")
    n_folds = min(n_folds, len(raw))
    fill = {c: float(np.nanmean(raw[c])) if raw[c].notna().any() else 0.0 for c in cols}
    feats = features(raw.fillna(fill))
    fold_of = np.random.default_rng(seed).permutation(len(raw)) % n_folds
    weights, thresholds, report = {}, {}, {}
    cut = pd.DataFrame(np.nan, index=raw.index, columns=cols)  # cross-fitted, cut joint predictions
    for d, dcols in _DATASET_COLUMNS.items():
        x = _design(feats, dcols)
        truth = np.concatenate([gold[c].to_numpy() for c in dcols])
        known = np.isfinite(truth)
        y = log_transform(truth)
        folds = np.tile(fold_of, len(dcols))
        weights[d] = _ridge(x[known], y[known], ridge).tolist()
        cross = np.zeros(len(y))
        for k in range(n_folds):
            fit = known & (folds != k)
            cross[folds == k] = x[folds == k] @ _ridge(x[fit], y[fit], ridge)
        top = np.concatenate([np.full(len(raw), _SCORE[c].max_score) for c in dcols])
        corrected = np.clip(2.0 ** np.maximum(cross, 0.0) - 1.0, 0.0, top)
        thresholds[d], curve = search_threshold(corrected[known], truth[known])
        cut[list(dcols)] = apply_threshold(corrected, thresholds[d]).reshape(len(dcols), len(raw)).T
        own = np.concatenate([raw[c].fillna(fill[c]).to_numpy() for c in dcols])
        report[d] = {"raw_log2_rmse": float(np.sqrt(np.mean((log_transform(own[known]) - y[known]) ** 2))),
                     "corrected_log2_rmse": curve[thresholds[d]], "n_joints": int(known.sum())}
    totals, totals_report = fit_totals(cut, gold, fold_of)
    return ContextModel(weights=weights, thresholds=thresholds, fill=fill, ridge=ridge, totals=totals,
                        report={"cross_fitted": report, "n_patients": int(len(raw)), "n_folds": n_folds,
                                "features": list(FEATURES), "totals": totals_report})


def _sc1_error(pred: np.ndarray, gold: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * np.abs(log_transform(pred) - log_transform(gold))) / np.sum(w))


def fit_totals(cut: pd.DataFrame, gold: pd.DataFrame, fold_of: np.ndarray) -> tuple[dict, dict]:
    """The calibrations of the three totals (module docstring) from cross-fitted joint predictions.

    Args:
        cut: ``[P, 86]`` cross-fitted, cut joint predictions of the training patients.
        gold: ``[P, 86]`` their true scores (a patient with an unknown joint is left out).
        fold_of: ``[P]`` patient folds, for the cross-fitted error the report gives.

    Returns:
        ``({column: [a, c]}, {column: {"sum_error", "calibrated_error", "n_patients"}})``: the weighted mean
        absolute log2 errors (SC1's formula) of the plain sums and of the calibration fitted without each
        fold's patients. Empty when fewer than 2 patients are complete.
    """
    known = gold.notna().all(axis=1).to_numpy()
    if known.sum() < 2:
        return {}, {}
    from ra2.metrics import weights_from_total

    gold_k, cut_k, folds = gold[known], cut[known], fold_of[known]
    w = weights_from_total(gold_k[list(contract.JOINT_COLUMNS)].sum(axis=1).to_numpy())
    totals, report = {}, {}
    for column, parts in TOTAL_PARTS.items():
        s = cut_k[list(parts)].sum(axis=1).to_numpy()
        t = gold_k[list(parts)].sum(axis=1).to_numpy()
        a, c, _ = fit_total(s, t, w)
        totals[column] = [a, c]
        crossed = np.zeros(len(s))
        for k in np.unique(folds):
            out = folds != k
            if out.sum() == 0:
                crossed[folds == k] = s[folds == k]
                continue
            ak, ck, _ = fit_total(s[out], t[out], w[out])
            crossed[folds == k] = calibrated_total(s[folds == k], ak, ck, column)
        report[column] = {"sum_error": _sc1_error(s, t, w), "calibrated_error": _sc1_error(crossed, t, w),
                          "n_patients": int(len(s)), "a": a, "c": c}
    return totals, report


def oof_frames(ensembles_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The out-of-fold predictions and labels the ensembles under ``ensembles_dir`` saved
    (``<dataset>/oof_predictions.npz``), as two ``[P, 86]`` frames indexed by patient (NaN: no crop)."""
    ensembles_dir = Path(ensembles_dir)
    parts = []
    for d in contract.DATASETS:
        path = ensembles_dir / d / ENSEMBLE_OOF
        if not path.is_file():
            raise Ra2Error(f"{path}: no such file (the context model needs all three ensembles)")
        with np.load(path, allow_pickle=False) as z:
            parts.append(pd.DataFrame({"patient": z["patient_ids"].astype(str), "column": z["columns"].astype(str),
                                       "pred": z["predictions"], "label": z["labels"]}))
    long = pd.concat(parts, ignore_index=True)
    pred = long.pivot_table(index="patient", columns="column", values="pred", aggfunc="mean", dropna=False)
    label = long.pivot_table(index="patient", columns="column", values="label", aggfunc="mean", dropna=False)
    cols = list(contract.JOINT_COLUMNS)
    return pred.reindex(columns=cols), label.reindex(index=pred.index, columns=cols)


def train_context(ensembles_dir: str | Path, ridge: float = 1.0, seed: int = 0) -> ContextModel:
    """Fit the context model from the ensembles' out-of-fold predictions; writes ``context.json`` there."""
    pred, label = oof_frames(ensembles_dir)
    model = fit_context(pred, label, ridge=ridge, seed=seed)
    model.save(Path(ensembles_dir) / CONTEXT_FILE)
    return model


def load_context(ensembles_dir: str | Path) -> ContextModel | None:
    """The context model saved beside the ensembles, or None when there is none."""
    path = Path(ensembles_dir) / CONTEXT_FILE
    return ContextModel.load(path) if path.is_file() else None
