"""Graph pieces of Mask R-CNN as Keras 3 layers (TensorFlow backend).

Coordinates inside the graph are *normalised* image coordinates of the molded (resized, padded)
image: ``boxes: [..., (y1, x1, y2, x2)]`` with (0, 0) the top-left corner and (1, 1) the
bottom-right corner, y2/x2 exclusive in the pixel sense of :func:`norm_boxes_graph`
(pixel ``(y2 - 1)`` maps to ``(y2 - 1) / (H - 1)``, as matterport).
Deltas are ``(dy, dx, log(dh), log(dw))``.

Everything here is per batch element vectorised or mapped with ``tf.map_fn``, so any batch size
works (matterport required exactly ``IMAGES_PER_GPU``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ra2.mrcnn.backbone import norm_layer

# ---------------------------------------------------------------------------------------------
# Box helpers (graph)
# ---------------------------------------------------------------------------------------------

#: Upper bound of log(dh), log(dw) when applying deltas (detectron2's choice): a box grows at
#: most 62.5x, so an untrained or diverging network cannot produce infinite boxes.
MAX_LOG_SCALE = float(np.log(1000.0 / 16.0))


def apply_box_deltas_graph(boxes, deltas):
    """Apply ``deltas [N, (dy, dx, log(dh), log(dw))]`` to ``boxes [N, (y1, x1, y2, x2)]``.

    log(dh), log(dw) are capped at :data:`MAX_LOG_SCALE`."""
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height + deltas[:, 0] * height
    center_x = boxes[:, 1] + 0.5 * width + deltas[:, 1] * width
    height = height * tf.exp(tf.minimum(deltas[:, 2], MAX_LOG_SCALE))
    width = width * tf.exp(tf.minimum(deltas[:, 3], MAX_LOG_SCALE))
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return tf.stack([y1, x1, y1 + height, x1 + width], axis=1)


def clip_boxes_graph(boxes, window):
    """Clip ``boxes [N, (y1, x1, y2, x2)]`` to ``window (wy1, wx1, wy2, wx2)``."""
    wy1, wx1, wy2, wx2 = tf.unstack(window)
    y1, x1, y2, x2 = tf.unstack(boxes, axis=1)
    y1 = tf.clip_by_value(y1, wy1, wy2)
    x1 = tf.clip_by_value(x1, wx1, wx2)
    y2 = tf.clip_by_value(y2, wy1, wy2)
    x2 = tf.clip_by_value(x2, wx1, wx2)
    return tf.stack([y1, x1, y2, x2], axis=1)


def box_refinement_graph(box, gt_box):
    """Deltas ``[N, (dy, dx, log(dh), log(dw))]`` that turn ``box`` into ``gt_box`` (both [N, 4])."""
    box = tf.cast(box, tf.float32)
    gt_box = tf.cast(gt_box, tf.float32)
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    center_y = box[:, 0] + 0.5 * height
    center_x = box[:, 1] + 0.5 * width
    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    gt_center_y = gt_box[:, 0] + 0.5 * gt_height
    gt_center_x = gt_box[:, 1] + 0.5 * gt_width
    return tf.stack([(gt_center_y - center_y) / height, (gt_center_x - center_x) / width,
                     tf.math.log(gt_height / height), tf.math.log(gt_width / width)], axis=1)


def overlaps_graph(boxes1, boxes2):
    """IoU matrix ``[N1, N2]`` of ``boxes1 [N1, 4]`` and ``boxes2 [N2, 4]`` (y1, x1, y2, x2)."""
    b1 = tf.expand_dims(boxes1, 1)  # [N1, 1, 4]
    b2 = tf.expand_dims(boxes2, 0)  # [1, N2, 4]
    y1 = tf.maximum(b1[..., 0], b2[..., 0])
    x1 = tf.maximum(b1[..., 1], b2[..., 1])
    y2 = tf.minimum(b1[..., 2], b2[..., 2])
    x2 = tf.minimum(b1[..., 3], b2[..., 3])
    intersection = tf.maximum(y2 - y1, 0.0) * tf.maximum(x2 - x1, 0.0)
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    union = area1 + area2 - intersection
    return tf.math.divide_no_nan(intersection, union)


def trim_zeros_graph(boxes):
    """Drop all-zero rows of ``boxes [N, 4]``. Returns ``(boxes [M, 4], non_zeros [N] bool)``."""
    non_zeros = tf.cast(tf.reduce_sum(tf.abs(boxes), axis=1), tf.bool)
    return tf.boolean_mask(boxes, non_zeros), non_zeros


def norm_boxes_graph(boxes, shape):
    """Pixel boxes ``[..., (y1, x1, y2, x2)]`` (y2/x2 exclusive) -> normalised, for image ``shape (H, W)``."""
    h, w = tf.split(tf.cast(shape, tf.float32), 2)
    scale = tf.concat([h, w, h, w], axis=-1) - 1.0
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return (tf.cast(boxes, tf.float32) - shift) / scale


def denorm_boxes_graph(boxes, shape):
    """Inverse of :func:`norm_boxes_graph`; returns int32 pixel boxes."""
    h, w = tf.split(tf.cast(shape, tf.float32), 2)
    scale = tf.concat([h, w, h, w], axis=-1) - 1.0
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return tf.cast(tf.round(boxes * scale + shift), tf.int32)


def parse_image_meta_graph(meta):
    """Split ``meta [B, 12 + NUM_CLASSES]`` (see ``data.compose_image_meta``) into a dict of tensors."""
    return {
        "image_id": meta[:, 0],
        "original_image_shape": meta[:, 1:4],
        "image_shape": meta[:, 4:7],
        "window": meta[:, 7:11],  # (y1, x1, y2, x2) pixels of the molded image
        "scale": meta[:, 11],
        "active_class_ids": meta[:, 12:],
    }


# ---------------------------------------------------------------------------------------------
# Small utility layers (the functional API cannot take raw tf ops on symbolic tensors)
# ---------------------------------------------------------------------------------------------

class NormBoxes(keras.layers.Layer):
    """``[boxes [B, N, 4] pixels, image [B, H, W, C]] -> boxes [B, N, 4]`` normalised to the image."""

    def call(self, inputs):
        boxes, image = inputs
        return norm_boxes_graph(boxes, tf.shape(image)[1:3])


class ActiveClassIds(keras.layers.Layer):
    """``image_meta [B, META] -> active_class_ids [B, NUM_CLASSES]``."""

    def call(self, meta):
        return parse_image_meta_graph(meta)["active_class_ids"]


class Identity(keras.layers.Layer):
    """Named pass-through (``output_rois`` and friends)."""

    def call(self, x):
        return tf.identity(x)


# ---------------------------------------------------------------------------------------------
# Region proposal network
# ---------------------------------------------------------------------------------------------

def build_rpn_model(anchor_stride: int, anchors_per_location: int, depth: int, shared_depth: int = 512):
    """The RPN applied to each pyramid level with shared weights (``rpn_model``).

    Input ``[B, H, W, depth]``; outputs ``rpn_class_logits [B, H*W*A, 2]``,
    ``rpn_probs [B, H*W*A, 2]`` (softmax, index 1 = object) and
    ``rpn_bbox [B, H*W*A, (dy, dx, log(dh), log(dw))]``, A = anchors per location.
    """
    feature_map = keras.Input(shape=(None, None, depth), name="input_rpn_feature_map")
    shared = keras.layers.Conv2D(shared_depth, (3, 3), padding="same", activation="relu",
                                 strides=anchor_stride, name="rpn_conv_shared")(feature_map)
    x = keras.layers.Conv2D(2 * anchors_per_location, (1, 1), padding="valid", activation="linear",
                            name="rpn_class_raw")(shared)
    logits = keras.layers.Reshape((-1, 2))(x)
    probs = keras.layers.Activation("softmax", name="rpn_class_xxx")(logits)
    x = keras.layers.Conv2D(anchors_per_location * 4, (1, 1), padding="valid", activation="linear",
                            name="rpn_bbox_pred")(shared)
    bbox = keras.layers.Reshape((-1, 4))(x)
    return keras.Model(feature_map, [logits, probs, bbox], name="rpn_model")


class ProposalLayer(keras.layers.Layer):
    """Turn RPN scores and deltas into proposals.

    Inputs: ``rpn_probs [B, A, 2]``, ``rpn_bbox [B, A, 4]`` (deltas divided by RPN_BBOX_STD_DEV),
    ``anchors [B, A, (y1, x1, y2, x2)]`` normalised. Keeps the ``PRE_NMS_LIMIT`` best anchors,
    applies deltas, clips to [0, 1], runs NMS (``RPN_NMS_THRESHOLD``) and zero-pads to
    ``proposal_count``. Output ``[B, proposal_count, (y1, x1, y2, x2)]`` normalised.
    """

    def __init__(self, proposal_count, nms_threshold, config=None, pre_nms_limit=None,
                 rpn_bbox_std_dev=None, **kwargs):
        super().__init__(**kwargs)
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(pre_nms_limit if pre_nms_limit is not None else config.PRE_NMS_LIMIT)
        std = rpn_bbox_std_dev if rpn_bbox_std_dev is not None else config.RPN_BBOX_STD_DEV
        self.rpn_bbox_std_dev = np.reshape(np.asarray(std, np.float32), (1, 1, 4))

    def call(self, inputs):
        probs, deltas, anchors = inputs
        scores = probs[:, :, 1]
        deltas = deltas * self.rpn_bbox_std_dev
        k = tf.minimum(self.pre_nms_limit, tf.shape(anchors)[1])
        top_scores, ix = tf.math.top_k(scores, k, sorted=True)
        deltas = tf.gather(deltas, ix, batch_dims=1)
        anchors = tf.gather(anchors, ix, batch_dims=1)
        window = tf.constant([0.0, 0.0, 1.0, 1.0])

        def one(args):
            s, d, a = args
            boxes = clip_boxes_graph(apply_box_deltas_graph(a, d), window)
            keep = tf.image.non_max_suppression(boxes, s, self.proposal_count, self.nms_threshold)
            props = tf.gather(boxes, keep)
            pad = tf.maximum(self.proposal_count - tf.shape(props)[0], 0)
            return tf.pad(props, [(0, pad), (0, 0)])

        out = tf.map_fn(one, (top_scores, deltas, anchors),
                        fn_output_signature=tf.TensorSpec((self.proposal_count, 4), tf.float32))
        return out

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.proposal_count, 4)


# ---------------------------------------------------------------------------------------------
# ROIAlign
# ---------------------------------------------------------------------------------------------

def log2_graph(x):
    return tf.math.log(x) / tf.math.log(2.0)


def roi_pyramid_levels(boxes, image_shape):
    """FPN level (2..5) of each box: ``4 + round(log2(sqrt(h * w) / (224 / sqrt(H * W))))``.

    ``boxes [B, N, 4]`` normalised, ``image_shape [2 or 3]`` of the molded image. Returns [B, N] int32.
    """
    y1, x1, y2, x2 = tf.split(boxes, 4, axis=2)
    h = y2 - y1
    w = x2 - x1
    image_area = tf.cast(image_shape[0] * image_shape[1], tf.float32)
    level = log2_graph(tf.sqrt(h * w) / (224.0 / tf.sqrt(image_area)))
    level = tf.minimum(5, tf.maximum(2, 4 + tf.cast(tf.round(level), tf.int32)))
    return tf.squeeze(level, 2)


class PyramidROIAlign(keras.layers.Layer):
    """Crop-and-resize ROIs from the pyramid level matching their size.

    Inputs: ``[boxes [B, N, (y1, x1, y2, x2)] normalised, image_meta [B, META], P2, P3, P4, P5]``.
    Output ``[B, N, pool_h, pool_w, C]``, in the order of ``boxes``. Bilinear sampling as
    ``tf.image.crop_and_resize`` (sample i of a crop lies at ``y1 * (H - 1) + i * (y2 - y1) * (H - 1) /
    (pool_h - 1)`` in feature pixels).
    """

    def __init__(self, pool_shape, **kwargs):
        super().__init__(**kwargs)
        self.pool_shape = tuple(int(v) for v in pool_shape)

    def call(self, inputs):
        boxes, image_meta = inputs[0], inputs[1]
        feature_maps = inputs[2:]
        image_shape = parse_image_meta_graph(image_meta)["image_shape"][0]
        roi_level = roi_pyramid_levels(boxes, image_shape)
        pooled = []
        box_to_level = []
        for i, level in enumerate(range(2, 6)):
            ix = tf.where(tf.equal(roi_level, level))  # [n, (batch, box)]
            level_boxes = tf.stop_gradient(tf.gather_nd(boxes, ix))
            box_indices = tf.stop_gradient(tf.cast(ix[:, 0], tf.int32))
            box_to_level.append(ix)
            pooled.append(tf.image.crop_and_resize(feature_maps[i], level_boxes, box_indices,
                                                   self.pool_shape, method="bilinear"))
        pooled = tf.concat(pooled, axis=0)
        box_to_level = tf.concat(box_to_level, axis=0)
        # Restore the original order: sort by batch index then box index.
        n_boxes = tf.cast(tf.shape(boxes)[1], tf.int64)
        sort_key = box_to_level[:, 0] * n_boxes + box_to_level[:, 1]
        order = tf.argsort(sort_key)
        pooled = tf.gather(pooled, order)
        shape = tf.concat([tf.shape(boxes)[:2], tf.shape(pooled)[1:]], axis=0)
        return tf.reshape(pooled, shape)

    def compute_output_shape(self, input_shape):
        return input_shape[0][:2] + self.pool_shape + (input_shape[2][-1],)


# ---------------------------------------------------------------------------------------------
# Training targets
# ---------------------------------------------------------------------------------------------

def detection_targets_graph(proposals, gt_class_ids, gt_boxes, gt_masks, config, seed=None):
    """Sample ROIs and build their targets for one image.

    proposals: [P, (y1, x1, y2, x2)] normalised, zero-padded.
    gt_class_ids: [G] int32 (0 = padding; negative = crowd box, never positive, excludes negatives).
    gt_boxes: [G, (y1, x1, y2, x2)] normalised, zero-padded.
    gt_masks: [h, w, G] bool (mini masks in the gt box frame when USE_MINI_MASK, else image masks).

    Returns, zero-padded to TRAIN_ROIS_PER_IMAGE = T:
    rois [T, 4] normalised (positives first), class_ids [T] int32,
    deltas [T, (dy, dx, log(dh), log(dw))] divided by BBOX_STD_DEV, masks [T, MASK_H, MASK_W] float
    (0/1) of the positives.
    """
    T = config.TRAIN_ROIS_PER_IMAGE
    proposals, _ = trim_zeros_graph(proposals)
    gt_boxes, non_zeros = trim_zeros_graph(gt_boxes)
    gt_class_ids = tf.boolean_mask(gt_class_ids, non_zeros)
    gt_masks = tf.gather(gt_masks, tf.where(non_zeros)[:, 0], axis=2)

    crowd_ix = tf.where(gt_class_ids < 0)[:, 0]
    non_crowd_ix = tf.where(gt_class_ids > 0)[:, 0]
    crowd_boxes = tf.gather(gt_boxes, crowd_ix)
    gt_class_ids = tf.gather(gt_class_ids, non_crowd_ix)
    gt_boxes = tf.gather(gt_boxes, non_crowd_ix)
    gt_masks = tf.gather(gt_masks, non_crowd_ix, axis=2)

    overlaps = overlaps_graph(proposals, gt_boxes)  # [P, G]
    crowd_overlaps = overlaps_graph(proposals, crowd_boxes)
    crowd_iou_max = tf.reduce_max(tf.concat([crowd_overlaps, tf.zeros_like(proposals[:, :1])], 1), axis=1)
    no_crowd = crowd_iou_max < 0.001
    roi_iou_max = tf.reduce_max(tf.concat([overlaps, tf.zeros_like(proposals[:, :1])], 1), axis=1)
    positive_indices = tf.where(roi_iou_max >= 0.5)[:, 0]
    negative_indices = tf.where(tf.logical_and(roi_iou_max < 0.5, no_crowd))[:, 0]

    positive_count = int(T * config.ROI_POSITIVE_RATIO)
    positive_indices = tf.random.shuffle(positive_indices, seed=seed)[:positive_count]
    positive_count = tf.shape(positive_indices)[0]
    ratio = 1.0 / config.ROI_POSITIVE_RATIO
    negative_count = tf.cast(ratio * tf.cast(positive_count, tf.float32), tf.int32) - positive_count
    negative_indices = tf.random.shuffle(negative_indices, seed=seed)[:negative_count]

    positive_rois = tf.gather(proposals, positive_indices)
    negative_rois = tf.gather(proposals, negative_indices)
    positive_overlaps = tf.gather(overlaps, positive_indices)
    assignment = tf.cond(tf.shape(positive_overlaps)[1] > 0,
                         lambda: tf.argmax(positive_overlaps, axis=1),
                         lambda: tf.zeros([0], tf.int64))
    roi_gt_boxes = tf.gather(gt_boxes, assignment)
    roi_gt_class_ids = tf.gather(gt_class_ids, assignment)
    deltas = box_refinement_graph(positive_rois, roi_gt_boxes)
    deltas = deltas / np.asarray(config.BBOX_STD_DEV, np.float32)

    masks_t = tf.expand_dims(tf.transpose(tf.cast(gt_masks, tf.float32), [2, 0, 1]), -1)  # [G, h, w, 1]
    roi_masks = tf.gather(masks_t, assignment)
    boxes = positive_rois
    if config.USE_MINI_MASK:
        y1, x1, y2, x2 = tf.split(positive_rois, 4, axis=1)
        gy1, gx1, gy2, gx2 = tf.split(roi_gt_boxes, 4, axis=1)
        gh = gy2 - gy1
        gw = gx2 - gx1
        boxes = tf.concat([(y1 - gy1) / gh, (x1 - gx1) / gw, (y2 - gy1) / gh, (x2 - gx1) / gw], axis=1)
    box_ids = tf.range(tf.shape(roi_masks)[0])
    masks = tf.image.crop_and_resize(roi_masks, boxes, box_ids, tuple(config.MASK_SHAPE))
    masks = tf.round(tf.squeeze(masks, axis=3))

    rois = tf.concat([positive_rois, negative_rois], axis=0)
    n_neg = tf.shape(negative_rois)[0]
    pad = tf.maximum(T - tf.shape(rois)[0], 0)
    rois = tf.pad(rois, [(0, pad), (0, 0)])
    roi_gt_class_ids = tf.pad(roi_gt_class_ids, [(0, n_neg + pad)])
    deltas = tf.pad(deltas, [(0, n_neg + pad), (0, 0)])
    masks = tf.pad(masks, [(0, n_neg + pad), (0, 0), (0, 0)])
    return rois, tf.cast(roi_gt_class_ids, tf.int32), deltas, masks


class DetectionTargetLayer(keras.layers.Layer):
    """Batched :func:`detection_targets_graph`.

    Inputs ``[proposals [B, P, 4], gt_class_ids [B, G], gt_boxes [B, G, 4] normalised,
    gt_masks [B, h, w, G]]``; outputs ``rois [B, T, 4]``, ``target_class_ids [B, T]``,
    ``target_deltas [B, T, 4]``, ``target_mask [B, T, MASK_H, MASK_W]``.
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config

    def call(self, inputs):
        proposals, gt_class_ids, gt_boxes, gt_masks = inputs
        T = self.config.TRAIN_ROIS_PER_IMAGE
        mh, mw = self.config.MASK_SHAPE
        out = tf.map_fn(
            lambda a: detection_targets_graph(a[0], a[1], a[2], a[3], self.config),
            (proposals, tf.cast(gt_class_ids, tf.int32), tf.cast(gt_boxes, tf.float32), gt_masks),
            fn_output_signature=(tf.TensorSpec((T, 4), tf.float32), tf.TensorSpec((T,), tf.int32),
                                 tf.TensorSpec((T, 4), tf.float32), tf.TensorSpec((T, mh, mw), tf.float32)))
        return [tf.stop_gradient(o) for o in out]

    def compute_output_shape(self, input_shape):
        b = input_shape[0][0]
        T = self.config.TRAIN_ROIS_PER_IMAGE
        mh, mw = self.config.MASK_SHAPE
        return [(b, T, 4), (b, T), (b, T, 4), (b, T, mh, mw)]


# ---------------------------------------------------------------------------------------------
# Detection (inference)
# ---------------------------------------------------------------------------------------------

def refine_detections_graph(rois, probs, deltas, window, config):
    """Final detections of one image.

    rois: [N, (y1, x1, y2, x2)] normalised; probs: [N, NUM_CLASSES]; deltas: [N, NUM_CLASSES, 4]
    (divided by BBOX_STD_DEV); window: (y1, x1, y2, x2) normalised image area without padding.
    Keeps the best non-background class of each ROI when its score >= DETECTION_MIN_CONFIDENCE,
    refines and clips the box, runs NMS per class (DETECTION_NMS_THRESHOLD) and keeps the
    DETECTION_MAX_INSTANCES best. Returns ``[DETECTION_MAX_INSTANCES, (y1, x1, y2, x2, class_id,
    score)]`` zero-padded, sorted by score.
    """
    max_inst = config.DETECTION_MAX_INSTANCES
    class_ids = tf.argmax(probs, axis=1, output_type=tf.int32)
    idx = tf.stack([tf.range(tf.shape(probs)[0]), class_ids], axis=1)
    class_scores = tf.gather_nd(probs, idx)
    deltas_specific = tf.gather_nd(deltas, idx)
    refined = apply_box_deltas_graph(rois, deltas_specific * np.asarray(config.BBOX_STD_DEV, np.float32))
    refined = clip_boxes_graph(refined, window)

    keep = class_ids > 0
    if config.DETECTION_MIN_CONFIDENCE:
        keep = tf.logical_and(keep, class_scores >= config.DETECTION_MIN_CONFIDENCE)
    # ROIs that were zero padding have zero area after clipping; never report them.
    keep = tf.logical_and(keep, tf.reduce_sum(tf.abs(rois), axis=1) > 0)
    keep_ix = tf.where(keep)[:, 0]
    boxes = tf.gather(refined, keep_ix)
    scores = tf.gather(class_scores, keep_ix)
    cls = tf.gather(class_ids, keep_ix)
    # Per-class NMS in one call: shift each class to its own region so boxes of different
    # classes never overlap (coordinates lie in [0, 1]).
    offset = tf.cast(cls, tf.float32)[:, None] * 2.0
    nms_keep = tf.image.non_max_suppression(boxes + offset, scores, max_inst,
                                            config.DETECTION_NMS_THRESHOLD)
    det = tf.concat([tf.gather(boxes, nms_keep), tf.cast(tf.gather(cls, nms_keep), tf.float32)[:, None],
                     tf.gather(scores, nms_keep)[:, None]], axis=1)
    pad = max_inst - tf.shape(det)[0]
    return tf.pad(det, [(0, pad), (0, 0)])


class DetectionLayer(keras.layers.Layer):
    """Inputs ``[rois [B, N, 4], mrcnn_class [B, N, C], mrcnn_bbox [B, N, C, 4], image_meta [B, META]]``;
    output ``[B, DETECTION_MAX_INSTANCES, (y1, x1, y2, x2, class_id, score)]`` in normalised
    coordinates of the molded image (zero rows are padding)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config

    def call(self, inputs):
        rois, probs, deltas, image_meta = inputs
        m = parse_image_meta_graph(image_meta)
        image_shape = m["image_shape"][0]
        windows = norm_boxes_graph(m["window"], image_shape[:2])
        n = self.config.DETECTION_MAX_INSTANCES
        return tf.map_fn(lambda a: refine_detections_graph(a[0], a[1], a[2], a[3], self.config),
                         (rois, probs, deltas, windows),
                         fn_output_signature=tf.TensorSpec((n, 6), tf.float32))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.config.DETECTION_MAX_INSTANCES, 6)


# ---------------------------------------------------------------------------------------------
# Heads
# ---------------------------------------------------------------------------------------------

class TimeDistributed(keras.layers.TimeDistributed):
    """Apply a layer to every ROI: ``[B, T, ...] -> [B * T, ...] -> layer -> [B, T, ...]``.

    Keras 3's ``TimeDistributed`` unrolls a Python loop over a static time axis (one copy of the
    layer per ROI: slow graphs, per-ROI batch-norm statistics); this subclass folds the ROI axis
    into the batch as Keras 2 did, so batch normalisation sees all ROIs of the batch. Weights
    and layer names are those of the wrapped layer, as in Keras.
    """

    def call(self, inputs, training=None, mask=None):
        shape = tf.shape(inputs)
        folded = tf.reshape(inputs, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))
        kwargs = {"training": training} if self.layer._call_has_training_arg else {}
        out = self.layer.call(folded, **kwargs)
        out_shape = tf.shape(out)
        return tf.reshape(out, tf.concat([shape[:2], out_shape[1:]], axis=0))


class FullConv2D(keras.layers.Conv2D):
    """A ``valid`` convolution whose kernel covers the whole input (matterport's
    ``mrcnn_class_conv1``: a 7x7 kernel on 7x7 pooled ROIs), computed as one matrix product.

    Same weights, shapes and result as ``Conv2D``; TensorFlow's CPU gradient of such a convolution
    is pathologically slow (37 s against 0.6 s for the matrix product, 200 ROIs of 7x7x256 to
    1024 channels), which made a ResNet50 training step take a minute.
    Input ``[N, kh, kw, C]`` (checked), output ``[N, 1, 1, filters]``.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        if kwargs.get("padding", "valid") != "valid" or kwargs.get("strides", (1, 1)) not in (1, (1, 1)):
            raise ValueError("FullConv2D: padding must be 'valid' and strides 1")
        super().__init__(filters, kernel_size, **kwargs)

    def call(self, inputs):
        kh, kw = self.kernel_size
        channels = self.kernel.shape[2]
        x = tf.ensure_shape(inputs, [None, kh, kw, channels])
        y = tf.matmul(tf.reshape(x, [-1, kh * kw * channels]), tf.reshape(self.kernel, [kh * kw * channels, -1]))
        if self.use_bias:
            y = y + self.bias
        if self.activation is not None:
            y = self.activation(y)
        return tf.reshape(y, [-1, 1, 1, self.filters])


class PoolSqueeze(keras.layers.Layer):
    """``[B, N, 1, 1, C] -> [B, N, C]``."""

    def call(self, x):
        return tf.squeeze(tf.squeeze(x, 3), 2)

    def compute_output_shape(self, input_shape):
        return input_shape[:2] + input_shape[4:]


class BBoxReshape(keras.layers.Layer):
    """``[B, N, C * 4] -> [B, N, C, 4]``."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def call(self, x):
        s = tf.shape(x)
        return tf.reshape(x, [s[0], s[1], self.num_classes, 4])

    def compute_output_shape(self, input_shape):
        return input_shape[:2] + (self.num_classes, 4)


def fpn_classifier_graph(rois, feature_maps, image_meta, pool_size, num_classes, train_bn=True,
                         fc_layers_size=1024, norm="batch"):
    """Classifier and box-regression head (matterport names).

    rois [B, N, 4] normalised; feature_maps [P2, P3, P4, P5]. Returns
    ``mrcnn_class_logits [B, N, C]``, ``mrcnn_probs [B, N, C]``, ``mrcnn_bbox [B, N, C, 4]``.
    """
    td = TimeDistributed
    x = PyramidROIAlign([pool_size, pool_size], name="roi_align_classifier")([rois, image_meta] + feature_maps)
    x = td(FullConv2D(fc_layers_size, (pool_size, pool_size), padding="valid"), name="mrcnn_class_conv1")(x)
    x = td(norm_layer(norm, train_bn), name="mrcnn_class_bn1")(x)
    x = keras.layers.Activation("relu")(x)
    x = td(keras.layers.Conv2D(fc_layers_size, (1, 1)), name="mrcnn_class_conv2")(x)
    x = td(norm_layer(norm, train_bn), name="mrcnn_class_bn2")(x)
    x = keras.layers.Activation("relu")(x)
    shared = PoolSqueeze(name="pool_squeeze")(x)
    logits = td(keras.layers.Dense(num_classes), name="mrcnn_class_logits")(shared)
    probs = td(keras.layers.Activation("softmax"), name="mrcnn_class")(logits)
    x = td(keras.layers.Dense(num_classes * 4, activation="linear"), name="mrcnn_bbox_fc")(shared)
    bbox = BBoxReshape(num_classes, name="mrcnn_bbox")(x)
    return logits, probs, bbox


class CompactRois(keras.layers.Layer):
    """Keep the ROIs of real detections only: ``[pooled [B, N, h, w, C], detections [B, N, 6]]`` ->
    ``[pooled [1, M + 1, h, w, C], flat_index [M]]`` where M counts rows with class_id > 0 and
    ``flat_index = b * N + n``. Lets the inference mask head skip zero-padded detections.

    One all-zero ROI is always appended, so the mask head never sees an empty batch: some kernels
    (oneDNN's batch normalisation, the default on CPUs with AVX-512) fail on a zero-size input when an
    image has no detection. :class:`ScatterRois` drops it again."""

    def call(self, inputs):
        pooled, detections = inputs
        valid = detections[:, :, 4] > 0
        n = tf.shape(detections)[1]
        ix = tf.where(valid)
        flat = tf.cast(ix[:, 0], tf.int32) * n + tf.cast(ix[:, 1], tf.int32)
        kept = tf.gather_nd(pooled, ix)
        kept = tf.concat([kept, tf.zeros_like(pooled[0, :1])], axis=0)
        return [tf.expand_dims(kept, 0), flat]

    def compute_output_shape(self, input_shape):
        return [(1, None) + tuple(input_shape[0][2:]), (None,)]


class ScatterRois(keras.layers.Layer):
    """Inverse of :class:`CompactRois`: ``[values [1, M + 1, ...], flat_index [M], detections [B, N, 6]]``
    -> ``[B, N, ...]`` with zeros at the padded rows (the appended dummy row is dropped)."""

    def call(self, inputs):
        values, flat, detections = inputs
        values = values[0, :tf.shape(flat)[0]]
        b, n = tf.shape(detections)[0], tf.shape(detections)[1]
        shape = tf.concat([[b * n], tf.shape(values)[1:]], axis=0)
        out = tf.scatter_nd(tf.expand_dims(flat, 1), values, shape)
        return tf.reshape(out, tf.concat([[b, n], tf.shape(values)[1:]], axis=0))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[2][:2]) + tuple(input_shape[0][2:])


def build_fpn_mask_graph(rois, feature_maps, image_meta, pool_size, num_classes, train_bn=True,
                         conv_size=256, detections=None, norm="batch"):
    """Mask head (matterport names): 4 x (3x3 conv, BN, ReLU), 2x deconvolution, per-class sigmoid.

    Returns ``[B, N, 2 * pool_size, 2 * pool_size, NUM_CLASSES]`` probabilities.
    ``detections [B, N, 6]`` given (inference): the convolutions run on the real detections only
    (class_id > 0) and padded rows get zeros; matterport ran them on all N = DETECTION_MAX_INSTANCES
    rows, which is most of the inference FLOPs. Valid when batch normalisation is in inference
    mode or the norm is per ROI (group normalisation): each ROI is then computed independently.
    """
    td = TimeDistributed
    x = PyramidROIAlign([pool_size, pool_size], name="roi_align_mask")([rois, image_meta] + feature_maps)
    flat = None
    if detections is not None:
        x, flat = CompactRois(name="mrcnn_mask_compact")([x, detections])
    for i in range(1, 5):
        x = td(keras.layers.Conv2D(conv_size, (3, 3), padding="same"), name=f"mrcnn_mask_conv{i}")(x)
        x = td(norm_layer(norm, train_bn), name=f"mrcnn_mask_bn{i}")(x)
        x = keras.layers.Activation("relu")(x)
    x = td(keras.layers.Conv2DTranspose(conv_size, (2, 2), strides=2, activation="relu"),
           name="mrcnn_mask_deconv")(x)
    x = td(keras.layers.Conv2D(num_classes, (1, 1), strides=1, activation="sigmoid"), name="mrcnn_mask")(x)
    if detections is not None:
        x = ScatterRois(name="mrcnn_mask_scatter")([x, flat, detections])
    return x
