"""ra2.scoring.data: crop data sets from films + boxes, caching, standardisation."""

import numpy as np
import pandas as pd
import pytest

from ra2 import Ra2Error, contract
from ra2.scoring.data import CropSet, crop_sets_from_films, standardize


def _labels(pids):
    rows = []
    for i, p in enumerate(pids):
        row = {c: float((i + j) % (contract.MAX_SCORE[c] + 1)) for j, c in enumerate(contract.JOINT_COLUMNS)}
        row[contract.PATIENT_COLUMN] = p
        rows.append(row)
    return pd.DataFrame(rows).set_index(contract.PATIENT_COLUMN)


def test_crop_sets_from_films_routes_sites_to_datasets():
    film = np.random.default_rng(0).random((200, 200)).astype(np.float32)
    boxes_rh = {"RH_pip__2": (10, 10, 40, 40), "RH_mcp__ip": (50, 50, 80, 80), "RH_wrist__nav": (100, 100, 130, 140)}
    boxes_lf = {"LF_mtp__1": (20, 120, 50, 150)}
    labels = _labels(["P1"])
    sets = crop_sets_from_films([("P1", "RH", film, boxes_rh), ("P1", "LF", film, boxes_lf)], labels,
                                {"hand_erosion": 32, "narrowing": 16, "foot_erosion": 32})
    he, nar, fe = sets["hand_erosion"], sets["narrowing"], sets["foot_erosion"]
    assert sorted(he.columns) == sorted(["RH_pip_E__2", "RH_mcp_E__ip", "RH_wrist_E__nav"])
    assert sorted(nar.columns) == sorted(["RH_pip_J__2", "LF_mtp_J__1"])  # nav has no narrowing score
    assert list(fe.columns) == ["LF_mtp_E__1"]
    assert he.images.shape == (3, 32, 32) and nar.images.shape == (2, 16, 16)
    for s in (he, nar, fe):
        for col, lab in zip(s.columns, s.labels):
            assert lab == labels.at["P1", col]
        assert set(s.patient_ids) == {"P1"}


def test_crop_sets_without_labels_and_unknown_patient():
    film = np.zeros((64, 64), np.float32)
    sets = crop_sets_from_films([("P9", "LH", film, {"LH_pip__3": (5, 5, 20, 20)})], None, {"narrowing": 8})
    assert np.isnan(sets["narrowing"].labels).all()
    with pytest.raises(Ra2Error, match="P9"):
        crop_sets_from_films([("P9", "LH", film, {"LH_pip__3": (5, 5, 20, 20)})], _labels(["P1"]),
                             {"narrowing": 8})


def test_cropset_save_load(tmp_path):
    s = CropSet("narrowing", np.random.rand(3, 8, 8).astype(np.float32), np.array([0, 1, 2], np.float32),
                np.array(["a", "b", "c"]), np.array(["LH_pip_J__2"] * 3))
    s.save(tmp_path / "x.npz")
    t = CropSet.load(tmp_path / "x.npz")
    assert t.dataset == "narrowing"
    np.testing.assert_array_equal(t.images, s.images)
    np.testing.assert_array_equal(t.patient_ids, s.patient_ids)
    assert len(t.subset(np.array([0, 2]))) == 2


def test_standardize_samplewise():
    x = np.stack([np.arange(16, dtype=np.float32).reshape(4, 4), np.full((4, 4), 3.0, np.float32)])
    z = standardize(x)
    np.testing.assert_allclose(z[0].mean(), 0, atol=1e-6)
    np.testing.assert_allclose(z[0].std(), 1, atol=1e-5)
    np.testing.assert_array_equal(z[1], 0)  # flat image: zeros, no division by zero
