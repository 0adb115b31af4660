"""NumPy utilities of Mask R-CNN with matterport's names and semantics, and the ``Dataset`` base.

Conventions used throughout:

* boxes are ``[N, (y1, x1, y2, x2)]`` in pixels of the image they refer to; ``y2`` and ``x2`` lie
  one past the last pixel (exclusive), so a one-pixel mask at (3, 5) has box ``(3, 5, 4, 6)``;
* box deltas are ``[N, (dy, dx, log(dh), log(dw))]``: centre shifts relative to the box size and
  log size ratios;
* masks are ``[H, W, N]`` bool, one channel per instance;
* class id 0 is the background.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


# ---------------------------------------------------------------------------------------- boxes
def extract_bboxes(mask: np.ndarray) -> np.ndarray:
    """Bounding boxes of instance masks.

    mask: [H, W, N] (any dtype; non-zero is inside).
    Returns [N, (y1, x1, y2, x2)] int32 in the mask's pixels, y2/x2 exclusive; an empty mask
    gives (0, 0, 0, 0).
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"extract_bboxes expects masks [H, W, N], got shape {mask.shape}")
    n = mask.shape[-1]
    boxes = np.zeros([n, 4], dtype=np.int32)
    for i in range(n):
        m = mask[:, :, i].astype(bool)
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        if rows.size:
            boxes[i] = [rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]
    return boxes


def compute_iou(box: np.ndarray, boxes: np.ndarray, box_area: float, boxes_area: np.ndarray) -> np.ndarray:
    """IoU of one box with many.

    box: (y1, x1, y2, x2); boxes: [N, (y1, x1, y2, x2)]; box_area: area of ``box``;
    boxes_area: [N] areas of ``boxes`` (passed in so callers compute them once).
    Returns [N] float; 0 where the union is empty.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    y1 = np.maximum(box[0], boxes[:, 0])
    y2 = np.minimum(box[2], boxes[:, 2])
    x1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[3], boxes[:, 3])
    intersection = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = box_area + np.asarray(boxes_area, dtype=np.float64) - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)
    return iou


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


_OVERLAPS_CHUNK = 1 << 20  # pairs above which compute_overlaps works in blocks of rows


def compute_overlaps(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU overlaps between two sets of boxes.

    boxes1: [N1, (y1, x1, y2, x2)]; boxes2: [N2, (y1, x1, y2, x2)], same image.
    Returns [N1, N2] float: overlaps[i, j] = IoU(boxes1[i], boxes2[j]).
    """
    b1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    if b1.shape[0] == 0 or b2.shape[0] == 0:
        return np.zeros((b1.shape[0], b2.shape[0]))
    if b1.shape[0] * b2.shape[0] > _OVERLAPS_CHUNK:
        # e.g. 260k anchors x 100 boxes: blocks of rows keep the temporaries small
        rows = max(1, _OVERLAPS_CHUNK // b2.shape[0])
        return np.concatenate([_dense_overlaps(b1[i : i + rows], b2) for i in range(0, b1.shape[0], rows)])
    return _dense_overlaps(b1, b2)


def _dense_overlaps(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    y1 = np.maximum(b1[:, None, 0], b2[None, :, 0])
    x1 = np.maximum(b1[:, None, 1], b2[None, :, 1])
    y2 = np.minimum(b1[:, None, 2], b2[None, :, 2])
    x2 = np.minimum(b1[:, None, 3], b2[None, :, 3])
    intersection = np.maximum(y2 - y1, 0) * np.maximum(x2 - x1, 0)
    union = _areas(b1)[:, None] + _areas(b2)[None, :] - intersection
    out = np.zeros_like(intersection)
    np.divide(intersection, union, out=out, where=union > 0)
    return out


def compute_overlaps_masks(masks1: np.ndarray, masks2: np.ndarray) -> np.ndarray:
    """IoU overlaps between two sets of masks.

    masks1: [H, W, N1]; masks2: [H, W, N2] (bool, or float thresholded at 0.5).
    Returns [N1, N2] float; 0 for pairs whose union is empty.
    """
    masks1 = np.asarray(masks1)
    masks2 = np.asarray(masks2)
    n1, n2 = masks1.shape[-1], masks2.shape[-1]
    if n1 == 0 or n2 == 0:
        return np.zeros((n1, n2))
    m1 = (masks1 > 0.5).reshape(-1, n1).astype(np.float64)
    m2 = (masks2 > 0.5).reshape(-1, n2).astype(np.float64)
    intersections = m1.T @ m2
    union = m1.sum(axis=0)[:, None] + m2.sum(axis=0)[None, :] - intersections
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersections / np.where(union > 0, union, 1), 0.0)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    boxes: [N, (y1, x1, y2, x2)]; scores: [N]; threshold: a box whose IoU with an already
    kept, higher-scoring box is greater than ``threshold`` is dropped.
    Returns int32 indices of the kept boxes, highest score first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores)
    if boxes.shape[0] == 0:
        return np.zeros([0], dtype=np.int32)
    areas = _areas(boxes)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        iou = compute_iou(boxes[i], boxes[order[1:]], areas[i], areas[order[1:]])
        order = order[1:][iou <= threshold]
    return np.array(keep, dtype=np.int32)


def box_refinement(box: np.ndarray, gt_box: np.ndarray) -> np.ndarray:
    """Deltas that turn ``box`` into ``gt_box``.

    box, gt_box: [N, (y1, x1, y2, x2)] in the same pixels.
    Returns [N, (dy, dx, log(dh), log(dw))] float32 with dy = (gt_cy - cy) / h,
    dx = (gt_cx - cx) / w, dh = gt_h / h, dw = gt_w / w. Inverse of ``apply_box_deltas``.
    """
    box = np.asarray(box, dtype=np.float32).reshape(-1, 4)
    gt_box = np.asarray(gt_box, dtype=np.float32).reshape(-1, 4)
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    center_y = box[:, 0] + 0.5 * height
    center_x = box[:, 1] + 0.5 * width
    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    gt_center_y = gt_box[:, 0] + 0.5 * gt_height
    gt_center_x = gt_box[:, 1] + 0.5 * gt_width
    dy = (gt_center_y - center_y) / height
    dx = (gt_center_x - center_x) / width
    dh = np.log(gt_height / height)
    dw = np.log(gt_width / width)
    return np.stack([dy, dx, dh, dw], axis=1).astype(np.float32)


def apply_box_deltas(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Apply refinement deltas to boxes.

    boxes: [N, (y1, x1, y2, x2)]; deltas: [N, (dy, dx, log(dh), log(dw))].
    Returns [N, (y1, x1, y2, x2)] float32 in the same pixels as ``boxes``.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    deltas = np.asarray(deltas, dtype=np.float32).reshape(-1, 4)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height + deltas[:, 0] * height
    center_x = boxes[:, 1] + 0.5 * width + deltas[:, 1] * width
    height = height * np.exp(deltas[:, 2])
    width = width * np.exp(deltas[:, 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return np.stack([y1, x1, y1 + height, x1 + width], axis=1).astype(np.float32)


def norm_boxes(boxes: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Pixel boxes to normalised coordinates, as the graph uses them.

    boxes: [N, (y1, x1, y2, x2)] in pixels of an image of ``shape`` (height, width[, ...]),
    y2/x2 exclusive. Returns float32 boxes where (0, 0, 1, 1) is the whole image:
    (y1 / (h - 1), x1 / (w - 1), (y2 - 1) / (h - 1), (x2 - 1) / (w - 1)).
    """
    h, w = shape[:2]
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float32)
    shift = np.array([0, 0, 1, 1], dtype=np.float32)
    return ((np.asarray(boxes, dtype=np.float32) - shift) / scale).astype(np.float32)


def denorm_boxes(boxes: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Inverse of ``norm_boxes``: normalised boxes to int32 pixel boxes (y2/x2 exclusive)."""
    h, w = shape[:2]
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float32)
    shift = np.array([0, 0, 1, 1], dtype=np.float32)
    return np.around(np.asarray(boxes, dtype=np.float32) * scale + shift).astype(np.int32)


def trim_zeros(x: np.ndarray) -> np.ndarray:
    """Drop the all-zero rows of a padded [N, ...] array (e.g. padded boxes [N, 4])."""
    x = np.asarray(x)
    if x.shape[0] == 0:
        return x
    return x[~np.all(x.reshape(x.shape[0], -1) == 0, axis=1)]


# --------------------------------------------------------------------------------------- images
def _resize(array: np.ndarray, output_shape: Sequence[int], order: int = 1) -> np.ndarray:
    """skimage resize of the first two axes keeping the value range (no anti-aliasing)."""
    from skimage.transform import resize

    output_shape = tuple(int(s) for s in output_shape[:2]) + tuple(array.shape[2:])
    return resize(
        array,
        output_shape,
        order=order,
        mode="constant",
        cval=0,
        clip=True,
        preserve_range=True,
        anti_aliasing=False,
    )


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Give an image [H, W] or [H, W, C] exactly ``channels`` channels: [H, W, channels].

    Grayscale to RGB repeats the channel; RGB(A) to grayscale uses the ITU-R 601 luma weights
    (alpha dropped); RGBA to RGB drops alpha. The dtype is kept (rounded for integer dtypes).
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"expected an image [H, W] or [H, W, C], got shape {image.shape}")
    c = image.shape[2]
    if c == channels:
        return image
    if channels == 1:
        if c in (3, 4):
            gray = image[:, :, :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        elif c == 2:  # gray + alpha
            gray = image[:, :, 0].astype(np.float64)
        else:
            raise ValueError(f"cannot convert a {c}-channel image to grayscale")
        if np.issubdtype(image.dtype, np.integer):
            gray = np.clip(np.round(gray), np.iinfo(image.dtype).min, np.iinfo(image.dtype).max)
        return gray.astype(image.dtype)[:, :, None]
    if channels == 3:
        if c == 1 or c == 2:
            return np.repeat(image[:, :, :1], 3, axis=2)
        if c == 4:
            return image[:, :, :3]
    raise ValueError(f"cannot convert a {c}-channel image to {channels} channels")


def resize_image(
    image: np.ndarray,
    min_dim: int | None = None,
    max_dim: int | None = None,
    min_scale: float | None = None,
    mode: str = "square",
    rng: np.random.Generator | int | None = None,
):
    """Resize an image keeping its aspect ratio, as matterport's ``resize_image``.

    image: [H, W, C] (C may be 1) or [H, W]; the dtype and channel count are kept (integer
    images are rounded, not truncated).
    mode: "none" (unchanged), "square" (scale so the short side is at least ``min_dim`` and the
    long side at most ``max_dim``, then zero-pad to ``max_dim`` x ``max_dim``), "pad64" (scale up
    to ``min_dim`` if needed, pad each side to a multiple of 64; ``min_dim`` must be a multiple of
    64), "crop" (scale up to ``min_dim`` if needed, then a random ``min_dim`` x ``min_dim`` crop
    chosen with ``rng``).

    Returns ``(image, window, scale, padding, crop)``:
      window: (y1, x1, y2, x2) of the original image inside the result (pixels of the result,
        y2/x2 exclusive); padding: [(top, bottom), (left, right), (0, 0)] (two pairs for a 2-D
        image); scale: the factor applied; crop: (y, x, h, w) of the crop in the scaled image,
        or None.
    """
    image = np.asarray(image)
    image_dtype = image.dtype
    h, w = image.shape[:2]
    window = (0, 0, h, w)
    scale = 1
    padding = [(0, 0), (0, 0)] + [(0, 0)] * (image.ndim - 2)
    crop = None
    if mode not in ("none", "square", "pad64", "crop"):
        raise ValueError(f"resize_image: unknown mode {mode!r} (none, square, pad64, crop)")
    if mode == "none":
        return image, window, scale, padding, crop

    if min_dim:
        scale = max(1, min_dim / min(h, w))
    if min_scale and scale < min_scale:
        scale = min_scale
    if max_dim and mode == "square":
        image_max = max(h, w)
        if round(image_max * scale) > max_dim:
            scale = max_dim / image_max
    if scale != 1:
        resized = _resize(image.astype(np.float64), (round(h * scale), round(w * scale)))
        image = _cast_like(resized, image_dtype)

    h, w = image.shape[:2]
    if mode == "square":
        if not max_dim:
            raise ValueError("resize_image: square mode needs max_dim")
        top = (max_dim - h) // 2
        left = (max_dim - w) // 2
        padding = [(top, max_dim - h - top), (left, max_dim - w - left)] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (top, left, h + top, w + left)
    elif mode == "pad64":
        if min_dim and min_dim % 64:
            raise ValueError(f"resize_image: pad64 mode needs min_dim divisible by 64, got {min_dim}")
        pad_h = (-h) % 64
        pad_w = (-w) % 64
        top, left = pad_h // 2, pad_w // 2
        padding = [(top, pad_h - top), (left, pad_w - left)] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (top, left, h + top, w + left)
    elif mode == "crop":
        if not min_dim:
            raise ValueError("resize_image: crop mode needs min_dim")
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        y = int(generator.integers(0, h - min_dim + 1))
        x = int(generator.integers(0, w - min_dim + 1))
        crop = (y, x, min_dim, min_dim)
        image = image[y : y + min_dim, x : x + min_dim]
        window = (0, 0, min_dim, min_dim)
    return image.astype(image_dtype, copy=False), window, scale, padding, crop


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return values >= 0.5
    return values.astype(dtype)


def resize_mask(mask: np.ndarray, scale: float, padding, crop=None) -> np.ndarray:
    """Resize and pad (or crop) masks exactly as ``resize_image`` did to the image.

    mask: [H, W, N] (bool or integer); scale, padding, crop: as returned by ``resize_image``.
    Nearest-neighbour sampling at pixel centres (the same grid ``resize_image`` uses), output
    size ``round(H * scale)`` x ``round(W * scale)`` before padding/cropping.
    Returns [H', W', N] with the input dtype.
    """
    mask = np.asarray(mask)
    if scale != 1:
        h, w = mask.shape[:2]
        new_h, new_w = round(h * scale), round(w * scale)
        rows = np.minimum(((np.arange(new_h) + 0.5) * (h / new_h)).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(new_w) + 0.5) * (w / new_w)).astype(np.int64), w - 1)
        mask = mask[rows][:, cols]
    if crop is not None:
        y, x, h, w = crop
        mask = mask[y : y + h, x : x + w]
    else:
        pad = list(padding)[:2] + [(0, 0)] * (mask.ndim - 2)
        mask = np.pad(mask, pad, mode="constant", constant_values=0)
    return mask


def minimize_mask(bbox: np.ndarray, mask: np.ndarray, mini_shape: Sequence[int]) -> np.ndarray:
    """Crop each mask to its box and resize it to ``mini_shape`` (saves memory in training).

    bbox: [N, (y1, x1, y2, x2)] from ``extract_bboxes(mask)``; mask: [H, W, N].
    Returns [mini_h, mini_w, N] bool. Raises ValueError for an empty box.
    """
    mini_shape = tuple(int(s) for s in mini_shape[:2])
    mini_mask = np.zeros(mini_shape + (mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i][:4])
        m = mask[y1:y2, x1:x2, i].astype(np.float64)
        if m.size == 0:
            raise ValueError(f"minimize_mask: instance {i} has an empty box {tuple(bbox[i][:4])}")
        mini_mask[:, :, i] = np.around(_resize(m, mini_shape)).astype(bool)
    return mini_mask


def expand_mask(bbox: np.ndarray, mini_mask: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Inverse of ``minimize_mask``: paste each mini mask back into its box.

    bbox: [N, (y1, x1, y2, x2)] in pixels of an image of ``image_shape``; mini_mask:
    [mini_h, mini_w, N]. Returns [H, W, N] bool.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    mask = np.zeros((h, w, mini_mask.shape[-1]), dtype=bool)
    for i in range(mini_mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i][:4])
        if y2 <= y1 or x2 <= x1:
            continue
        m = _resize(mini_mask[:, :, i].astype(np.float64), (y2 - y1, x2 - x1))
        mask[y1:y2, x1:x2, i] = np.around(m).astype(bool)
    return mask


def unmold_mask(mask: np.ndarray, bbox: Sequence[int], image_shape: Sequence[int],
                threshold: float = 0.5) -> np.ndarray:
    """Paste a mask-head output into a full-size binary mask.

    mask: [h, w] float probabilities (e.g. 28 x 28); bbox: (y1, x1, y2, x2) int pixels of an
    image of ``image_shape`` (the box may extend past the image; it is clipped).
    Returns [H, W] bool, True where the resized probability is >= ``threshold``.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    full = np.zeros((h, w), dtype=bool)
    y1, x1, y2, x2 = (int(round(v)) for v in bbox[:4])
    if y2 <= y1 or x2 <= x1:
        return full
    resized = _resize(np.asarray(mask, dtype=np.float64), (y2 - y1, x2 - x1)) >= threshold
    cy1, cx1, cy2, cx2 = max(y1, 0), max(x1, 0), min(y2, h), min(x2, w)
    if cy2 <= cy1 or cx2 <= cx1:
        return full
    full[cy1:cy2, cx1:cx2] = resized[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
    return full


# -------------------------------------------------------------------------------------- anchors
def generate_anchors(scales, ratios, shape, feature_stride, anchor_stride) -> np.ndarray:
    """Anchors of one feature-map level.

    scales: anchor side(s) in image pixels (e.g. 32); ratios: width/height ratios (e.g.
    [0.5, 1, 2]); shape: (rows, cols) of the feature map; feature_stride: image pixels per
    feature-map cell; anchor_stride: anchors every ``anchor_stride`` cells.
    Anchor (scale s, ratio r) has height s / sqrt(r) and width s * sqrt(r), centred at
    (row * feature_stride, col * feature_stride). Order: row-major over cells, then ratios
    (then scales) within a cell, matching matterport's RPN output layout.
    Returns [rows * cols * len(ratios) * len(scales), (y1, x1, y2, x2)] float in image pixels.
    """
    scales, ratios = np.meshgrid(np.array(scales, dtype=np.float64), np.array(ratios, dtype=np.float64))
    scales = scales.flatten()
    ratios = ratios.flatten()
    heights = scales / np.sqrt(ratios)
    widths = scales * np.sqrt(ratios)
    shifts_y = np.arange(0, shape[0], anchor_stride) * feature_stride
    shifts_x = np.arange(0, shape[1], anchor_stride) * feature_stride
    shifts_x, shifts_y = np.meshgrid(shifts_x, shifts_y)
    box_widths, box_centers_x = np.meshgrid(widths, shifts_x)
    box_heights, box_centers_y = np.meshgrid(heights, shifts_y)
    centers = np.stack([box_centers_y, box_centers_x], axis=2).reshape([-1, 2])
    sizes = np.stack([box_heights, box_widths], axis=2).reshape([-1, 2])
    return np.concatenate([centers - 0.5 * sizes, centers + 0.5 * sizes], axis=1)


def generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides, anchor_stride) -> np.ndarray:
    """Anchors of every pyramid level, concatenated level by level (P2 first).

    scales: one anchor scale per level; ratios: shared; feature_shapes: [levels, (rows, cols)];
    feature_strides: one stride per level. Returns [A, (y1, x1, y2, x2)] in image pixels.
    """
    anchors = [
        generate_anchors(scales[i], ratios, feature_shapes[i], feature_strides[i], anchor_stride)
        for i in range(len(scales))
    ]
    return np.concatenate(anchors, axis=0)


# ------------------------------------------------------------------------------------ evaluation
def compute_matches(
    gt_boxes,
    gt_class_ids,
    gt_masks,
    pred_boxes,
    pred_class_ids,
    pred_scores,
    pred_masks,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
    iou_type: str = "mask",
):
    """Match predictions to ground truth, highest score first (matterport's ``compute_matches``).

    gt_boxes: [G, (y1, x1, y2, x2)] (zero rows are padding and dropped); gt_class_ids: [G];
    gt_masks: [H, W, G]; pred_*: the same for P predictions plus pred_scores [P].
    A prediction matches the unmatched ground truth of the same class with the highest IoU if that
    IoU >= ``iou_threshold``. ``iou_type`` "mask" (matterport) or "box" chooses the IoU.
    Returns ``(gt_match [G], pred_match [P], overlaps [P, G])``: gt_match[j] is the index (in the
    score-sorted predictions) matched to ground truth j, or -1; pred_match[i] the ground-truth
    index matched to sorted prediction i, or -1; overlaps in sorted-prediction order.
    """
    gt_boxes = trim_zeros(np.asarray(gt_boxes).reshape(-1, 4))
    gt_class_ids = np.asarray(gt_class_ids)[: gt_boxes.shape[0]]
    pred_boxes = trim_zeros(np.asarray(pred_boxes).reshape(-1, 4))
    pred_scores = np.asarray(pred_scores)[: pred_boxes.shape[0]]
    indices = np.argsort(-pred_scores, kind="stable")
    pred_boxes = pred_boxes[indices]
    pred_class_ids = np.asarray(pred_class_ids)[indices]
    if iou_type == "mask":
        gt_masks = np.asarray(gt_masks)[..., : gt_boxes.shape[0]]
        pred_masks = np.asarray(pred_masks)[..., indices]
        overlaps = compute_overlaps_masks(pred_masks, gt_masks)
    elif iou_type == "box":
        overlaps = compute_overlaps(pred_boxes, gt_boxes)
    else:
        raise ValueError(f"compute_matches: iou_type must be 'mask' or 'box', got {iou_type!r}")

    pred_match = -1 * np.ones([pred_boxes.shape[0]])
    gt_match = -1 * np.ones([gt_boxes.shape[0]])
    for i in range(pred_boxes.shape[0]):
        sorted_ixs = np.argsort(-overlaps[i], kind="stable")
        low = np.flatnonzero(overlaps[i, sorted_ixs] < score_threshold)
        if low.size:
            sorted_ixs = sorted_ixs[: low[0]]
        for j in sorted_ixs:
            if gt_match[j] > -1:
                continue
            if overlaps[i, j] < iou_threshold:
                break
            if pred_class_ids[i] == gt_class_ids[j]:
                gt_match[j] = i
                pred_match[i] = j
                break
    return gt_match, pred_match, overlaps


def compute_ap(
    gt_boxes,
    gt_class_ids,
    gt_masks,
    pred_boxes,
    pred_class_ids,
    pred_scores,
    pred_masks,
    iou_threshold: float = 0.5,
    iou_type: str = "mask",
):
    """Average precision of one image at one IoU threshold (VOC-style all-point interpolation).

    Arguments as ``compute_matches``. Returns ``(mAP, precisions, recalls, overlaps)`` where
    precisions/recalls are the interpolated curves padded with (0 at recall 0) and (0 at recall 1).
    With no ground truth the AP is 1.0 if there are no predictions either, else 0.0.
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold, iou_type=iou_type,
    )
    if gt_match.size == 0:
        ap = 1.0 if pred_match.size == 0 else 0.0
        return ap, np.array([0.0, float(ap), 0.0]), np.array([0.0, 1.0, 1.0]), overlaps
    hits = np.cumsum(pred_match > -1)
    precisions = hits / (np.arange(len(pred_match)) + 1)
    recalls = hits.astype(np.float64) / len(gt_match)
    precisions = np.concatenate([[0.0], precisions, [0.0]])
    recalls = np.concatenate([[0.0], recalls, [1.0]])
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    indices = np.flatnonzero(recalls[:-1] != recalls[1:]) + 1
    ap = float(np.sum((recalls[indices] - recalls[indices - 1]) * precisions[indices]))
    return ap, precisions, recalls, overlaps


def compute_ap_range(
    gt_box,
    gt_class_id,
    gt_mask,
    pred_box,
    pred_class_id,
    pred_score,
    pred_mask,
    iou_thresholds=None,
    verbose: int = 0,
    iou_type: str = "mask",
) -> float:
    """Mean AP over IoU thresholds (default 0.5:0.95 step 0.05, COCO style) for one image."""
    if iou_thresholds is None:
        iou_thresholds = np.arange(0.5, 1.0, 0.05)
    aps = []
    for threshold in iou_thresholds:
        ap, *_ = compute_ap(
            gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
            iou_threshold=threshold, iou_type=iou_type,
        )
        if verbose:
            print(f"AP @{threshold:.2f}:\t {ap:.3f}")
        aps.append(ap)
    mean = float(np.mean(aps))
    if verbose:
        print(f"AP @{iou_thresholds[0]:.2f}-{iou_thresholds[-1]:.2f}:\t {mean:.3f}")
    return mean


def compute_recall(pred_boxes, gt_boxes, iou: float):
    """Recall of ground-truth boxes by predicted boxes at an IoU threshold.

    pred_boxes: [P, (y1, x1, y2, x2)]; gt_boxes: [G, (y1, x1, y2, x2)].
    Returns ``(recall, positive_ids)``: the fraction of ground-truth boxes that are the best match
    of some prediction with IoU >= ``iou``, and the indices of those predictions.
    """
    gt_boxes = np.asarray(gt_boxes).reshape(-1, 4)
    overlaps = compute_overlaps(pred_boxes, gt_boxes)
    if overlaps.size == 0:
        return (1.0 if gt_boxes.shape[0] == 0 else 0.0), np.zeros([0], dtype=np.int64)
    iou_max = overlaps.max(axis=1)
    iou_argmax = overlaps.argmax(axis=1)
    positive_ids = np.flatnonzero(iou_max >= iou)
    matched = set(iou_argmax[positive_ids].tolist())
    return len(matched) / gt_boxes.shape[0], positive_ids


# --------------------------------------------------------------------------------------- Dataset
class Dataset:
    """Base class of data sets, with matterport's interface.

    Subclass it: in a loader method call ``add_class`` and ``add_image``, override ``load_mask``
    (and ``load_image`` if images are not files), then call ``prepare()`` before use.

    Internal ids are consecutive integers: ``image_ids`` indexes ``image_info`` and class id 0 is
    the background ("BG"). Source ids (``source`` + the id the source uses) are mapped with
    ``map_source_class_id`` / ``image_from_source_map``.

    channels: number of channels ``load_image`` returns (3 RGB, 1 grayscale).
    """

    def __init__(self, class_map=None, channels: int = 3):
        self._image_ids = np.zeros([0], dtype=np.int64)
        self.image_info: list[dict[str, Any]] = []
        self.class_info: list[dict[str, Any]] = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids: dict[str, list[int]] = {}
        self.channels = int(channels)

    def add_class(self, source: str, class_id: int, class_name: str) -> None:
        """Register class ``class_id`` (the source's own id) of ``source`` named ``class_name``."""
        if "." in source:
            raise ValueError(f"Dataset.add_class: source name {source!r} must not contain a dot")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return  # already registered
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source: str, image_id, path, **kwargs) -> None:
        """Register an image: its source, the source's id for it, its path and any extra fields."""
        info = {"id": image_id, "source": source, "path": path}
        info.update(kwargs)
        self.image_info.append(info)

    def image_reference(self, image_id: int) -> str:
        """A string naming the image for people (a file path or URL); override in subclasses."""
        path = self.image_info[image_id].get("path")
        return "" if path is None else str(path)

    def prepare(self, class_map=None) -> None:
        """Build the lookup tables; call after all ``add_class`` / ``add_image`` calls."""

        def clean_name(name: str) -> str:
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)
        self.class_from_source_map = {
            f"{info['source']}.{info['id']}": int(cid) for info, cid in zip(self.class_info, self.class_ids)
        }
        self.image_from_source_map = {
            f"{info['source']}.{info['id']}": int(iid) for info, iid in zip(self.image_info, self._image_ids)
        }
        self.sources = sorted({c["source"] for c in self.class_info})
        self.source_class_ids = {}
        for source in self.sources:
            self.source_class_ids[source] = [
                i for i, info in enumerate(self.class_info) if i == 0 or info["source"] == source
            ]

    def map_source_class_id(self, source_class_id: str) -> int:
        """Internal class id of ``"source.class_id"`` (e.g. ``"coco.12"``)."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id: int, source: str):
        """The source's own id of internal class ``class_id``."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError(f"class {class_id} belongs to source {info['source']!r}, not {source!r}")
        return info["id"]

    @property
    def image_ids(self) -> np.ndarray:
        """Internal image ids, 0..num_images-1."""
        return self._image_ids

    def source_image_link(self, image_id: int):
        """The path or URL the image came from."""
        return self.image_info[image_id]["path"]

    def load_image(self, image_id: int, channels: int | None = None) -> np.ndarray:
        """Read the image file at ``image_info[image_id]["path"]``.

        Returns [H, W, C] uint8 with C = ``channels`` (default ``self.channels``); grayscale files
        are repeated to RGB and colour files converted to gray as needed.
        Raises ``ra2.Ra2Error`` naming the file when it is missing or unreadable.
        """
        from ra2 import Ra2Error

        path = self.image_info[image_id]["path"]
        if path is None or not Path(path).is_file():
            raise Ra2Error(f"{path}: image file not found (image {image_id} of {type(self).__name__})")
        try:
            from PIL import Image

            with Image.open(path) as handle:
                image = np.asarray(handle)
        except Exception as error:  # PIL raises many types for broken files
            raise Ra2Error(f"{path}: cannot read image ({error})") from None
        if image.dtype != np.uint8:
            image = _to_uint8(image)
        return to_channels(image, self.channels if channels is None else int(channels))

    def load_mask(self, image_id: int):
        """Instance masks of an image: ``(masks [H, W, N] bool, class_ids [N] int32)``.

        Subclasses must override this; an image without instances returns ``[H, W, 0]`` masks and
        an empty class-id array.
        """
        raise NotImplementedError(
            f"{type(self).__name__}.load_mask is not implemented: subclasses of Dataset return "
            "(masks [H, W, N] bool, class_ids [N] int32)"
        )


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale an integer or float image of any range linearly to uint8 (min..max -> 0..255)."""
    image = image.astype(np.float64)
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return np.zeros(image.shape, dtype=np.uint8)
    return np.round((image - low) / (high - low) * 255).astype(np.uint8)
