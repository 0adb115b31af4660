"""ra2.mrcnn.shapes: seeded synthetic shapes, masks consistent with the drawn image."""

import numpy as np
import pytest

from ra2.mrcnn import data, utils
from ra2.mrcnn.shapes import GrayShapesConfig, ShapesConfig, ShapesDataset


def make(count=12, seed=3, channels=3, **kwargs):
    ds = ShapesDataset(channels=channels)
    ds.load_shapes(count, 64, 64, seed, **kwargs)
    return ds


def test_seeded_and_deterministic():
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    for i in a.image_ids:
        np.testing.assert_array_equal(a.load_image(i), b.load_image(i))
        np.testing.assert_array_equal(a.load_mask(i)[0], b.load_mask(i)[0])
    assert any(not np.array_equal(a.load_image(i), c.load_image(i)) for i in a.image_ids)
    rng = np.random.default_rng(3)
    d = ShapesDataset()
    d.load_shapes(12, 64, 64, rng)
    np.testing.assert_array_equal(d.load_image(5), a.load_image(5))


def test_classes_and_shapes_of_arrays():
    ds = make()
    assert ds.num_classes == 4 and ds.class_names == ["BG", "square", "circle", "triangle"]
    for i in ds.image_ids:
        image = ds.load_image(i)
        masks, class_ids = ds.load_mask(i)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert masks.shape[:2] == (64, 64) and masks.dtype == bool
        assert class_ids.dtype == np.int32 and masks.shape[2] == class_ids.shape[0] >= 1
        assert set(class_ids.tolist()) <= {1, 2, 3}
        assert masks.reshape(-1, masks.shape[2]).any(axis=0).all()  # no empty instance
        # instances never overlap (occluded pixels are removed from the masks below) and every
        # shape shows at least half of its full area
        assert masks.sum(axis=2).max() <= 1
        shapes = ds.image_info[i]["shapes"]
        assert len(shapes) == masks.shape[2]
        for k, (name, _, dims) in enumerate(shapes):
            full = ShapesDataset.shape_pixels(name, dims, 64, 64)
            assert masks[:, :, k].sum() >= 0.5 * full.sum()


def test_masks_match_the_drawn_pixels():
    ds = make(count=20)
    for i in ds.image_ids:
        info = ds.image_info[i]
        image = ds.load_image(i)
        masks, _ = ds.load_mask(i)
        union = masks.any(axis=2)
        background = np.asarray(info["bg_color"], dtype=np.uint8)
        # every pixel outside the masks has the background colour
        assert (image[~union] == background).all()
        # every instance pixel has its shape's colour, which differs from the background
        for k in range(masks.shape[2]):
            colors = np.unique(image[masks[:, :, k]].reshape(-1, 3), axis=0)
            assert colors.shape[0] == 1
            assert np.abs(colors[0].astype(int) - background.astype(int)).max() >= 60


def test_square_geometry():
    square = ShapesDataset.shape_pixels("square", (20, 30, 5), 64, 64)
    np.testing.assert_array_equal(utils.extract_bboxes(square[:, :, None])[0], [15, 25, 26, 36])
    circle = ShapesDataset.shape_pixels("circle", (20, 30, 5), 64, 64)
    assert abs(circle.sum() - np.pi * 25) < 10
    triangle = ShapesDataset.shape_pixels("triangle", (20, 30, 6), 64, 64)
    rows = triangle.sum(axis=1)
    assert rows[15] < rows[25]  # apex at the top
    with pytest.raises(ValueError, match="hexagon"):
        ShapesDataset.shape_pixels("hexagon", (20, 30, 5), 64, 64)


def test_grayscale_variant_and_empty_images():
    ds = make(channels=1, min_shapes=0, max_shapes=2, count=30)
    assert ds.load_image(0).shape == (64, 64, 1)
    counts = [ds.load_mask(i)[1].shape[0] for i in ds.image_ids]
    assert 0 in counts and max(counts) >= 1
    empty = counts.index(0)
    masks, class_ids = ds.load_mask(empty)
    assert masks.shape == (64, 64, 0) and class_ids.shape == (0,)
    # the grayscale config feeds the data generator, empty image included
    config = GrayShapesConfig()
    config.IMAGES_PER_GPU = config.BATCH_SIZE = 2
    gen = data.DataGenerator(ds, config, shuffle=False)
    batch = gen[empty // 2]
    assert batch[0].shape == (2, 64, 64, 1)


def test_configs():
    c = ShapesConfig()
    assert c.NUM_CLASSES == 4 and c.IMAGE_SHAPE == [64, 64, 3]
    g = GrayShapesConfig()
    assert g.IMAGE_SHAPE == [64, 64, 1] and list(g.MEAN_PIXEL) == [127.5]
