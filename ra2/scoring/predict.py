"""Network predictions on joint crops: plain, or averaged over deterministic test-time views.

Inference code: the ensembles predict with it (:mod:`ra2.scoring.ensemble`), and training uses the same
functions for validation and out-of-fold predictions, so both see crops prepared alike. Crops are raw
``[N, s, s]`` float32 (film intensities); the sample-wise standardisation (:func:`ra2.scoring.data.standardize`)
happens here, just before the network.
"""

from __future__ import annotations

import numpy as np

from ra2.scoring.data import standardize

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


def predict_images(model, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """``[N]`` float64 predictions of ``model`` for raw crops ``[N, s, s]`` (standardised here)."""
    if len(images) == 0:
        return np.zeros(0)
    if getattr(model, "distribute_strategy", None) is not None and model.distribute_strategy.num_replicas_in_sync > 1:
        # A model built under a MirroredStrategy (training on several devices): predict_on_batch returns every
        # replica's copy of the outputs (2N rows for N crops on 2 devices, Keras 3.15); predict splits and joins.
        x = standardize(np.asarray(images, np.float32))[..., None]
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64).reshape(-1)
    out = []
    for i in range(0, len(images), batch_size):
        x = standardize(images[i:i + batch_size])[..., None]
        # predict_on_batch runs the compiled predict function: 5x an eager call (bench_training_step.py).
        out.append(np.asarray(model.predict_on_batch(x), dtype=np.float64).reshape(-1))
    return np.concatenate(out)


def predict_views(model, images: np.ndarray, views=TTA_VIEWS, batch_size: int = 128) -> np.ndarray:
    """``[N]`` predictions of ``model`` for raw crops ``[N, s, s]`` averaged over the test-time ``views``
    (:func:`tta_views`)."""
    if len(images) == 0:
        return np.zeros(0)
    preds = [predict_images(model, v, batch_size) for v in tta_views(np.asarray(images, np.float32), views)]
    return np.mean(preds, axis=0)
