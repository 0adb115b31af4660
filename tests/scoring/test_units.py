"""Pure-numpy parts of the scoring stage: folds, balanced sampler, thresholds, aggregation, metric."""

import math

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error, contract
from ra2.scoring.aggregate import add_overall, predictions_frame
from ra2.scoring.folds import fold_indices, patient_folds
from ra2.scoring.metrics import log2_rmse
from ra2.scoring.sampling import (balanced_indices, class_counts, class_weights, oversample_weights,
                                  oversampled_indices)
from ra2.scoring.thresholds import apply_threshold, search_threshold


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("n_folds", [2, 5])
def test_folds_never_leak_a_patient_and_use_each_once(seed, n_folds):
    rng = np.random.default_rng(seed)
    pids = np.array([f"P{i:03d}" for i in rng.integers(0, 23, size=400)])
    labels = rng.integers(0, 5, size=400)
    folds = patient_folds(pids, n_folds, seed=seed, labels=labels)
    val_patients = []
    for k in range(n_folds):
        tr, va = fold_indices(folds, k)
        assert len(tr) + len(va) == len(pids)
        assert not set(pids[tr]) & set(pids[va])  # no patient on both sides
        assert len(va) > 0
        val_patients.extend(sorted(set(pids[va])))
    # every patient is in exactly one validation part
    assert sorted(val_patients) == sorted(set(pids))
    # patients spread evenly: fold sizes in patients differ by at most 1
    per_fold = [len(set(pids[folds == k])) for k in range(n_folds)]
    assert max(per_fold) - min(per_fold) <= 1


def test_folds_are_deterministic_and_reject_too_few_patients():
    pids = np.array(["a", "b", "c", "d", "e"] * 3)
    np.testing.assert_array_equal(patient_folds(pids, 5, seed=3), patient_folds(pids, 5, seed=3))
    with pytest.raises(ValueError):
        patient_folds(pids, 6)


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


def test_log2_rmse_by_hand():
    # (log2(2) - log2(1))^2 = 1, (log2(4) - log2(4))^2 = 0, negative -1 clipped to 0 vs 0 -> 0
    assert log2_rmse([1.0, 3.0, -1.0, 0.0], [0.0, 3.0, 0.0, 0.0]) == pytest.approx(math.sqrt(1 / 4))


def test_threshold_search_picks_known_best_cutoff():
    # Gold: 50 zeros, 10 ones, 10 threes. Predictions on the zeros: up to 0.58; on the ones 0.62..0.9.
    # Any cut-off in (0.58, 0.62] zeroes exactly the false positives and keeps all true ones: grid 0.6.
    gold = np.array([0.0] * 50 + [1.0] * 10 + [3.0] * 10)
    pred = np.concatenate([np.linspace(0.0, 0.58, 50), np.linspace(0.62, 0.9, 10), np.full(10, 2.9)])
    best, curve = search_threshold(pred, gold)
    assert best == pytest.approx(0.6)
    expected = log2_rmse(np.where(pred < 0.6, 0, pred), gold)
    assert curve[best] == pytest.approx(expected)
    assert curve[best] < curve[0.0] and curve[best] < curve[0.3] and curve[best] < curve[0.65]
    np.testing.assert_array_equal(apply_threshold([0.2, 0.6, 2.0, -1.0], 0.6), [0.0, 0.6, 2.0, 0.0])


def test_threshold_ties_go_to_smallest():
    best, _ = search_threshold(np.array([0.0, 2.0]), np.array([0.0, 2.0]), grid=(0.0, 0.5, 1.0))
    assert best == 0.0


def test_aggregation_sums_and_column_order():
    rng = np.random.default_rng(0)
    joints = {c: rng.integers(0, contract.MAX_SCORE[c] + 1, size=3).astype(float)
              for c in contract.JOINT_COLUMNS}
    frame = predictions_frame(["A", "B", "C"], joints)
    assert tuple(frame.columns) == contract.COLUMNS
    for i in range(3):
        ero = sum(joints[c][i] for c in contract.EROSION_COLUMNS)
        nar = sum(joints[c][i] for c in contract.NARROWING_COLUMNS)
        assert frame.loc[i, contract.OVERALL_EROSION] == pytest.approx(ero)
        assert frame.loc[i, contract.OVERALL_NARROWING] == pytest.approx(nar)
        assert frame.loc[i, contract.OVERALL_TOTAL] == pytest.approx(ero + nar)
    assert list(frame[contract.PATIENT_COLUMN]) == ["A", "B", "C"]
    shuffled = frame[list(reversed(frame.columns))]
    pd.testing.assert_frame_equal(add_overall(shuffled), frame)


def test_aggregation_rejects_missing_columns():
    joints = {c: [0.0] for c in contract.JOINT_COLUMNS[1:]}
    with pytest.raises(Ra2Error, match=contract.JOINT_COLUMNS[0]):
        predictions_frame(["A"], joints)


def test_epoch_order_fills_fixed_steps_with_balanced_draws():
    from ra2.scoring.profiles import TrainConfig
    from ra2.scoring.train import _epoch_order

    labels = np.array([0] * 50 + [1] * 3 + [2] * 2, dtype=np.float32)  # balanced epoch: 3 x 3 = 9 samples
    cfg = TrainConfig(batch_size=4, steps_per_epoch=5, sampling="balanced")
    order = _epoch_order(labels, cfg, np.random.default_rng(0))
    assert len(order) == 20
    # built from whole balanced draws (9 each): the first 18 hold every class exactly 6 times
    assert class_counts(labels[order[:18]]) == {0: 6, 1: 6, 2: 6}
    plain = _epoch_order(labels, TrainConfig(batch_size=4, steps_per_epoch=None, sampling="none"),
                         np.random.default_rng(0))
    assert sorted(plain.tolist()) == list(range(55))


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


def test_epoch_order_oversamples_within_fixed_steps():
    from ra2.scoring.profiles import TrainConfig
    from ra2.scoring.train import _epoch_order

    labels = np.array([0] * 20 + [3] * 2, dtype=np.float32)  # one pass: 20 zeros + 2 x 5 repeats = 30
    order = _epoch_order(labels, TrainConfig(batch_size=10, steps_per_epoch=6, sampling="none", oversample=5),
                         np.random.default_rng(1))
    assert len(order) == 60
    assert class_counts(labels[order]) == {0: 40, 3: 20}  # two whole passes


def test_profiles_and_overrides():
    from ra2.scoring.profiles import get_profile

    full = get_profile("full")
    assert full.n_folds == 5
    assert full.sizes() == {"foot_erosion": 128, "hand_erosion": 128, "narrowing": 64}
    assert {d: t.loss for d, t in full.training.items()} == {"foot_erosion": "mae", "hand_erosion": "mae",
                                                            "narrowing": "logcosh"}
    assert all(t.learning_rate == 1e-4 and t.sampling == "balanced" for t in full.training.values())
    assert full.networks["narrowing"].architecture == "densenet88"
    cpu = get_profile("cpu", sampling="weights", epochs=3, patience=1)
    assert all(t.sampling == "weights" and t.epochs == 3 and t.patience == 1 for t in cpu.training.values())
    assert get_profile("cpu").training["narrowing"].epochs == 40  # overrides never leak into the recipe
    with pytest.raises(Ra2Error):
        get_profile("huge")
    with pytest.raises(Ra2Error):
        get_profile("cpu", sampling="random")


def test_choose_tta_follows_the_out_of_fold_error():
    from ra2.scoring.train import choose_tta

    labels = np.array([0.0, 0.0, 1.0, 3.0])
    plain = np.array([0.5, 0.0, 1.0, 3.0])  # one error of log2(1.5) = 0.585 on a true 0
    views = np.array([0.0, 0.0, 1.0, 7.0])  # one error of log2(8/4) = 1 on the true 3
    use, rep = choose_tta("auto", plain, views, labels, max_score=5)
    assert not use  # a tie: 0.585 each
    assert rep["log2_rmse_plain"] == pytest.approx(math.sqrt(math.log2(1.5) ** 2 / 4))
    # clipped to the top score before scoring: 7 -> 5, an error of log2(6/4)
    assert rep["log2_rmse_tta"] == pytest.approx(math.sqrt(math.log2(1.5) ** 2 / 4))
    # a tie goes to off (the cheaper); a better view average wins; "on" / "off" force
    views_better = np.array([0.2, 0.0, 1.0, 3.0])
    assert choose_tta("auto", plain, views_better, labels, 5)[0] is True
    assert choose_tta("on", plain, views, labels, 5)[0] is True
    assert choose_tta("off", plain, views_better, labels, 5)[0] is False
    assert choose_tta("off", plain, None, labels, 5) == (False, {"mode": "off", "log2_rmse_plain": rep["log2_rmse_plain"],
                                                               "log2_rmse_tta": None})
    with pytest.raises(Ra2Error, match="unknown test-time augmentation mode 'yes'"):
        choose_tta("yes", plain, views, labels, 5)
