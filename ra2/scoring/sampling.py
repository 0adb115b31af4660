"""Balanced sampling of imbalanced integer scores (thesis scheme), redrawn every epoch.

Classes are the rounded scores. The majority class is under-sampled (without replacement) to the count of
the second most frequent class; every other class is over-sampled to that same count: all its samples
once, plus random repeats. So each class contributes ``target = second-largest count`` samples per epoch.
With a single class there is nothing to balance and the samples are only shuffled.
Sample weights (inverse class frequency) are the lighter alternative. :func:`oversampled_indices` is the
mildest: every non-zero score repeated a fixed number of times, optionally with weights that undo the
shift of the prior (:func:`oversample_weights`).
"""

from __future__ import annotations

import numpy as np


def class_counts(labels) -> dict[int, int]:
    classes, counts = np.unique(np.rint(np.asarray(labels)).astype(np.int64), return_counts=True)
    return {int(c): int(n) for c, n in zip(classes, counts)}


def balanced_indices(labels, rng: np.random.Generator) -> np.ndarray:
    """One epoch of indices into ``labels`` ([N] scores), shuffled; see the module docstring."""
    cls = np.rint(np.asarray(labels)).astype(np.int64)
    counts = class_counts(cls)
    if len(counts) <= 1:
        return rng.permutation(len(cls))
    target = sorted(counts.values(), reverse=True)[1]
    majority = max(counts, key=lambda c: (counts[c], -c))
    parts = []
    for c in counts:
        members = np.flatnonzero(cls == c)
        if c == majority:
            parts.append(rng.choice(members, size=target, replace=False))
        else:
            extra = rng.choice(members, size=target - len(members), replace=True) \
                if target > len(members) else members[:0]
            parts.append(np.concatenate([members, extra]))
    return rng.permutation(np.concatenate(parts))


def class_weights(labels) -> np.ndarray:
    """``[N]`` sample weights ``N / (n_classes * count(class))``: each class carries equal total weight."""
    cls = np.rint(np.asarray(labels)).astype(np.int64)
    counts = class_counts(cls)
    n = len(cls)
    return np.array([n / (len(counts) * counts[int(c)]) for c in cls], dtype=np.float32)


def oversampled_indices(labels, factor: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch of indices into ``labels`` ([N] scores), shuffled: every sample with a rounded score above 0
    ``factor`` times, the zeros once (``factor`` 1: a plain permutation)."""
    if factor < 1:
        raise ValueError(f"oversampling factor must be >= 1, got {factor}")
    cls = np.rint(np.asarray(labels)).astype(np.int64)
    nonzero = np.flatnonzero(cls > 0)
    return rng.permutation(np.concatenate([np.arange(len(cls))] + [nonzero] * (factor - 1)))


def oversample_weights(labels, factor: int) -> np.ndarray:
    """``[N]`` per-sample weights for :func:`oversampled_indices` that keep the expected loss of plain
    sampling: ``1 / factor`` for non-zero scores, 1 for zeros, scaled so an epoch's mean weight is 1."""
    cls = np.rint(np.asarray(labels)).astype(np.int64)
    w = np.where(cls > 0, 1.0 / factor, 1.0)
    n_nonzero = int((cls > 0).sum())
    drawn = len(cls) + (factor - 1) * n_nonzero  # samples per pass; their summed weight is len(cls)
    return (w * drawn / max(len(cls), 1)).astype(np.float32)
