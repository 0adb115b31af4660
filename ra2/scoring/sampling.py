"""Balanced sampling of imbalanced integer scores (thesis scheme), redrawn every epoch.

Classes are the rounded scores. The majority class is under-sampled (without replacement) to the count of
the second most frequent class; every other class is over-sampled to that same count: all its samples
once, plus random repeats. So each class contributes ``target = second-largest count`` samples per epoch.
With a single class there is nothing to balance and the samples are only shuffled.
Sample weights (inverse class frequency) are the lighter alternative.
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
