"""The five Mask R-CNN losses (TensorFlow), matterport's definitions.

Each returns a scalar float32; a loss with nothing to average (no anchors of the needed kind, no
positive ROIs) is 0, never NaN.
"""

from __future__ import annotations

import tensorflow as tf

LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")


def smooth_l1(y_true, y_pred):
    """Elementwise smooth L1 (Huber with delta 1): ``0.5 d^2`` if ``|d| < 1`` else ``|d| - 0.5``."""
    diff = tf.abs(y_true - y_pred)
    less = tf.cast(diff < 1.0, tf.float32)
    return less * 0.5 * diff ** 2 + (1.0 - less) * (diff - 0.5)


def _mean_or_zero(x):
    return tf.cond(tf.size(x) > 0, lambda: tf.reduce_mean(x), lambda: tf.constant(0.0))


def rpn_class_loss(rpn_match, rpn_class_logits):
    """Anchor classifier loss.

    rpn_match: [B, A, 1] int (1 positive, -1 negative, 0 neutral: ignored).
    rpn_class_logits: [B, A, 2] (index 1 = object). Mean cross-entropy over non-neutral anchors.
    """
    rpn_match = tf.squeeze(tf.cast(rpn_match, tf.int32), -1)
    anchor_class = tf.cast(tf.equal(rpn_match, 1), tf.int32)
    ix = tf.where(tf.not_equal(rpn_match, 0))
    logits = tf.gather_nd(rpn_class_logits, ix)
    labels = tf.gather_nd(anchor_class, ix)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return _mean_or_zero(loss)


def rpn_bbox_loss(target_bbox, rpn_match, rpn_bbox):
    """Anchor box regression loss over positive anchors.

    target_bbox: [B, R, 4] deltas of the positive anchors, in anchor order, zero-padded
    (R = RPN_TRAIN_ANCHORS_PER_IMAGE); rpn_match: [B, A, 1]; rpn_bbox: [B, A, 4] predicted deltas.
    """
    rpn_match = tf.squeeze(tf.cast(rpn_match, tf.int32), -1)
    r = tf.shape(target_bbox)[1]
    positive = tf.equal(rpn_match, 1)
    # Rank of each positive anchor within its image; target rows exist for the first R only.
    rank = tf.cumsum(tf.cast(positive, tf.int32), axis=1) - 1
    ix = tf.where(tf.logical_and(positive, rank < r))
    pred = tf.gather_nd(rpn_bbox, ix)
    counts = tf.minimum(tf.reduce_sum(tf.cast(positive, tf.int32), axis=1), r)
    target = tf.boolean_mask(target_bbox, tf.sequence_mask(counts, r))
    return _mean_or_zero(smooth_l1(target, pred))


def mrcnn_class_loss(target_class_ids, pred_class_logits, active_class_ids):
    """Classifier head loss.

    target_class_ids: [B, T] int (0 = background or padding); pred_class_logits: [B, T, C];
    active_class_ids: [B, C] 1 for classes of the image's data set. Predictions of classes not in
    the data set are not penalised (matterport): the loss is averaged over the ROIs whose
    predicted class is active.
    """
    target_class_ids = tf.cast(target_class_ids, tf.int32)
    pred_ids = tf.argmax(pred_class_logits, axis=2, output_type=tf.int32)
    pred_active = tf.cast(tf.gather(active_class_ids[0], pred_ids), tf.float32)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target_class_ids, logits=pred_class_logits)
    return tf.math.divide_no_nan(tf.reduce_sum(loss * pred_active), tf.reduce_sum(pred_active))


def mrcnn_bbox_loss(target_bbox, target_class_ids, pred_bbox):
    """Box head loss over positive ROIs, for the true class only.

    target_bbox: [B, T, 4]; target_class_ids: [B, T]; pred_bbox: [B, T, C, 4].
    """
    target_class_ids = tf.reshape(tf.cast(target_class_ids, tf.int32), (-1,))
    target_bbox = tf.reshape(target_bbox, (-1, 4))
    pred_bbox = tf.reshape(pred_bbox, (-1, tf.shape(pred_bbox)[2], 4))
    pos = tf.where(target_class_ids > 0)[:, 0]
    pos_cls = tf.gather(target_class_ids, pos)
    idx = tf.stack([tf.cast(pos, tf.int32), pos_cls], axis=1)
    return _mean_or_zero(smooth_l1(tf.gather(target_bbox, pos), tf.gather_nd(pred_bbox, idx)))


def mrcnn_mask_loss(target_masks, target_class_ids, pred_masks):
    """Mask head loss: binary cross-entropy of the true class's mask over positive ROIs.

    target_masks: [B, T, h, w] 0/1; target_class_ids: [B, T]; pred_masks: [B, T, h, w, C] sigmoid.
    """
    target_class_ids = tf.reshape(tf.cast(target_class_ids, tf.int32), (-1,))
    ts = tf.shape(target_masks)
    target_masks = tf.reshape(target_masks, (-1, ts[2], ts[3]))
    ps = tf.shape(pred_masks)
    pred_masks = tf.reshape(pred_masks, (-1, ps[2], ps[3], ps[4]))
    pred_masks = tf.transpose(pred_masks, [0, 3, 1, 2])  # [N, C, h, w]
    pos = tf.where(target_class_ids > 0)[:, 0]
    pos_cls = tf.gather(target_class_ids, pos)
    idx = tf.stack([tf.cast(pos, tf.int32), pos_cls], axis=1)
    y_true = tf.gather(target_masks, pos)
    y_pred = tf.clip_by_value(tf.gather_nd(pred_masks, idx), 1e-7, 1.0 - 1e-7)
    bce = -(y_true * tf.math.log(y_pred) + (1.0 - y_true) * tf.math.log(1.0 - y_pred))
    return _mean_or_zero(bce)
