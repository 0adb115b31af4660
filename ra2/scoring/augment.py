"""Training augmentation (albumentations) and test-time augmentation views.

Thesis augmentation: rotation up to 30 degrees, zoom and shift up to 10%; borders repeat the edge pixels
(as Keras' ImageDataGenerator ``fill_mode="nearest"`` did). Crops are ``[B, s, s]`` float32 before the
sample-wise standardisation, which comes after augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 30.0
    zoom: float = 0.1
    shift: float = 0.1
    enabled: bool = True


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


TTA_VIEWS = ("identity", "flip", "rot+15", "rot-15")


def tta_views(batch: np.ndarray, views=TTA_VIEWS) -> list[np.ndarray]:
    """Deterministic test-time views of ``batch`` ``[B, s, s]``: each a ``[B, s, s]`` float32 array.

    ``flip`` mirrors left-right; ``rot+15``/``rot-15`` rotate about the centre (edge pixels repeated).
    """
    import cv2

    batch = np.asarray(batch, dtype=np.float32)
    out = []
    for view in views:
        if view == "identity":
            out.append(batch)
        elif view == "flip":
            out.append(batch[:, :, ::-1].copy())
        elif view.startswith("rot"):
            angle = float(view[3:])
            s = batch.shape[1]
            m = cv2.getRotationMatrix2D(((s - 1) / 2.0, (s - 1) / 2.0), angle, 1.0)
            out.append(np.stack([cv2.warpAffine(img, m, (s, s), flags=cv2.INTER_LINEAR,
                                                borderMode=cv2.BORDER_REPLICATE) for img in batch]))
        else:
            raise ValueError(f"unknown TTA view {view!r}; expected one of {TTA_VIEWS}")
    return out
