"""ra2.mrcnn.utils: boxes, IoU, NMS, deltas, resizing, masks, anchors, AP, Dataset (hand-computed)."""

import numpy as np
import pytest
from PIL import Image

from ra2 import Ra2Error
from ra2.mrcnn import utils


def rect_mask(shape, box):
    m = np.zeros(shape, dtype=bool)
    y1, x1, y2, x2 = box
    m[y1:y2, x1:x2] = True
    return m


# ------------------------------------------------------------------------------------ boxes
def test_extract_bboxes_exclusive_corners_and_empty():
    mask = np.zeros((10, 12, 3), dtype=bool)
    mask[3, 5, 0] = True  # one pixel
    mask[2:7, 1:4, 1] = True
    boxes = utils.extract_bboxes(mask)
    assert boxes.dtype == np.int32
    np.testing.assert_array_equal(boxes, [[3, 5, 4, 6], [2, 1, 7, 4], [0, 0, 0, 0]])


def test_overlaps_hand_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 10]])
    expected = [[25 / 175, 1.0, 0.0, 0.5]] * 2
    np.testing.assert_allclose(utils.compute_overlaps(a, b), expected)
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    np.testing.assert_allclose(utils.compute_iou(a[0], b, 100, areas), expected[0])
    assert utils.compute_overlaps(a, np.zeros((0, 4))).shape == (2, 0)


def test_overlaps_large_inputs_in_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    yx = rng.uniform(0, 50, (300, 2))
    boxes1 = np.concatenate([yx, yx + rng.uniform(1, 20, (300, 2))], axis=1)
    boxes2 = boxes1[::7] + 1.5
    direct = utils.compute_overlaps(boxes1, boxes2)
    monkeypatch.setattr(utils, "_OVERLAPS_CHUNK", 10)
    np.testing.assert_allclose(utils.compute_overlaps(boxes1, boxes2), direct)


def test_mask_overlaps():
    m1 = np.stack([rect_mask((20, 20), (0, 0, 10, 10)), rect_mask((20, 20), (10, 10, 20, 20))], axis=-1)
    m2 = np.stack([rect_mask((20, 20), (5, 0, 15, 10))], axis=-1)
    np.testing.assert_allclose(utils.compute_overlaps_masks(m1, m2), [[50 / 150], [0.0]])
    assert utils.compute_overlaps_masks(m1, np.zeros((20, 20, 0))).shape == (2, 0)


def test_non_max_suppression_crafted():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 5, 10, 15]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.85])
    # B overlaps A with IoU 81/119 = 0.68; D overlaps A with IoU 50/150 = 0.33.
    keep = utils.non_max_suppression(boxes, scores, 0.5)
    assert keep.dtype == np.int32
    np.testing.assert_array_equal(keep, [0, 3, 2])
    np.testing.assert_array_equal(utils.non_max_suppression(boxes, scores, 0.3), [0, 2])
    np.testing.assert_array_equal(utils.non_max_suppression(boxes, scores, 0.7), [0, 3, 1, 2])
    assert utils.non_max_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)


def test_box_deltas_hand_value_and_round_trip():
    box = np.array([[0, 0, 10, 10]])
    gt = np.array([[2, 4, 12, 24]])
    # h = w = 10, centre (5, 5); gt h = 10, w = 20, centre (7, 14)
    deltas = utils.box_refinement(box, gt)
    np.testing.assert_allclose(deltas, [[0.2, 0.9, 0.0, np.log(2.0)]], rtol=1e-6)
    np.testing.assert_allclose(utils.apply_box_deltas(box, deltas), gt, atol=1e-5)

    rng = np.random.default_rng(0)
    yx = rng.uniform(0, 100, (50, 2))
    hw = rng.uniform(1, 50, (50, 2))
    boxes = np.concatenate([yx, yx + hw], axis=1)
    yx2 = rng.uniform(0, 100, (50, 2))
    hw2 = rng.uniform(1, 50, (50, 2))
    gts = np.concatenate([yx2, yx2 + hw2], axis=1)
    np.testing.assert_allclose(utils.apply_box_deltas(boxes, utils.box_refinement(boxes, gts)), gts, atol=1e-3)


def test_norm_denorm_boxes():
    boxes = np.array([[0, 0, 10, 20], [2, 3, 5, 7]])
    normed = utils.norm_boxes(boxes, (11, 21))
    np.testing.assert_allclose(normed[0], [0, 0, 0.9, 0.95], rtol=1e-6)
    np.testing.assert_allclose(normed[1], [0.2, 0.15, 0.4, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(utils.denorm_boxes(normed, (11, 21)), boxes)


def test_trim_zeros():
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(utils.trim_zeros(x), [[1, 2, 3, 4], [0, 0, 1, 0]])


# ------------------------------------------------------------------------------ resizing
def test_resize_square_downscale_grayscale():
    image = np.full((30, 40, 1), 200, dtype=np.uint8)
    out, window, scale, padding, crop = utils.resize_image(image, min_dim=60, max_dim=64, mode="square")
    # min_dim asks for scale 2, the long side would be 80 > 64, so scale = 64 / 40 = 1.6 -> 48 x 64
    assert scale == pytest.approx(1.6)
    assert out.shape == (64, 64, 1) and out.dtype == np.uint8
    assert window == (8, 0, 56, 64)
    assert padding == [(8, 8), (0, 0), (0, 0)]
    assert crop is None
    assert (out[8:56] == 200).all() and (out[:8] == 0).all() and (out[56:] == 0).all()


def test_resize_square_pad_only():
    image = np.arange(30 * 60 * 3, dtype=np.uint8).reshape(30, 60, 3)
    out, window, scale, padding, _ = utils.resize_image(image, min_dim=20, max_dim=64, mode="square")
    assert scale == 1 and out.shape == (64, 64, 3)
    assert window == (17, 2, 47, 62) and padding == [(17, 17), (2, 2), (0, 0)]
    np.testing.assert_array_equal(out[17:47, 2:62], image)


def test_resize_none_pad64_crop():
    image = np.random.default_rng(0).integers(0, 255, (70, 100, 1), dtype=np.uint8)
    out, window, scale, padding, crop = utils.resize_image(image, 64, 128, mode="none")
    assert out is image and window == (0, 0, 70, 100) and scale == 1 and crop is None

    out, window, scale, padding, _ = utils.resize_image(image, min_dim=64, max_dim=1024, mode="pad64")
    assert out.shape == (128, 128, 1) and scale == 1
    assert window == (29, 14, 99, 114) and padding == [(29, 29), (14, 14), (0, 0)]
    np.testing.assert_array_equal(out[29:99, 14:114], image)

    big = np.random.default_rng(1).integers(0, 255, (100, 80, 3), dtype=np.uint8)
    out, window, scale, padding, crop = utils.resize_image(big, min_dim=64, mode="crop", rng=3)
    y, x, h, w = crop
    assert (h, w) == (64, 64) and 0 <= y <= 36 and 0 <= x <= 16 and window == (0, 0, 64, 64)
    np.testing.assert_array_equal(out, big[y : y + 64, x : x + 64])
    out2, *_ , crop2 = utils.resize_image(big, min_dim=64, mode="crop", rng=3)
    assert crop2 == crop  # seeded
    with pytest.raises(ValueError, match="mode"):
        utils.resize_image(image, mode="stretch")


def test_resize_mask_follows_image():
    image = np.zeros((30, 40, 1), dtype=np.uint8)
    image[6:18, 10:30] = 255
    mask = (image[:, :, 0] > 0)[:, :, None]
    out, window, scale, padding, crop = utils.resize_image(image, min_dim=60, max_dim=64, mode="square")
    rmask = utils.resize_mask(mask, scale, padding, crop)
    assert rmask.shape == (64, 64, 1) and rmask.dtype == bool
    # the box scales by 1.6 and moves down by the top padding of 8
    np.testing.assert_array_equal(utils.extract_bboxes(rmask)[0], [8 + 10, 16, 8 + 29, 48])
    agreement = np.mean((out[:, :, 0] >= 128) == rmask[:, :, 0])
    assert agreement > 0.99


def test_to_channels():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[..., 0] = 100
    gray = utils.to_channels(rgb, 1)
    assert gray.shape == (2, 2, 1) and gray[0, 0, 0] == round(0.299 * 100)
    assert utils.to_channels(gray, 3).shape == (2, 2, 3)
    assert utils.to_channels(np.zeros((4, 5), np.uint8), 1).shape == (4, 5, 1)


# ---------------------------------------------------------------------------------- masks
def test_minimize_expand_round_trip():
    shape = (64, 80)
    masks = np.stack([rect_mask(shape, (5, 7, 25, 47)), rect_mask(shape, (30, 60, 31, 61))], axis=-1)
    yy, xx = np.mgrid[:64, :80]
    circle = (yy - 40) ** 2 + (xx - 30) ** 2 <= 15**2
    masks = np.concatenate([masks, circle[:, :, None]], axis=-1)
    boxes = utils.extract_bboxes(masks)
    mini = utils.minimize_mask(boxes, masks, (56, 56))
    assert mini.shape == (56, 56, 3) and mini.dtype == bool
    back = utils.expand_mask(boxes, mini, shape + (3,))
    assert back.shape == (64, 80, 3)
    np.testing.assert_array_equal(back[..., :2], masks[..., :2])  # rectangles come back exactly
    iou = utils.compute_overlaps_masks(back[..., 2:], masks[..., 2:])[0, 0]
    assert iou > 0.95
    with pytest.raises(ValueError, match="empty box"):
        utils.minimize_mask(np.zeros((1, 4), int), np.zeros((8, 8, 1), bool), (4, 4))


def test_unmold_mask():
    probabilities = np.zeros((28, 28))
    probabilities[:, :14] = 0.9  # left half on
    full = utils.unmold_mask(probabilities, (2, 4, 12, 24), (20, 30, 3))
    assert full.shape == (20, 30) and full.dtype == bool
    expected = rect_mask((20, 30), (2, 4, 12, 14))
    assert np.array_equal(full, expected)
    clipped = utils.unmold_mask(np.ones((28, 28)), (-5, 25, 5, 35), (20, 30))
    assert np.array_equal(clipped, rect_mask((20, 30), (0, 25, 5, 30)))
    assert not utils.unmold_mask(np.ones((28, 28)), (3, 3, 3, 9), (20, 30)).any()


# -------------------------------------------------------------------------------- anchors
def test_generate_anchors_tiny_case():
    anchors = utils.generate_anchors(8, [0.5, 1, 2], (2, 2), 4, 1)
    assert anchors.shape == (12, 4)
    r = np.sqrt(0.5)
    h, w = 8 / r, 8 * r  # ratio 0.5 (width / height): tall
    np.testing.assert_allclose(anchors[0], [-h / 2, -w / 2, h / 2, w / 2])
    np.testing.assert_allclose(anchors[1], [-4, -4, 4, 4])
    np.testing.assert_allclose(anchors[2], [-w / 2, -h / 2, w / 2, h / 2])
    np.testing.assert_allclose(anchors[3], [-h / 2, 4 - w / 2, h / 2, 4 + w / 2])  # cell (0, 1)
    np.testing.assert_allclose(anchors[7], [0, -4, 8, 4])  # cell (1, 0), ratio 1
    np.testing.assert_allclose(anchors[10], [0, 0, 8, 8])  # cell (1, 1), ratio 1
    # anchor stride 2 keeps every other cell
    assert utils.generate_anchors(8, [1], (4, 4), 4, 2).shape == (4, 4)


def test_generate_pyramid_anchors():
    anchors = utils.generate_pyramid_anchors((8, 16), [0.5, 1, 2], np.array([[2, 2], [1, 1]]), [4, 8], 1)
    assert anchors.shape == (12 + 3, 4)
    np.testing.assert_allclose(anchors[13], [-8, -8, 8, 8])
    np.testing.assert_allclose(anchors[:12], utils.generate_anchors(8, [0.5, 1, 2], (2, 2), 4, 1))


# ----------------------------------------------------------------------------- evaluation
def _gt():
    shape = (40, 40)
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    masks = np.stack([rect_mask(shape, b) for b in boxes], axis=-1)
    return boxes, np.array([1, 2]), masks


def test_compute_ap_perfect_and_false_positives():
    gt_boxes, gt_ids, gt_masks = _gt()
    ap, precisions, recalls, overlaps = utils.compute_ap(
        gt_boxes, gt_ids, gt_masks, gt_boxes, gt_ids, np.array([0.9, 0.8]), gt_masks
    )
    assert ap == pytest.approx(1.0)
    np.testing.assert_allclose(np.diag(overlaps), [1, 1])

    fp_box = np.array([[30, 0, 40, 10]])
    fp_mask = rect_mask((40, 40), fp_box[0])[:, :, None]
    boxes = np.concatenate([gt_boxes, fp_box])
    masks = np.concatenate([gt_masks, fp_mask], axis=-1)
    ids = np.array([1, 2, 1])
    # false positive ranked between the two true positives: precisions 1, 1/2, 2/3 at
    # recalls 1/2, 1/2, 1 -> AP = 0.5 * 1 + 0.5 * 2/3
    ap, *_ = utils.compute_ap(gt_boxes, gt_ids, gt_masks, boxes, ids, np.array([0.9, 0.8, 0.85]), masks)
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    # false positive ranked first: AP = 2/3; ranked last: AP = 1
    ap, *_ = utils.compute_ap(gt_boxes, gt_ids, gt_masks, boxes, ids, np.array([0.9, 0.8, 0.95]), masks)
    assert ap == pytest.approx(2 / 3)
    ap, *_ = utils.compute_ap(gt_boxes, gt_ids, gt_masks, boxes, ids, np.array([0.9, 0.8, 0.1]), masks)
    assert ap == pytest.approx(1.0)
    # right place, wrong class: no match -> AP 0; box IoU variant agrees on the perfect case
    ap, *_ = utils.compute_ap(gt_boxes, gt_ids, gt_masks, gt_boxes, np.array([2, 1]), np.array([0.9, 0.8]), gt_masks)
    assert ap == 0.0
    ap, *_ = utils.compute_ap(gt_boxes, gt_ids, None, gt_boxes, gt_ids, np.array([0.9, 0.8]), None, iou_type="box")
    assert ap == pytest.approx(1.0)


def test_compute_ap_empty_cases():
    empty_boxes = np.zeros((0, 4))
    empty_masks = np.zeros((40, 40, 0), bool)
    gt_boxes, gt_ids, gt_masks = _gt()
    assert utils.compute_ap(empty_boxes, [], empty_masks, empty_boxes, [], [], empty_masks)[0] == 1.0
    assert utils.compute_ap(empty_boxes, [], empty_masks, gt_boxes, gt_ids, [0.9, 0.8], gt_masks)[0] == 0.0
    assert utils.compute_ap(gt_boxes, gt_ids, gt_masks, empty_boxes, [], [], empty_masks)[0] == 0.0


def test_compute_ap_range_partial_overlap():
    gt_box = np.array([[0, 0, 10, 10]])
    gt_mask = rect_mask((20, 20), gt_box[0])[:, :, None]
    pred_box = np.array([[0, 0, 10, 14]])
    pred_mask = rect_mask((20, 20), pred_box[0])[:, :, None]
    # IoU = 100 / 140 = 0.714: a hit at 0.5, 0.55, 0.6, 0.65, 0.7 and a miss at 0.75 ... 0.95
    value = utils.compute_ap_range(gt_box, [1], gt_mask, pred_box, [1], [0.9], pred_mask)
    assert value == pytest.approx(0.5)
    assert utils.compute_ap_range(gt_box, [1], gt_mask, gt_box, [1], [0.9], gt_mask) == pytest.approx(1.0)


def test_compute_recall():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    pred = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]])
    recall, positive = utils.compute_recall(pred, gt, 0.5)
    assert recall == 0.5
    np.testing.assert_array_equal(positive, [0, 1])


# -------------------------------------------------------------------------------- Dataset
class TwoSourceDataset(utils.Dataset):
    def load_mask(self, image_id):
        h, w = self.image_info[image_id]["height"], self.image_info[image_id]["width"]
        return np.zeros((h, w, 0), bool), np.zeros(0, np.int32)


def test_dataset_bookkeeping():
    ds = TwoSourceDataset()
    ds.add_class("a", 1, "cat")
    ds.add_class("a", 1, "cat")  # duplicate ignored
    ds.add_class("a", 2, "dog, puppy")
    ds.add_class("b", 7, "bird")
    ds.add_image("a", "img-x", None, height=4, width=5)
    ds.add_image("b", 42, "/nowhere.png", height=4, width=5)
    ds.prepare()
    assert ds.num_classes == 4 and ds.class_names == ["BG", "cat", "dog", "bird"]
    np.testing.assert_array_equal(ds.image_ids, [0, 1])
    assert ds.map_source_class_id("b.7") == 3
    assert ds.get_source_class_id(2, "a") == 2
    assert ds.source_class_ids == {"": [0], "a": [0, 1, 2], "b": [0, 3]}
    assert ds.image_from_source_map["b.42"] == 1
    assert ds.source_image_link(1) == "/nowhere.png"
    masks, ids = ds.load_mask(0)
    assert masks.shape == (4, 5, 0) and ids.dtype == np.int32
    with pytest.raises(ValueError, match="dot"):
        ds.add_class("a.b", 1, "x")
    with pytest.raises(Ra2Error, match="nowhere.png"):
        ds.load_image(1)
    with pytest.raises(NotImplementedError):
        utils.Dataset().load_mask(0)


def test_dataset_load_image_channels(tmp_path):
    gray = (np.arange(12 * 10) % 256).astype(np.uint8).reshape(12, 10)
    path = tmp_path / "g.png"
    Image.fromarray(gray).save(path)
    ds = utils.Dataset()
    ds.add_image("files", 0, str(path))
    ds.prepare()
    rgb = ds.load_image(0)
    assert rgb.shape == (12, 10, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[:, :, 2], gray)
    one = ds.load_image(0, channels=1)
    assert one.shape == (12, 10, 1)
    np.testing.assert_array_equal(one[:, :, 0], gray)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    ds.add_image("files", 1, str(bad))
    ds.prepare()
    with pytest.raises(Ra2Error, match="bad.png"):
        ds.load_image(1)
