"""ra2.scoring.folds: patient-grouped folds."""

import numpy as np
import pytest

from ra2.scoring.folds import fold_indices, patient_folds


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
