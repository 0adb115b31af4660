"""Boosted trees kept as JSON: the same predictions as scikit-learn's model, and malformed models refused."""

import json

import numpy as np
import pytest

from ra2 import Ra2Error
from ra2.scoring.trees import DEFAULTS, check_trees, fit_trees, predict_trees


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    x[:, 3] = rng.integers(0, 4, size=n)  # a group code, as the context stage's last feature
    y = np.sin(2 * x[:, 0]) + x[:, 1] * (x[:, 3] - 1.5) + rng.normal(0, 0.1, size=n)
    return x, y


def test_json_trees_predict_what_scikit_learn_predicts():
    from sklearn.ensemble import GradientBoostingRegressor

    x, y = _data(1500, 0)
    model = json.loads(json.dumps(fit_trees(x, y, seed=3)))  # through JSON, as context.json keeps it
    reference = GradientBoostingRegressor(random_state=3, **DEFAULTS).fit(x, y)
    x_new, y_new = _data(400, 1)
    np.testing.assert_allclose(predict_trees(model, x_new), reference.predict(x_new), rtol=0, atol=1e-9)
    assert check_trees(model) is None and len(model["trees"]) == DEFAULTS["n_estimators"]
    # and they learnt the interaction a linear fit cannot
    fit = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]
    linear = np.sqrt(np.mean((np.c_[x_new, np.ones(len(x_new))] @ fit - y_new) ** 2))
    assert np.sqrt(np.mean((predict_trees(model, x_new) - y_new) ** 2)) < 0.5 * linear


def test_malformed_models_and_inputs_are_refused():
    model = fit_trees(*_data(300, 2), n_estimators=3)
    with pytest.raises(Ra2Error, match=r"need \[N, 4\] features, got \[5, 3\]"):
        predict_trees(model, np.zeros((5, 3)))
    assert check_trees({"trees": []}) == "needs init, learning_rate, n_features and trees"
    bad = json.loads(json.dumps(model))
    bad["trees"][1]["value"] = bad["trees"][1]["value"][:-1]
    assert check_trees(bad) == "tree 1: arrays of different lengths"
    bad = json.loads(json.dumps(model))
    bad["trees"][0]["feature"][0] = 9
    assert check_trees(bad) == "tree 0: a feature outside 0..3"
    bad = json.loads(json.dumps(model))
    bad["trees"][0]["right"][0] = -1  # the root keeps its left child only
    assert check_trees(bad) == "tree 0: a node with one child"
    bad = json.loads(json.dumps(model))
    bad["trees"][2]["left"][0], bad["trees"][2]["right"][0] = 0, 0  # the root its own child: a cycle
    assert check_trees(bad) == "tree 2: a child numbered before its parent (a cycle)"
    with pytest.raises(ValueError, match="need x"):
        fit_trees(np.zeros((1, 2)), np.zeros(1))
