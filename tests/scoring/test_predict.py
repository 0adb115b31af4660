"""ra2.scoring.predict: the test-time views (and, in test_ensemble.py, predictions of a trained network)."""

import numpy as np
import pytest

from ra2.scoring.predict import tta_views


def test_tta_views():
    x = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    views = tta_views(x)
    assert len(views) == 4 and all(v.shape == x.shape for v in views)
    np.testing.assert_array_equal(views[0], x)
    np.testing.assert_array_equal(views[1], x[:, :, ::-1])
    with pytest.raises(ValueError):
        tta_views(x, ("spin",))
