"""Fast tier: the regressor training learns. A tiny network on a learnable synthetic signal (a dark disk whose
radius grows with the score) must beat the constant training-mean predictor on held-out patients by a stated
margin; with learning rate 0 it must not (the sabotage check that keeps the guard honest).

The thorough-tier version with the ``cpu`` recipe is ``test_learning_slow.py``.
"""

import numpy as np
import pytest

from ra2.profiles import AugmentConfig, RegressorConfig, TrainConfig
from ra2.scoring.metrics import log2_rmse
from ra2.scoring.train import train_member

from synthetic_crops import dark_spot_crops

MARGIN = 0.30
"""Validation log2 RMSE at least 30% below the training mean's. Measured (2-core CPU, seed 0, 2026-12-04): 0.275
vs 0.994, 72% below; learning rate 0: 0.946 vs 0.994, 5% below (the untrained network starts at the prior, near the
mean) -- the margin sits far from both. About 35 s and 16 s under a load of 5 on 2 cores."""

SIZE = 24
NET = RegressorConfig(architecture="densenet88", dataset="narrowing", input_size=SIZE, growth_rate=4,
                      blocks=(1, 1), stem_filters=8, stem_kernel=3, stem_strides=1, stem_pool=True,
                      dropout_max=0.0, bn_momentum=0.9)
RECIPE = TrainConfig(batch_size=32, epochs=6, patience=3, learning_rate=3e-3, loss="log2_mse", sampling="none",
                     steps_per_epoch=10, augment=AugmentConfig(enabled=False), prior_bias=True)


def held_out_gain(learning_rate: float) -> tuple[float, float]:
    """(validation log2 RMSE of the trained member, of the training mean) on the dark-spot crops."""
    import dataclasses

    crops, train, val = dark_spot_crops(480, SIZE, (0, 0, 0, 0, 1, 2, 3, 4), patients=24, held_out=6)
    recipe = dataclasses.replace(RECIPE, learning_rate=learning_rate)
    _, meta, pred = train_member(NET, recipe, crops.subset(train), crops.subset(val), seed=0, progress=False)
    assert log2_rmse(pred, crops.labels[val]) == pytest.approx(meta["validation"]["log2_rmse"])
    baseline = log2_rmse(np.full(len(val), crops.labels[train].mean()), crops.labels[val])
    return meta["validation"]["log2_rmse"], baseline


def test_a_tiny_regressor_learns_a_dark_spot_growing_with_the_score():
    model, baseline = held_out_gain(RECIPE.learning_rate)
    assert model <= (1 - MARGIN) * baseline, f"log2 RMSE {model:.3f} vs the training mean's {baseline:.3f}"


def test_the_learning_guard_fails_a_regressor_that_cannot_learn():
    """Learning rate 0: the network keeps its initial weights (output at the prior, the training constant), so
    it must not reach the margin; if it did, the guard above would prove nothing."""
    model, baseline = held_out_gain(0.0)
    assert model > (1 - MARGIN) * baseline, f"log2 RMSE {model:.3f} vs the training mean's {baseline:.3f}"
