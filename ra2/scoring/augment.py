"""Training augmentation of crops (albumentations); the test-time views are inference (:mod:`ra2.scoring.predict`).

Thesis augmentation: rotation up to 30 degrees, zoom and shift up to 10%; borders repeat the edge pixels
(as Keras' ImageDataGenerator ``fill_mode="nearest"`` did). Crops are ``[B, s, s]`` float32 before the
sample-wise standardisation, which comes after augmentation.
"""

from __future__ import annotations

import numpy as np

from ra2.profiles import AugmentConfig


class Augmenter:
    """Seeded random affine augmentation of crop batches.

    ``augmenter(batch [B, s, s] float32, seed) -> [B, s, s] float32``: the same seed gives the same
    output, whatever thread calls it (each call seeds its own pipeline).
    """

    def __init__(self, config: AugmentConfig = AugmentConfig()):
        self.config = config

    def _pipeline(self, seed: int):
        import albumentations as A
        import cv2

        c = self.config
        return A.Compose([A.Affine(rotate=(-c.rotate_deg, c.rotate_deg), scale=(1 - c.zoom, 1 + c.zoom),
                                   translate_percent=(-c.shift, c.shift), border_mode=cv2.BORDER_REPLICATE,
                                   p=1.0)], seed=int(seed))

    def __call__(self, batch: np.ndarray, seed: int) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        if not self.config.enabled:
            return batch.copy()
        pipe = self._pipeline(seed)
        return np.stack([pipe(image=img)["image"] for img in batch]).astype(np.float32)
