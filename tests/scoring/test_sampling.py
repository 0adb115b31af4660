"""ra2.scoring.sampling: balanced draws, class weights, unbiased oversampling."""

import numpy as np
import pytest

from ra2.scoring.sampling import balanced_indices, class_counts, class_weights, oversample_weights, oversampled_indices


def test_balanced_sampler_counts():
    # class 0: 100, class 1: 30, class 2: 7, class 4: 1  -> every class drawn 30 times
    labels = np.array([0] * 100 + [1] * 30 + [2] * 7 + [4] * 1, dtype=np.float32)
    rng = np.random.default_rng(0)
    idx = balanced_indices(labels, rng)
    drawn = class_counts(labels[idx])
    assert drawn == {0: 30, 1: 30, 2: 30, 4: 30}
    # majority under-sampled without replacement; the second class appears exactly once each
    zeros = idx[labels[idx] == 0]
    assert len(set(zeros.tolist())) == 30
    ones = idx[labels[idx] == 1]
    assert sorted(ones.tolist()) == list(range(100, 130))
    # over-sampled classes keep every original sample
    assert set(idx[labels[idx] == 2].tolist()) == set(range(130, 137))
    # a new epoch draws a different majority subset
    idx2 = balanced_indices(labels, rng)
    assert set(idx2[labels[idx2] == 0].tolist()) != set(zeros.tolist())


def test_balanced_sampler_single_class_and_weights():
    labels = np.zeros(10)
    idx = balanced_indices(labels, np.random.default_rng(0))
    assert sorted(idx.tolist()) == list(range(10))
    w = class_weights(np.array([0, 0, 0, 1]))
    # N / (n_classes * count): 4 / (2 * 3) and 4 / (2 * 1)
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 2.0], rtol=1e-6)


def test_oversampler_repeats_nonzero_scores_and_weights_undo_it():
    labels = np.array([0.0] * 8 + [1.0, 2.4, 0.4], dtype=np.float32)  # 0.4 rounds to 0: a zero
    order = oversampled_indices(labels, 3, np.random.default_rng(0))
    counts = np.bincount(order, minlength=len(labels))
    assert counts.tolist() == [1] * 8 + [3, 3, 1]
    np.testing.assert_array_equal(oversampled_indices(labels, 1, np.random.default_rng(4)),
                                  np.random.default_rng(4).permutation(len(labels)))
    w = oversample_weights(labels, 3)
    # each sample's total weight per pass is the same for zeros and non-zeros (expected loss unchanged) ...
    per_sample = counts * w
    np.testing.assert_allclose(per_sample, per_sample[0])
    # ... and the mean weight of the drawn samples is 1 (the learning rate keeps its meaning)
    assert w[order].mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=">= 1"):
        oversampled_indices(labels, 0, np.random.default_rng(0))
