"""ra2.scoring.thresholds: the zero cut-off and its search."""

import numpy as np
import pytest

from ra2.scoring.metrics import log2_rmse
from ra2.scoring.thresholds import apply_threshold, search_threshold


def test_threshold_search_picks_known_best_cutoff():
    # Gold: 50 zeros, 10 ones, 10 threes. Predictions on the zeros: up to 0.58; on the ones 0.62..0.9.
    # Any cut-off in (0.58, 0.62] zeroes exactly the false positives and keeps all true ones: grid 0.6.
    gold = np.array([0.0] * 50 + [1.0] * 10 + [3.0] * 10)
    pred = np.concatenate([np.linspace(0.0, 0.58, 50), np.linspace(0.62, 0.9, 10), np.full(10, 2.9)])
    best, curve = search_threshold(pred, gold)
    assert best == pytest.approx(0.6)
    expected = log2_rmse(np.where(pred < 0.6, 0, pred), gold)
    assert curve[best] == pytest.approx(expected)
    assert curve[best] < curve[0.0] and curve[best] < curve[0.3] and curve[best] < curve[0.65]
    np.testing.assert_array_equal(apply_threshold([0.2, 0.6, 2.0, -1.0], 0.6), [0.0, 0.6, 2.0, 0.0])


def test_threshold_ties_go_to_smallest():
    best, _ = search_threshold(np.array([0.0, 2.0]), np.array([0.0, 2.0]), grid=(0.0, 0.5, 1.0))
    assert best == 0.0
