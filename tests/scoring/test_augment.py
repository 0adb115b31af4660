"""ra2.scoring.augment: seeded training augmentation of crops."""

import numpy as np

from ra2.profiles import AugmentConfig
from ra2.scoring.augment import Augmenter


def test_augmenter_seeded_and_effective():
    x = np.random.default_rng(0).random((4, 32, 32)).astype(np.float32)
    aug = Augmenter(AugmentConfig())
    a, b, c = aug(x, seed=5), aug(x, seed=5), aug(x, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, x)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(Augmenter(AugmentConfig(enabled=False))(x, seed=1), x)
