"""Training-data preparation for Mask R-CNN: molding, image meta, ground truth, RPN targets, batches.

NumPy (and, for augmentation, an albumentations pipeline supplied by the caller); no TensorFlow.

Image meta vector (one per image, length ``config.IMAGE_META_SIZE``)::

    [image_id, original_h, original_w, original_c, h, w, c, window_y1, window_x1, window_y2,
     window_x2, scale, active_class_ids (NUM_CLASSES)]

``window`` is the part of the molded image that holds the original image (pixels of the molded
image, y2/x2 exclusive).
"""

from __future__ import annotations

import math

import numpy as np

from ra2.mrcnn import utils


# ----------------------------------------------------------------------------------- molding
def mold_image(images: np.ndarray, config) -> np.ndarray:
    """Images [..., C] (uint8 or float) to network input: float32 minus ``config.MEAN_PIXEL``."""
    return np.asarray(images).astype(np.float32) - np.asarray(config.MEAN_PIXEL, dtype=np.float32)


def unmold_image(normalized_images: np.ndarray, config) -> np.ndarray:
    """Inverse of ``mold_image``: add ``config.MEAN_PIXEL`` back, round and clip to uint8."""
    images = np.asarray(normalized_images, dtype=np.float32) + np.asarray(config.MEAN_PIXEL, dtype=np.float32)
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------- image meta
def compose_image_meta(image_id, original_image_shape, image_shape, window, scale, active_class_ids) -> np.ndarray:
    """Pack the attributes of one image into a float32 vector of length 12 + NUM_CLASSES.

    image_id: int; original_image_shape: [H, W, C] before resizing; image_shape: [H, W, C] after
    resizing and padding; window: (y1, x1, y2, x2) of the real image inside the padded one;
    scale: the resize factor; active_class_ids: [NUM_CLASSES] 1 for the classes of the image's
    source data set (so predictions of other sources' classes are not penalised).
    """
    original_image_shape = _shape3(original_image_shape)
    image_shape = _shape3(image_shape)
    meta = [image_id] + list(original_image_shape) + list(image_shape) + list(window) + [scale]
    return np.array(meta + list(np.asarray(active_class_ids).ravel()), dtype=np.float32)


def _shape3(shape) -> list[int]:
    shape = [int(s) for s in shape]
    if len(shape) == 2:
        shape.append(1)
    if len(shape) != 3:
        raise ValueError(f"expected an image shape (H, W[, C]), got {shape}")
    return shape


def parse_image_meta(meta: np.ndarray) -> dict[str, np.ndarray]:
    """Unpack image meta vectors [B, META] (or one [META]) into a dict of arrays.

    Keys: image_id [B] int32, original_image_shape [B, 3] int32, image_shape [B, 3] int32,
    window [B, (y1, x1, y2, x2)] int32 (molded-image pixels), scale [B] float32,
    active_class_ids [B, NUM_CLASSES] int32. A 1-D input gives the same keys without the B axis.
    """
    meta = np.asarray(meta)
    return {
        "image_id": meta[..., 0].astype(np.int32),
        "original_image_shape": meta[..., 1:4].astype(np.int32),
        "image_shape": meta[..., 4:7].astype(np.int32),
        "window": meta[..., 7:11].astype(np.int32),
        "scale": meta[..., 11].astype(np.float32),
        "active_class_ids": meta[..., 12:].astype(np.int32),
    }


# ------------------------------------------------------------------------------ ground truth
def resize_with_config(image: np.ndarray, config, rng=None):
    """``utils.resize_image`` with the resize settings of ``config``; same return value."""
    return utils.resize_image(
        image,
        min_dim=config.IMAGE_MIN_DIM,
        min_scale=config.IMAGE_MIN_SCALE,
        max_dim=config.IMAGE_MAX_DIM,
        mode=config.IMAGE_RESIZE_MODE,
        rng=rng,
    )


def apply_augmentation(augmentation, image: np.ndarray, mask: np.ndarray):
    """Apply an albumentations pipeline to an image and its instance masks together.

    augmentation: a callable such as ``albumentations.Compose([...])``, called as
    ``augmentation(image=image, masks=[mask_0, ...])`` and returning a dict with "image" and
    "masks" (only ``image=`` when there are no instances). Only transforms that keep the image
    size are allowed (flips, rotations by 90 degrees, affine with same output size, intensity
    changes...). image: [H, W, C]; mask: [H, W, N] bool.
    Returns (image [H, W, C] with the input dtype, mask [H, W, N] bool).
    """
    shape, dtype, n = image.shape, image.dtype, mask.shape[-1]
    if n:
        out = augmentation(image=image, masks=[np.ascontiguousarray(mask[:, :, i]).astype(np.uint8) for i in range(n)])
        masks = out["masks"]
        masks = np.stack([np.asarray(m) for m in masks], axis=-1) if len(masks) else np.zeros(shape[:2] + (0,))
    else:
        out = augmentation(image=image)
        masks = np.zeros(shape[:2] + (0,), dtype=bool)
    new_image = np.asarray(out["image"])
    if new_image.ndim == 2 and len(shape) == 3:
        new_image = new_image[:, :, None]
    if new_image.shape != shape:
        raise ValueError(
            f"augmentation changed the image shape from {shape} to {new_image.shape}; use transforms "
            "that keep the size (resizing happens before augmentation)"
        )
    if masks.shape[:2] != shape[:2]:
        raise ValueError(f"augmentation changed the mask shape from {shape[:2]} to {masks.shape[:2]}")
    return new_image.astype(dtype, copy=False), masks.astype(bool)


def load_image_gt(dataset, config, image_id: int, augmentation=None, rng=None):
    """Load and prepare one training image and its ground truth, as matterport's ``load_image_gt``.

    Steps: load image (converted to ``config.IMAGE_CHANNEL_COUNT`` channels) and masks; resize and
    pad both with ``config``'s resize mode; optional albumentations ``augmentation`` on image and
    masks together; drop instances whose mask became empty; boxes from the masks; mini masks when
    ``config.USE_MINI_MASK``.
    rng: seed or Generator for the random crop of the "crop" resize mode.

    Returns ``(image, image_meta, class_ids, bbox, mask)``:
      image [H, W, C] uint8 (molded size, not mean-subtracted); image_meta [IMAGE_META_SIZE];
      class_ids [N] int32; bbox [N, (y1, x1, y2, x2)] int32 in pixels of ``image`` (y2/x2
      exclusive); mask [h, w, N] bool (MINI_MASK_SHAPE if USE_MINI_MASK, else image size).
    """
    image = utils.to_channels(dataset.load_image(image_id), int(config.IMAGE_CHANNEL_COUNT))
    mask, class_ids = dataset.load_mask(image_id)
    mask = np.asarray(mask)
    class_ids = np.asarray(class_ids, dtype=np.int32).reshape(-1)
    if mask.ndim == 2:
        mask = mask[:, :, None]
    if mask.shape[-1] != class_ids.shape[0]:
        raise ValueError(
            f"{type(dataset).__name__}.load_mask({image_id}) gave {mask.shape[-1]} masks but "
            f"{class_ids.shape[0]} class ids"
        )
    if mask.shape[-1] and mask.shape[:2] != image.shape[:2]:
        raise ValueError(
            f"{type(dataset).__name__} image {image_id}: masks are {mask.shape[:2]} but the image is "
            f"{image.shape[:2]}"
        )
    if mask.shape[-1] == 0:
        mask = np.zeros(image.shape[:2] + (0,), dtype=bool)
    original_shape = image.shape
    image, window, scale, padding, crop = resize_with_config(image, config, rng=rng)
    mask = utils.resize_mask(mask.astype(bool), scale, padding, crop)

    if augmentation is not None:
        image, mask = apply_augmentation(augmentation, image, mask)

    keep = mask.reshape(-1, mask.shape[-1]).any(axis=0) if mask.shape[-1] else np.zeros([0], bool)
    mask = mask[:, :, keep]
    class_ids = class_ids[keep]
    bbox = utils.extract_bboxes(mask)

    active_class_ids = np.zeros([dataset.num_classes], dtype=np.int32)
    source = dataset.image_info[image_id]["source"]
    source_class_ids = dataset.source_class_ids.get(source, [0])
    active_class_ids[source_class_ids] = 1

    if config.USE_MINI_MASK:
        mask = utils.minimize_mask(bbox, mask, config.MINI_MASK_SHAPE)

    image_meta = compose_image_meta(image_id, original_shape, image.shape, window, scale, active_class_ids)
    return image, image_meta, class_ids, bbox, mask


# ----------------------------------------------------------------------------------- anchors
def compute_backbone_shapes(config, image_shape) -> np.ndarray:
    """Feature-map sizes of each pyramid level: [levels, (rows, cols)] int.

    ``config.COMPUTE_BACKBONE_SHAPE(image_shape)`` when it is callable, otherwise
    ceil(H / stride), ceil(W / stride) for each of ``config.BACKBONE_STRIDES``.
    """
    if callable(config.COMPUTE_BACKBONE_SHAPE):
        return np.asarray(config.COMPUTE_BACKBONE_SHAPE(image_shape))
    return np.array(
        [[int(math.ceil(image_shape[0] / s)), int(math.ceil(image_shape[1] / s))] for s in config.BACKBONE_STRIDES]
    )


def anchors_for_shape(config, image_shape) -> np.ndarray:
    """All anchors of an input image of ``image_shape``: [A, (y1, x1, y2, x2)] float, image pixels."""
    return utils.generate_pyramid_anchors(
        config.RPN_ANCHOR_SCALES,
        config.RPN_ANCHOR_RATIOS,
        compute_backbone_shapes(config, image_shape),
        config.BACKBONE_STRIDES,
        config.RPN_ANCHOR_STRIDE,
    )


def build_rpn_targets(image_shape, anchors, gt_class_ids, gt_boxes, config, rng=None):
    """Targets of the region proposal network for one image.

    anchors: [A, (y1, x1, y2, x2)] image pixels; gt_class_ids: [G] int (negative ids mark
    "crowd" boxes: anchors overlapping them are never negatives); gt_boxes: [G, (y1, x1, y2, x2)]
    image pixels. rng: seed or Generator for subsampling.

    An anchor is positive (1) if its IoU with some ground-truth box is >= ``RPN_POSITIVE_IOU`` (0.7) or if
    it is (one of) the best anchor(s) of a ground-truth box; negative (-1) if its best IoU is
    < ``RPN_NEGATIVE_IOU`` (0.3) (and it does not touch a crowd box); neutral (0) otherwise. Positives are
    subsampled to at most RPN_TRAIN_ANCHORS_PER_IMAGE // 2 and negatives to fill RPN_TRAIN_ANCHORS_PER_IMAGE.
    With no ground truth every sampled anchor is negative.

    Returns ``(rpn_match [A] int32 in {1, -1, 0}, rpn_bbox [RPN_TRAIN_ANCHORS_PER_IMAGE,
    (dy, dx, log(dh), log(dw))] float32)``: the deltas of the positive anchors in the order of
    ``np.flatnonzero(rpn_match == 1)``, divided by RPN_BBOX_STD_DEV, zero-padded.
    """
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    anchors = np.asarray(anchors, dtype=np.float64)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    n_train = int(config.RPN_TRAIN_ANCHORS_PER_IMAGE)
    rpn_match = np.zeros([anchors.shape[0]], dtype=np.int32)
    rpn_bbox = np.zeros((n_train, 4), dtype=np.float32)

    crowd = gt_class_ids < 0
    if crowd.any():
        crowd_overlaps = utils.compute_overlaps(anchors, gt_boxes[crowd])
        no_crowd = crowd_overlaps.max(axis=1) < 0.001
        gt_class_ids = gt_class_ids[~crowd]
        gt_boxes = gt_boxes[~crowd]
    else:
        no_crowd = np.ones([anchors.shape[0]], dtype=bool)

    if gt_boxes.shape[0] == 0:
        rpn_match[no_crowd] = -1
        anchor_iou_argmax = np.zeros([anchors.shape[0]], dtype=np.int64)
    else:
        overlaps = utils.compute_overlaps(anchors, gt_boxes)  # [A, G]
        anchor_iou_argmax = np.argmax(overlaps, axis=1)
        anchor_iou_max = overlaps[np.arange(overlaps.shape[0]), anchor_iou_argmax]
        # Negatives first, so the positive rules below override them.
        rpn_match[(anchor_iou_max < float(config.RPN_NEGATIVE_IOU)) & no_crowd] = -1
        # Each ground-truth box gets its best anchor(s) (ties all count), whatever the IoU, as
        # long as the IoU is not zero.
        gt_max = overlaps.max(axis=0)
        best = (overlaps == gt_max[None, :]) & (gt_max[None, :] > 0)
        rows, cols = np.nonzero(best)
        rpn_match[rows] = 1
        # An anchor taken as some box's best is regressed to that box.
        anchor_iou_argmax[rows] = cols
        rpn_match[anchor_iou_max >= float(config.RPN_POSITIVE_IOU)] = 1

    positives = np.flatnonzero(rpn_match == 1)
    extra = positives.size - n_train // 2
    if extra > 0:
        rpn_match[generator.choice(positives, extra, replace=False)] = 0
    negatives = np.flatnonzero(rpn_match == -1)
    extra = negatives.size - (n_train - int(np.sum(rpn_match == 1)))
    if extra > 0:
        rpn_match[generator.choice(negatives, extra, replace=False)] = 0

    positives = np.flatnonzero(rpn_match == 1)
    if positives.size:
        deltas = utils.box_refinement(anchors[positives], gt_boxes[anchor_iou_argmax[positives]])
        rpn_bbox[: positives.size] = deltas / np.asarray(config.RPN_BBOX_STD_DEV, dtype=np.float32)
    return rpn_match, rpn_bbox


# ------------------------------------------------------------------------------------ batches
class DataGenerator:
    """Training batches for Mask R-CNN, a plain Python sequence (``len``, indexing, iteration).

    ``generator[i]`` is batch ``i`` of the current epoch; ``len(generator)`` is
    ceil(num_images / BATCH_SIZE) (the last batch wraps around to the start of the epoch's order so
    every batch has BATCH_SIZE images); ``on_epoch_end()`` draws the next epoch's order.
    Iterating yields the batches of one epoch then calls ``on_epoch_end``.

    Batches are tuples of NumPy arrays, in this order::

        batch_images      [B, H, W, C] float32, molded (mean pixel subtracted)
        batch_image_meta  [B, IMAGE_META_SIZE] float32
        batch_rpn_match   [B, A, 1] int32 (1 positive, -1 negative, 0 neutral)
        batch_rpn_bbox    [B, RPN_TRAIN_ANCHORS_PER_IMAGE, 4] float32 (normalised deltas)
        batch_gt_class_ids[B, MAX_GT_INSTANCES] int32 (0 = padding)
        batch_gt_boxes    [B, MAX_GT_INSTANCES, (y1, x1, y2, x2)] int32, molded-image pixels
        batch_gt_masks    [B, h, w, MAX_GT_INSTANCES] bool (h, w = MINI_MASK_SHAPE or image size)

    Images without instances are kept (all-zero ground truth, RPN targets all negative/neutral).
    Randomness (order, RPN subsampling, instance subsampling, crops) comes from ``seed``; batch
    ``i`` of epoch ``e`` is the same whatever order batches are requested in. An augmentation
    pipeline with a ``set_random_seed`` method (albumentations ``Compose``) is reseeded for every
    image from the same per-image seed, so augmented batches are reproducible too.
    """

    def __init__(self, dataset, config, shuffle: bool = True, augmentation=None, seed: int | None = 0):
        if len(dataset.image_ids) == 0:
            raise ValueError(f"{type(dataset).__name__} has no images (did you call prepare()?)")
        self.dataset = dataset
        self.config = config
        self.shuffle = shuffle
        self.augmentation = augmentation
        self.seed = seed
        self.batch_size = int(config.BATCH_SIZE)
        self.epoch = 0
        self._anchor_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        ids = np.asarray(self.dataset.image_ids)
        if not self.shuffle:
            return ids.copy()
        return np.random.default_rng([self.seed or 0, self.epoch]).permutation(ids)

    def anchors(self, image_shape) -> np.ndarray:
        """Anchors [A, (y1, x1, y2, x2)] in pixels of molded images of ``image_shape`` (cached)."""
        key = tuple(int(s) for s in image_shape[:2])
        if key not in self._anchor_cache:
            self._anchor_cache[key] = anchors_for_shape(self.config, key)
        return self._anchor_cache[key]

    def __len__(self) -> int:
        return int(math.ceil(len(self._order) / self.batch_size))

    def on_epoch_end(self) -> None:
        """Advance to the next epoch (new order when shuffling)."""
        self.epoch += 1
        self._order = self._epoch_order()

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (the epoch has {len(self)} batches)")
        n = len(self._order)
        positions = [(index * self.batch_size + k) % n for k in range(self.batch_size)]
        items = []
        for k, position in enumerate(positions):
            rng = np.random.default_rng([self.seed or 0, self.epoch, index, k])
            items.append(self.load_item(int(self._order[position]), rng))
        shapes = {item[0].shape for item in items}
        if len(shapes) > 1:
            raise ValueError(
                f"images of one batch have different molded shapes {sorted(shapes)}; use "
                "IMAGE_RESIZE_MODE 'square' or 'crop', or BATCH_SIZE 1"
            )
        return tuple(np.stack([item[j] for item in items]) for j in range(7))

    def load_item(self, image_id: int, rng: np.random.Generator):
        """One image's training arrays (the per-image slices of a batch, see the class doc)."""
        config = self.config
        if self.augmentation is not None and hasattr(self.augmentation, "set_random_seed"):
            self.augmentation.set_random_seed(int(rng.integers(0, 2**31 - 1)))
        image, image_meta, gt_class_ids, gt_boxes, gt_masks = load_image_gt(
            self.dataset, config, image_id, augmentation=self.augmentation, rng=rng
        )
        anchors = self.anchors(image.shape)
        rpn_match, rpn_bbox = build_rpn_targets(image.shape, anchors, gt_class_ids, gt_boxes, config, rng=rng)

        max_gt = int(config.MAX_GT_INSTANCES)
        if gt_boxes.shape[0] > max_gt:
            keep = np.sort(rng.choice(gt_boxes.shape[0], max_gt, replace=False))
            gt_class_ids, gt_boxes, gt_masks = gt_class_ids[keep], gt_boxes[keep], gt_masks[:, :, keep]
        n = gt_boxes.shape[0]
        class_ids = np.zeros([max_gt], dtype=np.int32)
        boxes = np.zeros([max_gt, 4], dtype=np.int32)
        masks = np.zeros(gt_masks.shape[:2] + (max_gt,), dtype=bool)
        class_ids[:n] = gt_class_ids
        boxes[:n] = gt_boxes
        masks[:, :, :n] = gt_masks
        return (
            mold_image(image, config),
            image_meta.astype(np.float32),
            rpn_match[:, None].astype(np.int32),
            rpn_bbox.astype(np.float32),
            class_ids,
            boxes,
            masks,
        )
