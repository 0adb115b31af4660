"""Domain randomisation of the film detectors: sizes kept, joints never covered by borders or markers."""

import numpy as np
import pytest

from ra2.detection.augment import FilmBorders, FilmMarkers, film_augmentation
from ra2.detection.train import augmentation_pipeline


def _image_and_masks(seed=0, side=128):
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 120, size=(side, side, 1), dtype=np.uint8)
    masks = []
    for y, x in ((40, 50), (70, 60), (60, 80)):
        m = np.zeros((side, side), np.uint8)
        m[y - 6:y + 6, x - 6:x + 6] = 1
        masks.append(m)
    return img, masks


def _union_box(masks, grow):
    ys, xs = np.nonzero(np.any(masks, axis=0))
    return ys.min() - grow, xs.min() - grow, ys.max() + 1 + grow, xs.max() + 1 + grow


@pytest.mark.parametrize("transform", [FilmBorders(p=1.0, side_p=1.0, depth=(0.3, 0.5)), FilmMarkers(p=1.0)])
def test_borders_and_markers_stay_clear_of_the_joints(transform):
    changed_somewhere = False
    for seed in range(12):
        img, masks = _image_and_masks(seed)
        transform.set_random_seed(seed)
        out = transform(image=img, masks=masks)["image"]
        assert out.shape == img.shape and out.dtype == np.uint8
        y1, x1, y2, x2 = _union_box(masks, 2)
        np.testing.assert_array_equal(out[y1:y2, x1:x2], img[y1:y2, x1:x2])
        changed_somewhere |= bool((out != img).any())
    assert changed_somewhere


def test_film_pipeline_keeps_size_and_masks_follow_the_image():
    aug = film_augmentation()
    img, masks = _image_and_masks(1, 256)
    shapes = set()
    for seed in range(8):
        aug.set_random_seed(seed)
        out = aug(image=img, masks=masks)
        shapes.add(out["image"].shape)
        assert all(m.shape == (256, 256) for m in out["masks"])
    assert shapes == {(256, 256, 1)}
    assert augmentation_pipeline("carpus") is not None
    with pytest.raises(Exception, match="unknown augmentation kind"):
        augmentation_pipeline("wrist")
