"""Label sampler: the challenge's imbalance, exact sums, ranges, within-patient correlation."""

import numpy as np
import pytest

from ra2 import contract
from ra2.phantom import sample_patient_scores
from ra2.phantom.labels import zero_fractions


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(123)
    return [sample_patient_scores(rng) for _ in range(400)]


def test_columns_ranges_and_sums(rows):
    for r in rows:
        assert list(r) == list(contract.COLUMNS[1:])
        for c in contract.JOINT_COLUMNS:
            assert 0 <= r[c] <= contract.MAX_SCORE[c] and isinstance(r[c], int)
        ero = sum(r[c] for c in contract.EROSION_COLUMNS)
        nar = sum(r[c] for c in contract.NARROWING_COLUMNS)
        assert r[contract.OVERALL_EROSION] == ero
        assert r[contract.OVERALL_NARROWING] == nar
        assert r[contract.OVERALL_TOTAL] == ero + nar


def test_imbalance_matches_challenge(rows):
    z = zero_fractions(rows)
    # Challenge: about 86% of narrowing and 91% of erosion scores are zero.
    assert 0.82 <= z["narrowing"] <= 0.90
    assert 0.88 <= z["erosion"] <= 0.94
    # Many patients have no damage at all, but not most.
    assert 0.15 <= z["patients_all_zero"] <= 0.5


def test_long_tail_reaches_the_maximum(rows):
    for ds, top in contract.DATASET_MAX.items():
        values = np.concatenate([[r[s.column] for r in rows] for s in contract.scores_of_dataset(ds)])
        counts = np.bincount(values, minlength=top + 1)
        assert len(counts) == top + 1, f"{ds}: score above {top}"
        assert counts[top] > 0, f"{ds}: score {top} never drawn"
        # A decaying tail without a pile-up at the maximum (scores are truncated, not clipped).
        assert counts[1] > counts[2] > counts[3] > 0
        assert counts[top] < counts[top // 2]


def test_damage_is_correlated_within_a_patient(rows):
    nonzero = np.array([sum(r[c] > 0 for c in contract.JOINT_COLUMNS) for r in rows])
    damaged = nonzero[nonzero > 0]
    # A patient with damage has it in several joints (independent joints at 11% would give ~1 per patient
    # for those patients only by chance far less often).
    assert np.median(damaged) >= 4
    left = np.array([[r[c] for c in contract.limb_columns("LH")] for r in rows]).sum(axis=1)
    right = np.array([[r[c] for c in contract.limb_columns("RH")] for r in rows]).sum(axis=1)
    assert np.corrcoef(left, right)[0, 1] > 0.5


def test_sampler_is_seeded():
    a = [sample_patient_scores(np.random.default_rng(5)) for _ in range(3)]
    b = [sample_patient_scores(np.random.default_rng(5)) for _ in range(3)]
    assert a == b
