"""Gradient-boosted regression trees, fitted by scikit-learn and kept as plain JSON.

The patient context stage (:mod:`ra2.scoring.context`) can correct a joint's prediction with boosted trees
instead of a linear model. scikit-learn fits them (:class:`sklearn.ensemble.GradientBoostingRegressor`,
squared error); what is kept is only each tree's public structure (``tree_.children_left``,
``children_right``, ``feature``, ``threshold``, ``value``), the initial constant and the learning rate, so a
models folder holds JSON, not a pickle tied to one scikit-learn version, and prediction needs numpy alone.

A model: ``{"init": float, "learning_rate": float, "n_features": int, "trees": [{"left": [K] int,
"right": [K] int, "feature": [K] int, "threshold": [K] float, "value": [K] float}, ...]}`` where node 0 is
the root and a leaf has ``left == right == -1``. Prediction of ``x`` (``[N, n_features]``):
``init + learning_rate * sum over trees of the leaf value x falls in``, going left where
``float32(x[feature]) <= threshold`` (scikit-learn's rule: it compares float32 features).
"""

from __future__ import annotations

import numpy as np

from ra2 import Ra2Error

DEFAULTS = {"n_estimators": 150, "max_depth": 3, "learning_rate": 0.05, "min_samples_leaf": 40}
"""Chosen on the challenge-size rehearsal's out-of-fold predictions (docs/regressors.md): 300 trees with
row subsampling scored the same."""

_TREE_KEYS = ("left", "right", "feature", "threshold", "value")


def fit_trees(x: np.ndarray, y: np.ndarray, seed: int = 0, **params) -> dict:
    """Fit boosted trees to ``x`` ``[N, F]`` -> ``y`` ``[N]``; returns the JSON-able model (module docstring).

    ``params`` replace :data:`DEFAULTS` (any :class:`~sklearn.ensemble.GradientBoostingRegressor` argument).
    """
    from sklearn.ensemble import GradientBoostingRegressor

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (len(x),) or len(x) < 2:
        raise ValueError(f"need x [N, F] and y [N] with N >= 2, got {x.shape} and {y.shape}")
    model = GradientBoostingRegressor(loss="squared_error", random_state=seed, **{**DEFAULTS, **params}).fit(x, y)
    trees = []
    for (estimator,) in model.estimators_:
        t = estimator.tree_
        trees.append({"left": t.children_left.tolist(), "right": t.children_right.tolist(),
                      "feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                      "value": t.value[:, 0, 0].tolist()})
    return {"init": float(np.ravel(model.init_.constant_)[0]), "learning_rate": float(model.learning_rate),
            "n_features": int(x.shape[1]), "trees": trees}


def check_trees(model: dict) -> str | None:
    """None for a well-formed model, else what is wrong with it (one line)."""
    if not isinstance(model, dict) or not {"init", "learning_rate", "n_features", "trees"} <= set(model):
        return "needs init, learning_rate, n_features and trees"
    for i, tree in enumerate(model["trees"]):
        if not isinstance(tree, dict) or set(tree) != set(_TREE_KEYS):
            return f"tree {i}: needs {', '.join(_TREE_KEYS)}"
        n = len(tree["left"])
        if n == 0 or any(len(tree[k]) != n for k in _TREE_KEYS):
            return f"tree {i}: arrays of different lengths"
        left, right = np.array(tree["left"]), np.array(tree["right"])
        if min(left.min(), right.min()) < -1 or max(left.max(), right.max()) >= n:
            return f"tree {i}: a child outside the tree"
        if np.any((left == -1) != (right == -1)):
            return f"tree {i}: a node with one child"
        node = np.arange(n)
        if np.any((left != -1) & (left <= node)) or np.any((right != -1) & (right <= node)):
            return f"tree {i}: a child numbered before its parent (a cycle)"
        feature = np.array(tree["feature"])
        inner = np.array(tree["left"]) != -1
        if inner.any() and (feature[inner].min() < 0 or feature[inner].max() >= model["n_features"]):
            return f"tree {i}: a feature outside 0..{model['n_features'] - 1}"
    return None


def predict_trees(model: dict, x: np.ndarray) -> np.ndarray:
    """``x`` ``[N, n_features]`` -> ``[N]`` float64 predictions of a model from :func:`fit_trees`."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != model["n_features"]:
        raise Ra2Error(f"boosted trees: need [N, {model['n_features']}] features, got {list(x.shape)}")
    rows = np.arange(len(x))
    out = np.full(len(x), model["init"], dtype=np.float64)
    for tree in model["trees"]:
        left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
        feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
        node = np.zeros(len(x), dtype=np.int64)
        for _ in range(len(left)):  # at most one step per node: ends on a leaf for every row
            inner = left[node] != -1
            if not inner.any():
                break
            go_left = x[rows, np.maximum(feature[node], 0)] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        out += model["learning_rate"] * np.asarray(tree["value"])[node]
    return out
