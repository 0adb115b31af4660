"""Crops with a learnable signal, shared by the learning guards (``tests/scoring/test_learning*.py``)."""

import numpy as np

from ra2.scoring.data import CropSet


def dark_spot_crops(n: int, size: int, scores, patients: int, held_out: int,
                    seed: int = 0) -> tuple[CropSet, np.ndarray, np.ndarray]:
    """``n`` noisy ``size`` px narrowing crops ``[n, size, size]``, scores drawn uniformly from the list
    ``scores``; a crop of score s > 0 has a dark disk of radius 1 + s at a random spot in the central quarter.
    Crop i belongs to patient ``i % patients``; the first ``held_out`` patients are the validation part.

    Returns ``(crops, training indices, validation indices)``.
    """
    rng = np.random.default_rng(seed)
    labels = rng.choice(list(scores), size=n).astype(np.float32)
    yy, xx = np.mgrid[:size, :size]
    images = rng.normal(0.5, 0.1, (n, size, size)).astype(np.float32)
    for i in np.flatnonzero(labels > 0):
        cy, cx = rng.integers(size * 3 // 8, size * 5 // 8, size=2)
        images[i][((yy - cy) ** 2 + (xx - cx) ** 2) < (1 + labels[i]) ** 2] -= 0.3
    patient = np.arange(n) % patients
    crops = CropSet("narrowing", images, labels, np.array([f"P{p:02d}" for p in patient]),
                    np.array(["LH_pip_J__2"] * n))
    return crops, np.flatnonzero(patient >= held_out), np.flatnonzero(patient < held_out)
