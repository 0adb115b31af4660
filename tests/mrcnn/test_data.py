"""ra2.mrcnn.data: molding, image meta, load_image_gt with augmentation, RPN targets, batches."""

import albumentations as A
import numpy as np
import pytest

from ra2.mrcnn import data, utils
from ra2.mrcnn.config import Config


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 1 + 2
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    IMAGE_CHANNEL_COUNT = 1
    MEAN_PIXEL = [100.0]
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    MAX_GT_INSTANCES = 5
    MINI_MASK_SHAPE = (16, 16)


class RectDataset(utils.Dataset):
    """Images 48 x 32 (so 'square' mode scales by 4/3 and pads), rectangles given per image."""

    def __init__(self, rects_per_image):
        super().__init__(channels=1)
        self.add_class("rects", 1, "wide")
        self.add_class("rects", 2, "tall")
        for i, rects in enumerate(rects_per_image):
            self.add_image("rects", i, None, rects=rects)
        self.prepare()

    def load_image(self, image_id, channels=None):
        image = np.full((48, 32, 1), 30, dtype=np.uint8)
        for (y1, x1, y2, x2), _ in self.image_info[image_id]["rects"]:
            image[y1:y2, x1:x2] = 220
        return image

    def load_mask(self, image_id):
        rects = self.image_info[image_id]["rects"]
        masks = np.zeros((48, 32, len(rects)), dtype=bool)
        for i, ((y1, x1, y2, x2), _) in enumerate(rects):
            masks[y1:y2, x1:x2, i] = True
        return masks, np.array([c for _, c in rects], dtype=np.int32)


def test_mold_unmold():
    config = TinyConfig()
    image = np.array([[[0], [100], [255]]], dtype=np.uint8)
    molded = data.mold_image(image, config)
    assert molded.dtype == np.float32
    np.testing.assert_array_equal(molded[0, :, 0], [-100, 0, 155])
    np.testing.assert_array_equal(data.unmold_image(molded, config), image)


def test_image_meta_round_trip():
    meta = data.compose_image_meta(7, (48, 32, 1), (64, 64, 1), (0, 11, 64, 53), 4 / 3, [1, 1, 0])
    assert meta.shape == (TinyConfig().IMAGE_META_SIZE,) and meta.dtype == np.float32
    parsed = data.parse_image_meta(np.stack([meta, meta]))
    np.testing.assert_array_equal(parsed["image_id"], [7, 7])
    np.testing.assert_array_equal(parsed["original_image_shape"][0], [48, 32, 1])
    np.testing.assert_array_equal(parsed["image_shape"][1], [64, 64, 1])
    np.testing.assert_array_equal(parsed["window"][0], [0, 11, 64, 53])
    np.testing.assert_allclose(parsed["scale"], [4 / 3] * 2, rtol=1e-6)
    np.testing.assert_array_equal(parsed["active_class_ids"][0], [1, 1, 0])
    assert data.parse_image_meta(meta)["image_id"] == 7


def test_load_image_gt_resizes_and_boxes():
    config = TinyConfig()
    ds = RectDataset([[((6, 3, 18, 27), 1), ((24, 12, 45, 18), 2)]])
    image, meta, class_ids, bbox, mask = data.load_image_gt(ds, config, 0)
    # 48 x 32 -> scale 64 / 48 = 4/3 -> 64 x 43, padded left 10, right 11
    assert image.shape == (64, 64, 1) and image.dtype == np.uint8
    parsed = data.parse_image_meta(meta)
    np.testing.assert_array_equal(parsed["window"], [0, 10, 64, 53])
    np.testing.assert_array_equal(class_ids, [1, 2])
    np.testing.assert_array_equal(bbox[0], [8, 10 + 4, 24, 10 + 36])  # 6*4/3=8, 3*4/3=4, 18*4/3=24, 27*4/3=36
    assert mask.shape == (16, 16, 2) and mask.all()  # rectangles fill their boxes
    np.testing.assert_array_equal(parsed["active_class_ids"], [1, 1, 1])
    # the image is bright exactly where the box says
    y1, x1, y2, x2 = bbox[0]
    assert (image[y1:y2, x1:x2] > 128).all()


def test_augmentation_moves_masks_with_image():
    config = TinyConfig()
    ds = RectDataset([[((6, 3, 18, 13), 1)]])
    plain = data.load_image_gt(ds, config, 0)
    flip = A.Compose([A.HorizontalFlip(p=1.0)], seed=0)
    image, meta, class_ids, bbox, mask = data.load_image_gt(ds, config, 0, augmentation=flip)
    np.testing.assert_array_equal(image, plain[0][:, ::-1])
    y1, x1, y2, x2 = plain[3][0]
    np.testing.assert_array_equal(bbox[0], [y1, 64 - x2, y2, 64 - x1])
    y1, x1, y2, x2 = bbox[0]
    assert (image[y1:y2, x1:x2] > 128).all()


def test_augmentation_drops_instances_that_leave_the_image():
    config = TinyConfig()
    config.USE_MINI_MASK = False
    ds = RectDataset([[((2, 2, 8, 8), 1), ((30, 10, 40, 20), 2)]])
    crop_top = A.Compose([A.Affine(translate_px={"y": 30, "x": 0}, p=1.0)], seed=0)
    image, meta, class_ids, bbox, mask = data.load_image_gt(ds, config, 0, augmentation=crop_top)
    # the second rectangle is pushed off the bottom of the 64-pixel image; the first survives
    np.testing.assert_array_equal(class_ids, [1])
    assert mask.shape == (64, 64, 1)
    assert bbox[0][0] >= 30


def test_augmentation_must_keep_size():
    config = TinyConfig()
    ds = RectDataset([[((6, 3, 18, 13), 1)]])
    with pytest.raises(ValueError, match="shape"):
        data.load_image_gt(ds, config, 0, augmentation=A.Compose([A.Resize(32, 32)]))


class GridConfig(Config):
    """One pyramid level: 16 anchors of 8 x 8 centred at multiples of 8 in a 32 x 32 image."""

    IMAGE_MIN_DIM = 32
    IMAGE_MAX_DIM = 32
    BACKBONE_STRIDES = [8]
    RPN_ANCHOR_SCALES = (8,)
    RPN_ANCHOR_RATIOS = [1]
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256


def test_build_rpn_targets_one_exact_and_one_best_anchor():
    config = GridConfig()
    anchors = data.anchors_for_shape(config, (32, 32))
    assert anchors.shape == (16, 4)
    np.testing.assert_allclose(anchors[5], [4, 4, 12, 12])
    # box 1 equals anchor 5 (IoU 1); box 2's best anchor is 15, (20, 20, 28, 28), IoU 64/100 < 0.7
    gt_boxes = np.array([[4, 4, 12, 12], [18, 18, 28, 28]])
    rpn_match, rpn_bbox = data.build_rpn_targets((32, 32, 3), anchors, np.array([1, 1]), gt_boxes, config)
    assert rpn_match.dtype == np.int32 and rpn_bbox.shape == (256, 4)
    np.testing.assert_array_equal(np.flatnonzero(rpn_match == 1), [5, 15])
    assert (rpn_match[[i for i in range(16) if i not in (5, 15)]] == -1).all()
    np.testing.assert_allclose(rpn_bbox[0], [0, 0, 0, 0], atol=1e-6)
    # anchor 15: centre 24, side 8; box: centre 23, side 10 -> (-1/8, -1/8, log 1.25, log 1.25) / std
    expected = np.array([-0.125, -0.125, np.log(1.25), np.log(1.25)]) / np.array([0.1, 0.1, 0.2, 0.2])
    np.testing.assert_allclose(rpn_bbox[1], expected, rtol=1e-5)
    assert not rpn_bbox[2:].any()


def test_build_rpn_targets_neutral_band():
    config = GridConfig()
    anchors = data.anchors_for_shape(config, (32, 32))
    # box (4, 4, 12, 14): anchor 5 (4, 4, 12, 12) IoU 64/80 = 0.8 -> positive;
    # anchor 6 (4, 12, 12, 20) IoU 16/112 = 0.14 -> negative
    gt = np.array([[4, 4, 12, 14]])
    rpn_match, _ = data.build_rpn_targets((32, 32), anchors, np.array([1]), gt, config)
    assert rpn_match[5] == 1 and rpn_match[6] == -1
    # box (20, 22, 28, 30): anchor 15 (20, 20, 28, 28) IoU 48/80 = 0.6 < 0.7, but it is the box's
    # best anchor -> positive; anchor 14 (20, 12, 28, 20) does not touch it -> negative
    gt = np.array([[20, 22, 28, 30]])
    rpn_match, _ = data.build_rpn_targets((32, 32), anchors, np.array([1]), gt, config)
    assert rpn_match[15] == 1 and rpn_match[14] == -1
    # two boxes sharing a best anchor: anchor 5 is best for both (4, 4, 12, 12) and
    # (4, 6, 12, 14) (IoU 48/80 = 0.6); anchor 6 (4, 12, 12, 20) has IoU 16/112 with the second
    # box -> negative. A box (4, 8, 12, 16) centred between anchors 5 and 6 gives both the same IoU
    # 32/96 = 0.33: a tie, so both are "best" and positive.
    gt = np.array([[4, 8, 12, 16]])
    rpn_match, _ = data.build_rpn_targets((32, 32), anchors, np.array([1]), gt, config)
    np.testing.assert_array_equal(np.flatnonzero(rpn_match == 1), [5, 6])
    # neutral band: box (4, 4, 12, 19), 8 x 15: anchor 5 IoU 64/120 = 0.53 (best -> positive),
    # anchor 6 (4, 12, 12, 20) IoU 56/128 = 0.44 (not best, in [0.3, 0.7) -> neutral), the rest 0
    gt = np.array([[4, 4, 12, 19]])
    rpn_match, _ = data.build_rpn_targets((32, 32), anchors, np.array([1]), gt, config)
    assert rpn_match[5] == 1 and rpn_match[6] == 0
    assert (np.delete(rpn_match, [5, 6]) == -1).all()


def test_build_rpn_targets_empty_gt_and_subsampling():
    config = GridConfig()
    config.RPN_TRAIN_ANCHORS_PER_IMAGE = 8
    anchors = data.anchors_for_shape(config, (32, 32))
    rpn_match, rpn_bbox = data.build_rpn_targets((32, 32), anchors, np.zeros(0, np.int32), np.zeros((0, 4)), config,
                                                 rng=0)
    assert (rpn_match == -1).sum() == 8 and (rpn_match == 0).sum() == 8 and not (rpn_match == 1).any()
    assert rpn_bbox.shape == (8, 4) and not rpn_bbox.any()
    again, _ = data.build_rpn_targets((32, 32), anchors, np.zeros(0, np.int32), np.zeros((0, 4)), config, rng=0)
    np.testing.assert_array_equal(again, rpn_match)
    # crowd box (negative class id): anchors touching it are never negatives
    rpn_match, _ = data.build_rpn_targets((32, 32), anchors, np.array([-1]), np.array([[0, 0, 6, 6]]), GridConfig())
    # box (0, 0, 6, 6) touches anchors 0 (-4, -4, 4, 4), 1 (-4, 4, 4, 12), 4 and 5 (4, 4, 12, 12)
    np.testing.assert_array_equal(np.flatnonzero(rpn_match == 0), [0, 1, 4, 5])
    assert (np.delete(rpn_match, [0, 1, 4, 5]) == -1).all()


def test_compute_backbone_shapes():
    config = TinyConfig()
    np.testing.assert_array_equal(
        data.compute_backbone_shapes(config, (64, 64)), [[16, 16], [8, 8], [4, 4], [2, 2], [1, 1]]
    )
    np.testing.assert_array_equal(data.compute_backbone_shapes(config, (65, 70))[0], [17, 18])


def test_data_generator_batches_with_empty_image():
    config = TinyConfig()
    ds = RectDataset([[((6, 3, 18, 13), 1), ((20, 20, 40, 30), 2)], [], [((1, 1, 9, 9), 2)]])
    gen = data.DataGenerator(ds, config, shuffle=False, seed=1)
    assert len(gen) == 2
    batch = gen[0]
    images, meta, rpn_match, rpn_bbox, gt_ids, gt_boxes, gt_masks = batch
    n_anchors = 3 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1)
    assert images.shape == (2, 64, 64, 1) and images.dtype == np.float32
    assert meta.shape == (2, config.IMAGE_META_SIZE) and meta.dtype == np.float32
    assert rpn_match.shape == (2, n_anchors, 1) and rpn_match.dtype == np.int32
    assert rpn_bbox.shape == (2, 32, 4) and rpn_bbox.dtype == np.float32
    assert gt_ids.shape == (2, 5) and gt_ids.dtype == np.int32
    assert gt_boxes.shape == (2, 5, 4) and gt_boxes.dtype == np.int32
    assert gt_masks.shape == (2, 16, 16, 5) and gt_masks.dtype == bool
    np.testing.assert_array_equal(gt_ids[0], [1, 2, 0, 0, 0])
    # image 1 has no instances: all-zero ground truth, RPN targets negative or neutral only
    assert not gt_ids[1].any() and not gt_boxes[1].any() and not gt_masks[1].any()
    assert not (rpn_match[1] == 1).any() and (rpn_match[1] == -1).sum() == 32
    assert (rpn_match[0] == 1).sum() >= 2
    assert images[1].min() == pytest.approx(-100)  # padding is 0 minus the mean pixel
    # last batch wraps around to keep the batch size
    last = gen[1]
    assert last[0].shape[0] == 2
    np.testing.assert_array_equal(data.parse_image_meta(last[1])["image_id"], [2, 0])
    with pytest.raises(IndexError):
        gen[2]


def test_data_generator_is_seeded_and_shuffles():
    config = TinyConfig()
    config.IMAGES_PER_GPU = 1
    config.BATCH_SIZE = 1
    ds = RectDataset([[((1, 1, 9, 9), 1)]] * 6)
    order = lambda g: [int(data.parse_image_meta(b[1])["image_id"][0]) for b in g]  # noqa: E731
    g1 = data.DataGenerator(ds, config, shuffle=True, seed=5)
    g2 = data.DataGenerator(ds, config, shuffle=True, seed=5)
    first, second = order(g1), order(g1)  # iterating twice moves to the next epoch
    assert sorted(first) == list(range(6)) and first == order(g2)  # one permutation per epoch, seeded
    assert first != list(range(6))  # shuffled
    assert sorted(second) == list(range(6)) and second != first  # the next epoch draws a new order
    assert order(data.DataGenerator(ds, config, shuffle=False, seed=5)) == list(range(6))
    b1 = data.DataGenerator(ds, config, seed=5)[3]
    b2 = data.DataGenerator(ds, config, seed=5)[3]
    for x, y in zip(b1, b2):
        np.testing.assert_array_equal(x, y)


def test_data_generator_augmented_batches_are_reproducible():
    config = TinyConfig()
    ds = RectDataset([[((6, 3, 18, 13), 1)], [((20, 20, 40, 30), 2)], [((1, 1, 9, 9), 2)]])

    def batch(index):
        aug = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)])
        gen = data.DataGenerator(ds, config, augmentation=aug, seed=7)
        gen[1 - index]  # request another batch first: must not change this one
        return gen[index]

    for x, y in zip(batch(0), batch(0)):
        np.testing.assert_array_equal(x, y)
    # over several epochs the flips actually happen (boxes move)
    aug = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)])
    gen = data.DataGenerator(ds, config, augmentation=aug, seed=7, shuffle=False)
    seen = set()
    for _ in range(6):
        seen.add(tuple(gen[0][5][0, 0]))
        gen.on_epoch_end()
    assert len(seen) > 1


def test_build_rpn_targets_iou_bounds_are_configurable():
    # box (4, 4, 12, 18), 8 x 14: anchor 5 (4, 4, 12, 12) IoU 64/112 = 0.57 (its best anchor),
    # anchor 6 (4, 12, 12, 20) IoU 48/128 = 0.375, every other anchor 0
    config = GridConfig()
    anchors = data.anchors_for_shape(config, (32, 32))
    gt = np.array([[4, 4, 12, 18]])
    rpn_match, _ = data.build_rpn_targets((32, 32), anchors, np.array([1]), gt, config)
    assert rpn_match[5] == 1 and rpn_match[6] == 0  # matterport's 0.7 / 0.3: neutral band
    config.RPN_POSITIVE_IOU = 0.35
    rpn_match, _ = data.build_rpn_targets((32, 32), anchors, np.array([1]), gt, config)
    assert rpn_match[5] == 1 and rpn_match[6] == 1
    config.RPN_POSITIVE_IOU, config.RPN_NEGATIVE_IOU = 0.7, 0.4
    rpn_match, _ = data.build_rpn_targets((32, 32), anchors, np.array([1]), gt, config)
    assert rpn_match[5] == 1 and rpn_match[6] == -1
    assert (np.delete(rpn_match, [5, 6]) == -1).all()
