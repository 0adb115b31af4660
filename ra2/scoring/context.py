"""Patient context: a second stage that corrects each joint's ensemble prediction with the patient's others.

A crop shows one joint, but damage is not independent between joints: rheumatoid arthritis is symmetric,
erosion and narrowing of a joint go together, and a patient's disease activity drives all of them. So
the mean predicted narrowing of a patient says something about an MCP erosion that the MCP crop alone
shows only faintly. The context stage is a model per data set in log2(x + 1) space (the metric's space),
fitted on the ensembles' out-of-fold predictions of the training patients, from the features
(:data:`FEATURES`, each a log2(p + 1) of raw ensemble predictions):

- ``own``: the joint's raw ensemble prediction;
- ``other_side``: the same joint of the other hand / foot; ``other_kind``: the narrowing score of the
  same site for an erosion column and vice versa (0 where the site has only one kind);
- ``patient_hand_erosion``, ``patient_foot_erosion``, ``patient_narrowing``: the mean over the patient's
  joints of each data set;
- ``limb_mean``: the mean of the other joints of the same kind (erosion or narrowing) on the same film;
  ``group_mean``: the same over the joint's group (MCP, PIP, wrist, MTP) on the same film (0 where alone);
- ``own_squared``: ``own`` squared; ``own_x_patient``: ``own`` times the mean of the three patient means.

Two learners per data set, the one with the lower cross-fitted per-joint log2 RMSE kept:

- **linear**: ridge regression on the features (where joints are not correlated the weights go to 0 and
  the stage reproduces the ensemble). A joint's features are clipped to the range each feature had in the
  fit before the weights apply: ``own_squared`` and ``own_x_patient`` of a patient more damaged than any
  training patient would otherwise extrapolate (the demo of seed 0 had MTP 2-5 of its heaviest patient's left
  foot, raw predictions 3.0-4.0, all corrected to the maximum 10);
- **trees**: gradient-boosted regression trees (:mod:`ra2.scoring.trees`) on the features plus the joint's
  group as a code (:data:`SITE_GROUPS`), which lets the correction differ between, say, wrist and finger
  narrowing and bend where the linear one cannot.

The zero cut-off of each data set is searched on cross-fitted corrected predictions (fitted without the
patients scored) and replaces the ensemble's own cut-off. Raw ensemble predictions that are missing (a joint
without a crop) are replaced by the training mean of that column's out-of-fold prediction before the features
are formed. The same cross-fitted, cut predictions calibrate the patient totals (:mod:`ra2.scoring.totals`):
the ``Overall_*`` columns of ``predictions.csv`` (:meth:`ContextModel.overall`).

Saved as ``context.json`` beside the ensembles (:meth:`ContextModel.save`); the pipeline applies it when
present (:func:`load_context`). A ``context.json`` that names no features (written before the trees, with
six features, linear, with or without totals) still loads and predicts as it did.
:func:`ra2.scoring.train.train_regressors_on_crops` fits it after training all three ensembles; to refit it
after retraining one of them:

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
from ra2.scoring.totals import TOTAL_PARTS, calibrated_frame, fit_totals
from ra2.scoring.trees import check_trees, fit_trees, predict_trees

FEATURES = ("own", "other_side", "other_kind", "patient_hand_erosion", "patient_foot_erosion",
            "patient_narrowing", "limb_mean", "group_mean", "own_squared", "own_x_patient")
FIRST_FEATURES = FEATURES[:6]
"""The features of a ``context.json`` that names none (written before 2026-12-05)."""

_SCORE = contract.SCORE_BY_COLUMN
_DATASET_COLUMNS = {d: tuple(s.column for s in contract.scores_of_dataset(d)) for d in contract.DATASETS}


def site_group(column: str) -> str:
    """The joint group of a score column and its body part: ``LH_mcp_E__2`` -> ``mcp_hand``,
    ``RF_mtp_J__5`` -> ``mtp_foot``, ``LH_wrist_J__cmc3`` -> ``wrist_hand``."""
    return f"{column.split('_')[1]}_{'hand' if column[1] == 'H' else 'foot'}"


SITE_GROUPS = tuple(sorted({site_group(c) for c in contract.JOINT_COLUMNS}))
"""The trees' last feature is the index of the column's group here."""


def other_kind(column: str) -> str | None:
    """The same site's column of the other kind (``LH_pip_E__2`` <-> ``LH_pip_J__2``), or None."""
    other = column.replace("_E__", "_J__") if "_E__" in column else column.replace("_J__", "_E__")
    return other if other in _SCORE else None


def _kind(column: str) -> str:
    return "_E__" if "_E__" in column else "_J__"


def _neighbours() -> dict[str, tuple[list[str], list[str]]]:
    """column -> (the other columns of its kind on its film, those of them in its group)."""
    out = {}
    for c in contract.JOINT_COLUMNS:
        limb = [o for o in contract.JOINT_COLUMNS if o[:2] == c[:2] and _kind(o) == _kind(c) and o != c]
        out[c] = (limb, [o for o in limb if site_group(o) == site_group(c)])
    return out


_NEIGHBOURS = _neighbours()


def features(raw: pd.DataFrame) -> dict[str, np.ndarray]:
    """Feature matrices of every joint column.

    Args:
        raw: ``[P, 86]`` raw ensemble predictions (score units, no NaN), columns ``contract.JOINT_COLUMNS``.

    Returns:
        column -> ``[P, len(FEATURES)]`` float64, in :data:`FEATURES`' order (the module docstring), rows in
        ``raw``'s order.
    """
    cols = list(contract.JOINT_COLUMNS)
    lp = pd.DataFrame(log_transform(raw[cols].to_numpy()), columns=cols)
    means = {d: lp[list(dcols)].to_numpy().mean(axis=1) for d, dcols in _DATASET_COLUMNS.items()}
    patient = (means["hand_erosion"] + means["foot_erosion"] + means["narrowing"]) / 3.0
    zeros = np.zeros(len(lp))
    out = {}
    for c in cols:
        kind = other_kind(c)
        limb, group = _NEIGHBOURS[c]
        own = lp[c].to_numpy()
        out[c] = np.stack([own, lp[contract.other_side(c)].to_numpy(), lp[kind].to_numpy() if kind else zeros,
                           means["hand_erosion"], means["foot_erosion"], means["narrowing"],
                           lp[limb].to_numpy().mean(axis=1), lp[group].to_numpy().mean(axis=1) if group else zeros,
                           own ** 2, own * patient], axis=1)
    return out


def _design(feats: dict[str, np.ndarray], columns, n_features: int = len(FEATURES)) -> np.ndarray:
    """The linear design: the first ``n_features`` features of ``columns`` stacked, plus a column of ones."""
    x = np.concatenate([feats[c][:, :n_features] for c in columns])
    return np.concatenate([x, np.ones((len(x), 1))], axis=1)


def _tree_design(feats: dict[str, np.ndarray], columns) -> np.ndarray:
    """The trees' design: every feature of ``columns`` stacked, plus the column's group index."""
    return np.concatenate([np.concatenate([feats[c], np.full((len(feats[c]), 1), SITE_GROUPS.index(site_group(c)))],
                                          axis=1) for c in columns])


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Least squares with an L2 penalty on every weight but the intercept (the last column)."""
    penalty = ridge * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(x.T @ x + penalty, x.T @ y)


def _fit_linear(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge weights (:func:`_ridge`) of the design ``x`` ``[N, F + 1]`` (ones last) and the range of its ``F``
    features: ``(weights [F + 1], lowest [F], highest [F])``."""
    return _ridge(x, y, ridge), x[:, :-1].min(axis=0), x[:, :-1].max(axis=0)


def _predict_linear(weights, x: np.ndarray, lowest=None, highest=None) -> np.ndarray:
    """``x`` ``[N, F + 1]`` (ones last) times ``weights`` ``[F + 1]``, each feature first clipped to
    ``[lowest, highest]`` (``[F]`` each; no clipping where None)."""
    if lowest is not None:
        x = np.concatenate([np.clip(x[:, :-1], lowest, highest), x[:, -1:]], axis=1)
    return x @ np.asarray(weights, dtype=np.float64)


def _to_scores(z: np.ndarray, top: np.ndarray | float) -> np.ndarray:
    """log2(x + 1) predictions -> scores, clipped to ``[0, top]``."""
    return np.clip(2.0 ** np.maximum(z, 0.0) - 1.0, 0.0, top)


@dataclass
class ContextModel:
    """Per data set: linear weights (``[len(features) + 1]``, intercept last) or boosted trees, the cut-off;
    the fill values; the totals' calibrations (:mod:`ra2.scoring.totals`)."""

    weights: dict[str, list[float]]
    thresholds: dict[str, float]
    fill: dict[str, float]  # column -> mean raw out-of-fold prediction (replaces a missing prediction)
    ridge: float = 1.0
    report: dict = field(default_factory=dict)
    totals: dict[str, list[float]] = field(default_factory=dict)  # Overall_* column -> [a, c]
    features: list[str] = field(default_factory=lambda: list(FEATURES))  # a prefix of FEATURES
    trees: dict[str, dict] = field(default_factory=dict)  # data set -> boosted trees (ra2.scoring.trees)
    # data set -> [lowest, highest] of each linear feature in the fit (the features are clipped to it); a
    # context.json written before 2026-12-06 has none and its features are not clipped
    linear_range: dict[str, list[list[float]]] = field(default_factory=dict)

    def learner(self, dataset: str) -> str:
        """``"trees"`` or ``"linear"``: what corrects ``dataset``'s joints."""
        return "trees" if dataset in self.trees else "linear"

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
            if d in self.trees:
                z = predict_trees(self.trees[d], _tree_design(feats, cols)).reshape(len(cols), len(raw))
            else:
                lowest, highest = self.linear_range.get(d, (None, None))
                z = _predict_linear(self.weights[d], _design(feats, cols, len(self.features)), lowest,
                                    highest).reshape(len(cols), len(raw))
            for i, c in enumerate(cols):
                out[c] = _to_scores(z[i], _SCORE[c].max_score)
        return out

    def apply(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Corrected predictions with each data set's zero cut-off applied (see :meth:`corrected`)."""
        out = self.corrected(raw)
        for d, cols in _DATASET_COLUMNS.items():
            for c in cols:
                out[c] = apply_threshold(out[c].to_numpy(), self.thresholds[d])
        return out

    def overall(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (Patient_ID, the 86 final joint predictions, any ``Overall_*``) as the 90 challenge columns
        in order, the three ``Overall_*`` the calibrated patient totals (:mod:`ra2.scoring.totals`; the plain
        sums where the model has no calibration)."""
        return calibrated_frame(frame, self.totals)

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON to ``path`` (atomically: :func:`ra2.runinfo.write_json`)."""
        return write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "ContextModel":
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
            doc.setdefault("features", list(FIRST_FEATURES))
            model = cls(**doc)
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise Ra2Error(f"{path}: not a context model: {exc}") from exc
        for name in ("weights", "thresholds", "fill", "totals", "trees", "linear_range"):
            if not isinstance(getattr(model, name), dict):
                raise Ra2Error(f"{path}: {name} must be a JSON object")
        lacking = [d for d in contract.DATASETS if not isinstance(model.thresholds.get(d), (int, float))]
        if lacking:
            raise Ra2Error(f"{path}: no cut-off for data set {lacking[0]!r}")
        if not isinstance(model.features, list):
            raise Ra2Error(f"{path}: features must be a list")
        n = len(model.features)
        if list(model.features) != list(FEATURES[:n]) or n < len(FIRST_FEATURES):
            raise Ra2Error(f"{path}: features {model.features} are not a prefix of {list(FEATURES)}")
        bad = [d for d in contract.DATASETS if d not in model.trees and len(model.weights.get(d, ())) != n + 1]
        if bad:
            raise Ra2Error(f"{path}: needs {n + 1} weights for data set {bad[0]!r}")
        for d, bounds in model.linear_range.items():
            if (d not in contract.DATASETS or not isinstance(bounds, list) or len(bounds) != 2
                    or any(not isinstance(b, list) or len(b) != n for b in bounds)):
                raise Ra2Error(f"{path}: linear_range of {d!r} must be [lowest, highest], {n} values each")
        for d, trees in model.trees.items():
            problem = "not a data set" if d not in contract.DATASETS else check_trees(trees)
            if problem is None and trees["n_features"] != len(FEATURES) + 1:
                problem = f"{trees['n_features']} features, the trees take {len(FEATURES) + 1}"
            if problem:
                raise Ra2Error(f"{path}: trees of {d!r}: {problem}")
        odd = [c for c, v in model.totals.items() if c not in TOTAL_PARTS or not isinstance(v, list) or len(v) != 2]
        if odd:
            raise Ra2Error(f"{path}: totals: {odd[0]!r} is not an Overall_* column with [a, c]")
        return model


def fit_context(raw: pd.DataFrame, gold: pd.DataFrame, n_folds: int = 5, ridge: float = 1.0,
                seed: int = 0, learners: tuple[str, ...] = ("linear", "trees")) -> ContextModel:
    """Fit the context model on out-of-fold predictions of the training patients.

    Args:
        raw: ``[P, 86]`` raw out-of-fold ensemble predictions (NaN where a joint had no crop).
        gold: ``[P, 86]`` true scores, same rows and columns (NaN: unknown, left out of the fit).
        n_folds: patient folds for the cross-fitted predictions the cut-offs and the choice of learner are
            made on (at most one per patient).
        learners: the learners to try per data set (``"linear"``, ``"trees"``); the one with the lower
            cross-fitted per-joint log2 RMSE (at its own cut-off) is kept, ties to the first.

    Returns:
        the fitted :class:`ContextModel`; ``report["cross_fitted"]`` holds per data set the cross-fitted
        per-joint log2 RMSE of the raw predictions and of each learner, and the learner kept;
        ``report["totals"]`` the totals' errors (:func:`ra2.scoring.totals.fit_totals`).
    """
    unknown = sorted(set(learners) - {"linear", "trees"})
    if unknown or not learners:
        raise ValueError(f"learners must be among 'linear', 'trees', got {learners!r}")
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
    weights, trees, thresholds, report, linear_range = {}, {}, {}, {}, {}
    cut = pd.DataFrame(np.nan, index=raw.index, columns=cols)  # cross-fitted, cut joint predictions
    for d, dcols in _DATASET_COLUMNS.items():
        truth = np.concatenate([gold[c].to_numpy() for c in dcols])
        known = np.isfinite(truth)
        y = log_transform(truth)
        folds = np.tile(fold_of, len(dcols))
        top = np.concatenate([np.full(len(raw), _SCORE[c].max_score) for c in dcols])
        fits = {"linear": (_design(feats, dcols), lambda x, yy: _fit_linear(x, yy, ridge),
                           lambda m, x: _predict_linear(m[0], x, m[1], m[2])),
                "trees": (_tree_design(feats, dcols), lambda x, yy: fit_trees(x, yy, seed=seed), predict_trees)}
        tried = {}
        for name in learners:
            x, fit, predict = fits[name]
            cross = np.zeros(len(y))
            for k in range(n_folds):
                train = known & (folds != k)
                if train.sum() >= 2:
                    cross[folds == k] = predict(fit(x[train], y[train]), x[folds == k])
                else:  # nothing known outside the fold: the raw prediction (the first feature, ``own``)
                    cross[folds == k] = x[folds == k][:, 0]
            corrected = _to_scores(cross, top)
            threshold, curve = search_threshold(corrected[known], truth[known])
            tried[name] = (curve[threshold], threshold, corrected)
        best = min(learners, key=lambda name: round(tried[name][0], 12))
        _, thresholds[d], corrected = tried[best]
        final = {name: fit(x[known], y[known]) for name, (x, fit, _) in fits.items()
                 if name == "linear" or name == best}  # the ridge weights are kept whichever learner wins
        weights[d] = final["linear"][0].tolist()
        linear_range[d] = [final["linear"][1].tolist(), final["linear"][2].tolist()]
        if best == "trees":
            trees[d] = final["trees"]
        cut[list(dcols)] = apply_threshold(corrected, thresholds[d]).reshape(len(dcols), len(raw)).T
        own = np.concatenate([raw[c].fillna(fill[c]).to_numpy() for c in dcols])
        report[d] = {"raw_log2_rmse": float(np.sqrt(np.mean((log_transform(own[known]) - y[known]) ** 2))),
                     "corrected_log2_rmse": tried[best][0], "learner": best,
                     "learners": {name: {"log2_rmse": v[0], "threshold": v[1]} for name, v in tried.items()},
                     "n_joints": int(known.sum())}
    totals, totals_report = fit_totals(cut, gold, fold_of)
    return ContextModel(weights=weights, thresholds=thresholds, fill=fill, ridge=ridge, totals=totals,
                        features=list(FEATURES), trees=trees, linear_range=linear_range,
                        report={"cross_fitted": report, "n_patients": int(len(raw)), "n_folds": n_folds,
                                "features": list(FEATURES), "totals": totals_report})


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
