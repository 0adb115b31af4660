"""Crops: exact pixels for a crafted film, mirroring, padding at the film edge, per-site sizes."""

import numpy as np
import pytest

from ra2.detection.crops import crop_window, cut_crop, site_crops


def _ramp(h=100, w=120):
    # Every pixel distinct: value = (row * w + col) / (h * w).
    return (np.arange(h * w, dtype=np.float32).reshape(h, w) / (h * w)).astype(np.float32)


def test_window_is_centred_square_with_margin():
    # box 20 x 10 px, margin 0.5 -> side ceil(20 * 1.5) = 30, centred on (30, 45).
    assert crop_window((20, 40, 40, 50), margin=0.5) == (15, 30, 30)


def test_crop_exact_pixels_without_resize():
    film = _ramp()
    crop = cut_crop(film, (20, 30, 40, 50), size=20, mirror=False, margin=0.0)
    np.testing.assert_array_equal(crop, film[20:40, 30:50])
    assert crop.dtype == np.float32


def test_mirror_flips_left_right():
    film = _ramp()
    plain = cut_crop(film, (20, 30, 40, 50), size=20, mirror=False, margin=0.0)
    mirrored = cut_crop(film, (20, 30, 40, 50), size=20, mirror=True, margin=0.0)
    np.testing.assert_array_equal(mirrored, film[20:40, 30:50][:, ::-1])
    np.testing.assert_array_equal(mirrored[:, 0], plain[:, -1])


def test_zero_and_edge_padding_at_film_corner():
    film = _ramp()
    # box (0, 0, 10, 10), margin 1 -> side 20, window rows/cols -5..14.
    zero = cut_crop(film, (0, 0, 10, 10), size=20, mirror=False, margin=1.0, pad="zero")
    assert np.all(zero[:5, :] == 0) and np.all(zero[:, :5] == 0)
    np.testing.assert_array_equal(zero[5:, 5:], film[0:15, 0:15])
    edge = cut_crop(film, (0, 0, 10, 10), size=20, mirror=False, margin=1.0, pad="edge")
    np.testing.assert_array_equal(edge[5:, 5:], film[0:15, 0:15])
    np.testing.assert_array_equal(edge[0, 5:], film[0, 0:15])  # rows above the film repeat row 0
    np.testing.assert_array_equal(edge[5:, 0], film[0:15, 0])
    assert edge[0, 0] == film[0, 0]


def test_window_fully_outside_gives_zeros():
    film = _ramp()
    crop = cut_crop(film, (200, 200, 210, 210), size=8, mirror=False, margin=0.0)
    assert crop.shape == (8, 8) and not crop.any()


def test_resize_keeps_constant_and_shape():
    film = np.full((300, 300), 0.7, dtype=np.float32)
    for size in (16, 64, 256):
        crop = cut_crop(film, (100, 100, 180, 160), size=size, mirror=True)
        assert crop.shape == (size, size)
        np.testing.assert_allclose(crop, 0.7, atol=1e-6)


def test_resize_preserves_orientation_of_a_gradient():
    film = np.tile(np.linspace(0, 1, 200, dtype=np.float32), (200, 1))  # brighter to the right
    crop = cut_crop(film, (50, 50, 150, 150), size=32, mirror=False)
    assert np.all(np.diff(crop[16]) > 0)
    mirrored = cut_crop(film, (50, 50, 150, 150), size=32, mirror=True)
    assert np.all(np.diff(mirrored[16]) < 0)


def test_site_crops_sizes_and_mirroring():
    film = _ramp()
    boxes = {"RH_pip__2": (20, 30, 40, 50), "RH_mcp__ip": (50, 60, 70, 80)}
    out = site_crops(film, boxes, "RH", {"hand_erosion": 20, "narrowing": 10}, margin=0.0)
    # pip 2 feeds hand erosion and narrowing; the thumb IP feeds erosion only.
    assert set(out["RH_pip__2"]) == {"hand_erosion", "narrowing"}
    assert set(out["RH_mcp__ip"]) == {"hand_erosion"}
    np.testing.assert_array_equal(out["RH_pip__2"]["hand_erosion"], film[20:40, 30:50][:, ::-1])
    assert out["RH_pip__2"]["narrowing"].shape == (10, 10)
    with pytest.raises(KeyError):
        site_crops(film, {"LH_pip__2": (20, 30, 40, 50)}, "RH", {"narrowing": 10})


def test_empty_box_rejected():
    with pytest.raises(ValueError):
        cut_crop(_ramp(), (10, 10, 10, 20), size=8, mirror=False)
