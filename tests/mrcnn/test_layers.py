"""Graph pieces of ra2.mrcnn against hand-computed values and NumPy references."""

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ra2.mrcnn import layers as L  # noqa: E402
from ra2.mrcnn import losses  # noqa: E402
from ra2.mrcnn.config import Config  # noqa: E402
from ra2.mrcnn.data import compose_image_meta  # noqa: E402


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 3
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    IMAGE_CHANNEL_COUNT = 1
    MEAN_PIXEL = [100.0]
    TRAIN_ROIS_PER_IMAGE = 9
    ROI_POSITIVE_RATIO = 0.34
    MASK_SHAPE = [4, 4]
    USE_MINI_MASK = False
    DETECTION_MAX_INSTANCES = 5
    DETECTION_MIN_CONFIDENCE = 0.7
    DETECTION_NMS_THRESHOLD = 0.3


def meta_for(h, w, num_classes=3):
    return compose_image_meta(0, (h, w, 1), (h, w, 1), (0, 0, h, w), 1.0, np.zeros(num_classes))[None].astype(
        np.float32)


# ------------------------------------------------------------------------------------ boxes

def test_apply_box_deltas_by_hand():
    boxes = tf.constant([[0.0, 0.0, 10.0, 10.0]])
    deltas = tf.constant([[0.1, 0.2, math.log(2.0), 0.0]])
    # centre (5, 5) -> (6, 7); height 10 -> 20; width 10
    np.testing.assert_allclose(L.apply_box_deltas_graph(boxes, deltas).numpy(), [[-4.0, 2.0, 16.0, 12.0]],
                               atol=1e-5)


def test_box_refinement_inverts_apply_deltas():
    rng = np.random.default_rng(0)
    y1x1 = rng.uniform(0, 50, (20, 2))
    hw = rng.uniform(1, 30, (20, 2))
    boxes = np.concatenate([y1x1, y1x1 + hw], 1).astype(np.float32)
    gt = boxes + rng.uniform(-3, 3, boxes.shape).astype(np.float32)
    gt[:, 2:] = np.maximum(gt[:, 2:], gt[:, :2] + 1)
    deltas = L.box_refinement_graph(boxes, gt)
    np.testing.assert_allclose(L.apply_box_deltas_graph(tf.constant(boxes), deltas).numpy(), gt, atol=1e-3)
    # one by hand: box (0, 0, 10, 20) -> gt (5, 0, 15, 40): dy = 0.5, dx = 0.5, dh = 0, dw = log 2
    d = L.box_refinement_graph(np.array([[0, 0, 10, 20.0]]), np.array([[5, 0, 15, 40.0]])).numpy()
    np.testing.assert_allclose(d, [[0.5, 0.5, 0.0, math.log(2.0)]], atol=1e-6)


def test_clip_and_overlaps():
    clipped = L.clip_boxes_graph(tf.constant([[-0.5, 0.2, 1.5, 0.8]]), tf.constant([0.0, 0.0, 1.0, 1.0]))
    np.testing.assert_allclose(clipped.numpy(), [[0.0, 0.2, 1.0, 0.8]])
    iou = L.overlaps_graph(tf.constant([[0.0, 0.0, 2.0, 2.0]]), tf.constant([[1.0, 1.0, 3.0, 3.0],
                                                                             [5.0, 5.0, 6.0, 6.0]]))
    np.testing.assert_allclose(iou.numpy(), [[1.0 / 7.0, 0.0]], atol=1e-6)


def test_norm_boxes_graph_matches_matterport_convention():
    # pixel box (0, 0, 64, 64) of a 64 x 64 image is (0, 0, 1, 1) normalised
    n = L.norm_boxes_graph(tf.constant([[0.0, 0.0, 64.0, 64.0], [10.0, 20.0, 30.0, 40.0]]), tf.constant([64, 64]))
    np.testing.assert_allclose(n.numpy(), [[0, 0, 1, 1], [10 / 63, 20 / 63, 29 / 63, 39 / 63]], atol=1e-6)
    np.testing.assert_array_equal(L.denorm_boxes_graph(n, tf.constant([64, 64])).numpy(),
                                  [[0, 0, 64, 64], [10, 20, 30, 40]])


# ------------------------------------------------------------------------------------ ROIAlign

def bilinear_crop_reference(fmap, box, out_h, out_w):
    """NumPy crop-and-resize: fmap [H, W, C], box normalised (y1, x1, y2, x2); sample i at
    y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (out_h - 1); outside the map -> 0."""
    H, W, C = fmap.shape
    y1, x1, y2, x2 = box
    out = np.zeros((out_h, out_w, C))
    for i in range(out_h):
        y = y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (out_h - 1)
        for j in range(out_w):
            x = x1 * (W - 1) + j * (x2 - x1) * (W - 1) / (out_w - 1)
            if y < 0 or y > H - 1 or x < 0 or x > W - 1:
                continue
            y0, x0 = int(math.floor(y)), int(math.floor(x))
            y1_, x1_ = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
            fy, fx = y - y0, x - x0
            top = fmap[y0, x0] * (1 - fx) + fmap[y0, x1_] * fx
            bottom = fmap[y1_, x0] * (1 - fx) + fmap[y1_, x1_] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out


def reference_level(box, image_hw):
    h, w = box[2] - box[0], box[3] - box[1]
    level = math.log2(math.sqrt(h * w) / (224.0 / math.sqrt(image_hw[0] * image_hw[1])))
    return int(min(5, max(2, 4 + round(level))))


def test_pyramid_roi_align_matches_numpy_reference():
    rng = np.random.default_rng(1)
    image_hw = (1024, 1024)  # only used for level assignment
    maps = [rng.normal(size=(2, s, s, 3)).astype(np.float32) for s in (16, 8, 4, 2)]
    # box sides (normalised) chosen to hit every level: 224 px ~ level 4
    sides = [0.05, 0.6, 0.12, 0.3, 0.9, 0.2]
    boxes = np.zeros((2, 6, 4), np.float32)
    for b in range(2):
        for n, s in enumerate(sides[::(1 if b == 0 else -1)]):
            y, x = rng.uniform(0, 1 - s, 2)
            boxes[b, n] = [y, x, y + s, x + s * rng.uniform(0.6, 1.0)]
    levels = {reference_level(bx, image_hw) for bx in boxes.reshape(-1, 4)}
    assert levels == {2, 3, 4, 5}
    meta = np.repeat(meta_for(*image_hw), 2, axis=0)
    layer = L.PyramidROIAlign([3, 4])
    out = layer([tf.constant(boxes), tf.constant(meta)] + [tf.constant(m) for m in maps]).numpy()
    assert out.shape == (2, 6, 3, 4, 3)
    for b in range(2):
        for n in range(6):
            level = reference_level(boxes[b, n], image_hw)
            expected = bilinear_crop_reference(maps[level - 2][b], boxes[b, n], 3, 4)
            np.testing.assert_allclose(out[b, n], expected, atol=1e-5, err_msg=f"image {b} box {n}")


# ------------------------------------------------------------------------------------ proposals

def test_proposal_layer_on_crafted_anchors():
    anchors = np.array([[0.1, 0.1, 0.3, 0.3],      # score 0.9
                        [0.1, 0.1, 0.3, 0.31],     # score 0.8, IoU 0.95 with the first -> suppressed
                        [0.5, 0.5, 0.7, 0.7],      # score 0.7, shifted by deltas
                        [0.8, 0.8, 0.95, 0.95],    # score 0.6
                        [0.0, 0.0, 0.1, 0.1]],     # score 0.1, beyond PRE_NMS_LIMIT
                       np.float32)[None]
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1], np.float32)
    probs = np.stack([1 - scores, scores], -1)[None]
    std = np.array([0.1, 0.1, 0.2, 0.2], np.float32)
    deltas = np.zeros((1, 5, 4), np.float32)
    deltas[0, 2] = np.array([0.5, 0.0, math.log(2.0), 0.0]) / std  # centre y +0.1, height x2
    deltas[0, 3] = np.array([0.5, 0.5, 0.0, 0.0]) / std            # pushed past the border
    layer = L.ProposalLayer(proposal_count=5, nms_threshold=0.7, pre_nms_limit=4, rpn_bbox_std_dev=std)
    out = layer([tf.constant(probs), tf.constant(deltas), tf.constant(anchors)]).numpy()[0]
    expected = np.array([[0.1, 0.1, 0.3, 0.3],
                         [0.5, 0.5, 0.9, 0.7],
                         [0.875, 0.875, 1.0, 1.0],  # clipped to the image
                         [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(out, expected, atol=1e-5)


# ------------------------------------------------------------------------------------ detection

def test_detection_layer_on_crafted_input():
    config = TinyConfig()
    rois = np.array([[0.1, 0.1, 0.4, 0.4],     # class 1, 0.9
                     [0.12, 0.1, 0.42, 0.4],   # class 1, 0.8, overlaps roi 0 -> suppressed
                     [0.12, 0.1, 0.42, 0.4],   # class 2, 0.75, same place but another class -> kept
                     [0.6, 0.6, 0.8, 0.8],     # class 2, 0.95, moved by its deltas
                     [0.5, 0.1, 0.7, 0.3],     # background wins
                     [0.3, 0.6, 0.5, 0.9],     # class 1 but 0.6 < DETECTION_MIN_CONFIDENCE
                     [0, 0, 0, 0]], np.float32)  # padding
    probs = np.array([[0.05, 0.9, 0.05], [0.1, 0.8, 0.1], [0.05, 0.2, 0.75], [0.0, 0.05, 0.95],
                      [0.9, 0.05, 0.05], [0.2, 0.6, 0.2], [1.0, 0.0, 0.0]], np.float32)
    deltas = np.zeros((7, 3, 4), np.float32)
    deltas[3, 2] = np.array([0.1, -0.1, 0.0, 0.0]) / np.array(config.BBOX_STD_DEV)  # +0.02 y, -0.02 x
    deltas[3, 1] = 5.0  # other classes' deltas are ignored
    meta = meta_for(64, 64)
    out = L.DetectionLayer(config)([tf.constant(rois[None]), tf.constant(probs[None]),
                                    tf.constant(deltas[None]), tf.constant(meta)]).numpy()[0]
    expected = np.array([[0.62, 0.58, 0.82, 0.78, 2, 0.95],
                         [0.1, 0.1, 0.4, 0.4, 1, 0.9],
                         [0.12, 0.1, 0.42, 0.4, 2, 0.75],
                         [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_detection_layer_clips_to_window():
    config = TinyConfig()
    # the image occupies rows 16..48 of the 64 x 64 molded image
    meta = compose_image_meta(0, (32, 64, 1), (64, 64, 1), (16, 0, 48, 64), 1.0, np.zeros(3))[None]
    rois = np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)
    probs = np.array([[0.0, 1.0, 0.0]], np.float32)
    out = L.DetectionLayer(config)([tf.constant(rois[None]), tf.constant(probs[None]),
                                    tf.constant(np.zeros((1, 1, 3, 4), np.float32)),
                                    tf.constant(meta.astype(np.float32))]).numpy()[0]
    np.testing.assert_allclose(out[0], [16 / 63, 0.2, 0.5, 0.6, 1, 1.0], atol=1e-5)


# ------------------------------------------------------------------------------------ targets

def test_detection_target_layer_one_gt_box():
    config = TinyConfig()
    H = W = 64
    gt_pixels = np.array([16, 16, 48, 48])
    gt_norm = L.norm_boxes_graph(tf.constant(gt_pixels[None].astype(np.float32)), tf.constant([H, W])).numpy()[0]
    exact = gt_norm
    shifted = gt_norm + np.array([0.05, 0.05, 0.05, 0.05], np.float32)  # IoU ~0.75
    negatives = np.array([[0.0, 0.0, 0.1, 0.1], [0.8, 0.8, 0.95, 0.95], [0.0, 0.8, 0.1, 0.95],
                          [0.8, 0.0, 0.95, 0.1], [0.85, 0.85, 0.9, 0.9]], np.float32)
    proposals = np.zeros((12, 4), np.float32)
    proposals[0], proposals[1], proposals[2:7] = exact, shifted, negatives
    gt_class_ids = np.array([2, 0, 0], np.int32)
    gt_boxes = np.zeros((3, 4), np.float32)
    gt_boxes[0] = gt_norm
    gt_masks = np.zeros((H, W, 3), bool)
    gt_masks[16:48, 16:48, 0] = True
    rois, class_ids, deltas, masks = L.DetectionTargetLayer(config)(
        [tf.constant(proposals[None]), tf.constant(gt_class_ids[None]), tf.constant(gt_boxes[None]),
         tf.constant(gt_masks[None])])
    rois, class_ids, deltas, masks = rois.numpy()[0], class_ids.numpy()[0], deltas.numpy()[0], masks.numpy()[0]
    assert rois.shape == (9, 4) and class_ids.shape == (9,) and deltas.shape == (9, 4) and masks.shape == (9, 4, 4)
    # 2 positives; negatives: int(2 / 0.34) - 2 = 3; the rest is padding
    np.testing.assert_array_equal(class_ids, [2, 2, 0, 0, 0, 0, 0, 0, 0])
    positives = {tuple(np.round(r, 5)) for r in rois[:2]}
    assert positives == {tuple(np.round(exact, 5)), tuple(np.round(shifted, 5))}
    for r in rois[2:5]:
        assert any(np.allclose(r, n) for n in negatives)
    assert not np.any(rois[5:]) and not np.any(deltas[2:]) and not np.any(masks[2:])
    for k in range(2):
        b = rois[k]
        h, w = b[2] - b[0], b[3] - b[1]
        gh, gw = gt_norm[2] - gt_norm[0], gt_norm[3] - gt_norm[1]
        expect = np.array([((gt_norm[0] + gt_norm[2]) - (b[0] + b[2])) / 2 / h,
                           ((gt_norm[1] + gt_norm[3]) - (b[1] + b[3])) / 2 / w,
                           math.log(gh / h), math.log(gw / w)]) / np.array(config.BBOX_STD_DEV)
        np.testing.assert_allclose(deltas[k], expect, atol=1e-4)
        # mask target: the gt mask sampled over the ROI (crop_and_resize, rounded)
        ref = bilinear_crop_reference(gt_masks[:, :, :1].astype(np.float64), b, 4, 4)[..., 0]
        np.testing.assert_array_equal(masks[k], np.round(ref))
        if np.allclose(b, exact):
            assert masks[k].all()


def test_detection_target_layer_empty_ground_truth():
    config = TinyConfig()
    proposals = np.zeros((1, 6, 4), np.float32)
    proposals[0, :2] = [[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9]]
    out = L.DetectionTargetLayer(config)([tf.constant(proposals), tf.zeros((1, 3), tf.int32),
                                          tf.zeros((1, 3, 4)), tf.zeros((1, 64, 64, 3), tf.bool)])
    for o in out:
        assert np.all(np.isfinite(o.numpy())) and not np.any(o.numpy())


# ------------------------------------------------------------------------------------ losses

def test_rpn_class_loss_by_hand():
    match = np.array([[[1], [-1], [0]]], np.int32)
    logits = np.array([[[0.0, 2.0], [1.0, 0.0], [5.0, -5.0]]], np.float32)
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))) / 2
    assert float(losses.rpn_class_loss(match, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.rpn_class_loss(np.zeros((1, 3, 1), np.int32), logits)) == 0.0


def test_rpn_bbox_loss_by_hand():
    # image 0: positives at anchors 1 and 3; image 1: positive at anchor 0
    match = np.array([[[0], [1], [-1], [1]], [[1], [0], [0], [-1]]], np.int32)
    pred = np.zeros((2, 4, 4), np.float32)
    pred[0, 1] = [0.5, 0, 0, 0]      # target 0 -> 0.5 * 0.25 = 0.125
    pred[0, 3] = [0, 3.0, 0, 0]      # target 1 -> |2| - 0.5 = 1.5
    pred[1, 0] = [0, 0, 0.2, 0]      # target 0.2 -> 0
    target = np.zeros((2, 3, 4), np.float32)
    target[0, 1] = [0, 1.0, 0, 0]
    target[1, 0] = [0, 0, 0.2, 0]
    expected = (0.125 + 1.5) / 12
    assert float(losses.rpn_bbox_loss(target, match, pred)) == pytest.approx(expected, rel=1e-5)


def test_mrcnn_losses_by_hand():
    target_ids = np.array([[1, 0, 2, 0]], np.int32)
    logits = np.zeros((1, 4, 3), np.float32)
    logits[0, 0] = [0, 2, 0]
    active = np.array([[1, 1, 1]], np.float32)
    p = math.exp(2) / (2 + math.exp(2))
    expected = (-math.log(p) + 3 * math.log(3)) / 4  # rois 1..3 have uniform logits
    assert float(losses.mrcnn_class_loss(target_ids, logits, active)) == pytest.approx(expected, rel=1e-5)
    # class 2 inactive: rois predicted as class 2 are not counted (none here: argmax ties -> 0)
    pred_bbox = np.zeros((1, 4, 3, 4), np.float32)
    pred_bbox[0, 0, 1] = [0.5, 0, 0, 0]   # 0.125
    pred_bbox[0, 2, 2] = [0, 0, 2.0, 0]   # 1.5
    pred_bbox[0, 2, 1] = [9, 9, 9, 9]     # wrong class, ignored
    target_bbox = np.zeros((1, 4, 4), np.float32)
    assert float(losses.mrcnn_bbox_loss(target_bbox, target_ids, pred_bbox)) == pytest.approx(1.625 / 8, rel=1e-5)
    masks_t = np.zeros((1, 4, 2, 2), np.float32)
    masks_t[0, 0] = [[1, 0], [0, 0]]
    pred_m = np.full((1, 4, 2, 2, 3), 0.5, np.float32)
    pred_m[0, 0, :, :, 1] = [[0.9, 0.1], [0.1, 0.1]]
    expected_mask = (4 * -math.log(0.9) + 4 * math.log(2)) / 8
    assert float(losses.mrcnn_mask_loss(masks_t, target_ids, pred_m)) == pytest.approx(expected_mask, rel=1e-5)
    none = np.zeros((1, 4), np.int32)
    assert float(losses.mrcnn_bbox_loss(target_bbox, none, pred_bbox)) == 0.0
    assert float(losses.mrcnn_mask_loss(masks_t, none, pred_m)) == 0.0


def test_apply_box_deltas_caps_the_scale():
    out = L.apply_box_deltas_graph(tf.constant([[0.0, 0.0, 1.0, 1.0]]), tf.constant([[0.0, 0.0, 100.0, 100.0]]))
    side = math.exp(L.MAX_LOG_SCALE)
    np.testing.assert_allclose(out.numpy(), [[0.5 - side / 2, 0.5 - side / 2, 0.5 + side / 2, 0.5 + side / 2]],
                               rtol=1e-5)


def test_compact_and_scatter_rois_round_trip():
    rng = np.random.default_rng(3)
    pooled = rng.normal(size=(2, 4, 3, 3, 2)).astype(np.float32)
    detections = np.zeros((2, 4, 6), np.float32)
    detections[0, 0, 4] = 1
    detections[0, 1, 4] = 3
    detections[1, 0, 4] = 2
    compact, flat = L.CompactRois()([tf.constant(pooled), tf.constant(detections)])
    assert compact.shape == (1, 4, 3, 3, 2)  # the three detections + one zero row (never an empty batch)
    np.testing.assert_array_equal(flat.numpy(), [0, 1, 4])
    np.testing.assert_array_equal(compact.numpy()[0, :3], pooled.reshape(8, 3, 3, 2)[[0, 1, 4]])
    assert not compact.numpy()[0, 3].any()
    back = L.ScatterRois()([compact * 2.0, flat, tf.constant(detections)]).numpy()
    expected = np.zeros_like(pooled)
    expected[0, :2], expected[1, 0] = 2 * pooled[0, :2], 2 * pooled[1, 0]
    np.testing.assert_array_equal(back, expected)
    none = np.zeros_like(detections)
    compact, flat = L.CompactRois()([tf.constant(pooled), tf.constant(none)])
    assert compact.shape[1] == 1 and flat.shape[0] == 0
    assert not L.ScatterRois()([compact, flat, tf.constant(none)]).numpy().any()


def test_full_conv2d_equals_conv2d():
    import keras

    x = np.random.default_rng(4).normal(size=(5, 3, 3, 4)).astype(np.float32)
    full = L.FullConv2D(6, (3, 3), activation="relu")
    conv = keras.layers.Conv2D(6, (3, 3), activation="relu")
    full.build(x.shape)
    conv.build(x.shape)
    for w_full, w_conv in zip(full.weights, conv.weights):
        w_full.assign(np.random.default_rng(5).normal(size=w_full.shape).astype(np.float32))
        w_conv.assign(w_full.numpy())
    np.testing.assert_allclose(np.asarray(full(x)), np.asarray(conv(x)), rtol=1e-5, atol=1e-5)
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError):  # a kernel built for 3x3 inputs
        full(np.zeros((1, 4, 4, 4), np.float32))
