"""ra2.scoring.metrics: the crop-level log2 RMSE."""

import math

import pytest

from ra2.scoring.metrics import log2_rmse


def test_log2_rmse_by_hand():
    # (log2(2) - log2(1))^2 = 1, (log2(4) - log2(4))^2 = 0, negative -1 clipped to 0 vs 0 -> 0
    assert log2_rmse([1.0, 3.0, -1.0, 0.0], [0.0, 3.0, 0.0, 0.0]) == pytest.approx(math.sqrt(1 / 4))
