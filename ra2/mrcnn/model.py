"""Mask R-CNN model: graph assembly, training loop, inference, weights (Keras 3, TensorFlow backend).

The architecture and public API follow matterport's ``mrcnn/model.py``:

    model = MaskRCNN(mode="training", config=config, model_dir="runs")
    model.train(train_ds, val_ds, learning_rate=config.LEARNING_RATE, epochs=10, layers="heads")
    model = MaskRCNN(mode="inference", config=inference_config, model_dir="runs")
    model.load_weights(model.find_last())
    [r] = model.detect([image])   # r["rois"], r["class_ids"], r["scores"], r["masks"]

Differences from matterport, all deliberate:

- Anchors are an input of both graphs (``input_anchors [B, A, 4]`` normalised), so the training
  graph accepts any image size whose sides are multiples of 64; :meth:`MaskRCNN.get_anchors` caches
  them per shape.
- Any batch size works (graph layers map over the batch); ``detect`` runs in chunks of
  ``config.BATCH_SIZE``.
- Training uses a custom ``tf.GradientTape`` step (Keras 3 has no ``add_loss`` on functional models):
  SGD with momentum, ``clipnorm=GRADIENT_CLIP_NORM``, L2 ``WEIGHT_DECAY`` on convolution and dense
  kernels (each kernel's sum of squares divided by its size, as matterport), loss weights from
  ``LOSS_WEIGHTS``.
- Weights are Keras 3 ``.weights.h5``; matterport-format HDF5 files load through
  :func:`ra2.mrcnn.legacy_weights.load_legacy_h5`.
- Two config attributes beyond matterport's size the light heads: ``RPN_CONV_SHARED_SIZE`` (default 512, the
  depth of ``rpn_conv_shared``) and ``MASK_CONV_SIZE`` (default 256, the mask-head convolutions).
"""

from __future__ import annotations

import datetime
import os
import queue
import re
import threading
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ra2.mrcnn import layers as L
from ra2.mrcnn import losses as losses_mod
from ra2.mrcnn.backbone import backbone_graph, fpn_graph

#: ``layers=`` shortcuts of :meth:`MaskRCNN.train` (regexes over layer names, matterport's).
LAYER_REGEX = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}

_CHECKPOINT_RE = re.compile(r"mask_rcnn_(?P<name>.*)_(?P<epoch>\d{4})\.weights\.h5$")


class LossLayer(keras.layers.Layer):
    """Wrap one function of :mod:`ra2.mrcnn.losses` so it can sit in the functional graph."""

    def __init__(self, fn_name, **kwargs):
        super().__init__(**kwargs)
        self.fn_name = fn_name

    def call(self, inputs):
        return getattr(losses_mod, self.fn_name)(*inputs)

    def compute_output_shape(self, input_shape):
        return ()


class _Slice(keras.layers.Layer):
    """``x[..., start:stop]`` on the last axis (``axis=-1``) or ``x[:, start:stop]`` (``axis=1``)."""

    def __init__(self, start, stop, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop, self.axis = int(start), int(stop), int(axis)
        if self.axis not in (1, -1):
            raise ValueError(f"_Slice: axis must be 1 or -1, got {axis}")

    def call(self, x):
        if self.axis == 1:
            return x[:, self.start:self.stop]
        return x[..., self.start:self.stop]

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        dim = shape[self.axis]
        shape[self.axis] = None if dim is None else min(dim, self.stop) - self.start
        return tuple(shape)


def build_graph(mode: str, config) -> keras.Model:
    """Build the training or inference Keras model for ``config`` (see :class:`MaskRCNN`)."""
    if mode not in ("training", "inference"):
        raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
    h, w = config.IMAGE_SHAPE[:2]
    if h and w and (h % 64 or w % 64):
        raise ValueError(f"IMAGE_SHAPE {config.IMAGE_SHAPE}: height and width must be multiples of 64")
    channels = config.IMAGE_CHANNEL_COUNT
    input_image = keras.Input(shape=(None, None, channels), name="input_image")
    input_image_meta = keras.Input(shape=(config.IMAGE_META_SIZE,), name="input_image_meta")
    input_anchors = keras.Input(shape=(None, 4), name="input_anchors")

    _, c2, c3, c4, c5 = backbone_graph(input_image, config)
    p2, p3, p4, p5, p6 = fpn_graph(c2, c3, c4, c5, config.TOP_DOWN_PYRAMID_SIZE)
    rpn_feature_maps = [p2, p3, p4, p5, p6]
    mrcnn_feature_maps = [p2, p3, p4, p5]

    rpn = build_rpn_model_for(config)
    level_outputs = [rpn(p) for p in rpn_feature_maps]
    rpn_class_logits = keras.layers.Concatenate(axis=1, name="rpn_class_logits")([o[0] for o in level_outputs])
    rpn_class = keras.layers.Concatenate(axis=1, name="rpn_class")([o[1] for o in level_outputs])
    rpn_bbox = keras.layers.Concatenate(axis=1, name="rpn_bbox")([o[2] for o in level_outputs])

    proposal_count = config.POST_NMS_ROIS_TRAINING if mode == "training" else config.POST_NMS_ROIS_INFERENCE
    rpn_rois = L.ProposalLayer(proposal_count, config.RPN_NMS_THRESHOLD, config, name="ROI")(
        [rpn_class, rpn_bbox, input_anchors])
    mask_conv = int(config.MASK_CONV_SIZE)

    if mode == "training":
        input_rpn_match = keras.Input(shape=(None, 1), name="input_rpn_match", dtype="int32")
        input_rpn_bbox = keras.Input(shape=(None, 4), name="input_rpn_bbox", dtype="float32")
        input_gt_class_ids = keras.Input(shape=(None,), name="input_gt_class_ids", dtype="int32")
        input_gt_boxes = keras.Input(shape=(None, 4), name="input_gt_boxes", dtype="float32")
        mask_hw = tuple(config.MINI_MASK_SHAPE) if config.USE_MINI_MASK else tuple(config.IMAGE_SHAPE[:2])
        input_gt_masks = keras.Input(shape=mask_hw + (None,), name="input_gt_masks", dtype="bool")
        gt_boxes = L.NormBoxes(name="norm_gt_boxes")([input_gt_boxes, input_image])
        active_class_ids = L.ActiveClassIds(name="active_class_ids")(input_image_meta)
        rois, target_class_ids, target_bbox, target_mask = L.DetectionTargetLayer(
            config, name="proposal_targets")([rpn_rois, input_gt_class_ids, gt_boxes, input_gt_masks])
        mrcnn_class_logits, mrcnn_class, mrcnn_bbox = L.fpn_classifier_graph(
            rois, mrcnn_feature_maps, input_image_meta, config.POOL_SIZE, config.NUM_CLASSES,
            train_bn=config.TRAIN_BN, fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE, norm=config.NORM)
        # The mask loss counts positive ROIs only, and DetectionTargetLayer puts them first (at most
        # int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO) of them): the mask head runs on those rows alone,
        # a third of matterport's work (the mask head dominates a training step's FLOPs).
        n_pos = max(1, int(config.TRAIN_ROIS_PER_IMAGE * config.ROI_POSITIVE_RATIO))
        mask_rois = _Slice(0, n_pos, axis=1, name="mask_rois")(rois)
        mask_target = _Slice(0, n_pos, axis=1, name="mask_targets")(target_mask)
        mask_class_ids = _Slice(0, n_pos, axis=1, name="mask_target_class_ids")(target_class_ids)
        mrcnn_mask = L.build_fpn_mask_graph(mask_rois, mrcnn_feature_maps, input_image_meta,
                                            config.MASK_POOL_SIZE, config.NUM_CLASSES,
                                            train_bn=config.TRAIN_BN, conv_size=mask_conv, norm=config.NORM)
        output_rois = L.Identity(name="output_rois")(rois)
        rpn_class_loss = LossLayer("rpn_class_loss", name="rpn_class_loss")([input_rpn_match, rpn_class_logits])
        rpn_bbox_loss = LossLayer("rpn_bbox_loss", name="rpn_bbox_loss")(
            [input_rpn_bbox, input_rpn_match, rpn_bbox])
        class_loss = LossLayer("mrcnn_class_loss", name="mrcnn_class_loss")(
            [target_class_ids, mrcnn_class_logits, active_class_ids])
        bbox_loss = LossLayer("mrcnn_bbox_loss", name="mrcnn_bbox_loss")(
            [target_bbox, target_class_ids, mrcnn_bbox])
        mask_loss = LossLayer("mrcnn_mask_loss", name="mrcnn_mask_loss")(
            [mask_target, mask_class_ids, mrcnn_mask])
        inputs = [input_image, input_image_meta, input_rpn_match, input_rpn_bbox, input_gt_class_ids,
                  input_gt_boxes, input_gt_masks, input_anchors]
        outputs = [rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits, mrcnn_class, mrcnn_bbox,
                   mrcnn_mask, rpn_rois, output_rois,
                   rpn_class_loss, rpn_bbox_loss, class_loss, bbox_loss, mask_loss]
        return keras.Model(inputs, outputs, name="mask_rcnn")

    mrcnn_class_logits, mrcnn_class, mrcnn_bbox = L.fpn_classifier_graph(
        rpn_rois, mrcnn_feature_maps, input_image_meta, config.POOL_SIZE, config.NUM_CLASSES,
        train_bn=config.TRAIN_BN, fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE, norm=config.NORM)
    detections = L.DetectionLayer(config, name="mrcnn_detection")(
        [rpn_rois, mrcnn_class, mrcnn_bbox, input_image_meta])
    detection_boxes = _Slice(0, 4, name="detection_boxes")(detections)
    mrcnn_mask = L.build_fpn_mask_graph(detection_boxes, mrcnn_feature_maps, input_image_meta,
                                        config.MASK_POOL_SIZE, config.NUM_CLASSES,
                                        train_bn=config.TRAIN_BN, conv_size=mask_conv,
                                        detections=detections, norm=config.NORM)
    return keras.Model([input_image, input_image_meta, input_anchors],
                       [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox],
                       name="mask_rcnn")


def build_rpn_model_for(config) -> keras.Model:
    """``rpn_model`` sized from ``config`` (anchor stride, ratios, pyramid depth)."""
    return L.build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS),
                             config.TOP_DOWN_PYRAMID_SIZE,
                             int(config.RPN_CONV_SHARED_SIZE))


def warmup_cosine(peak: float, total_steps: int, warmup_steps: int = 0, floor: float = 0.0):
    """``step -> learning rate``: linear warm-up from ``peak / warmup_steps`` to ``peak`` over
    ``warmup_steps``, then a cosine decay to ``floor`` at ``total_steps`` (held there after)."""
    import math

    peak, floor = float(peak), float(floor)
    total_steps, warmup_steps = max(int(total_steps), 1), max(int(warmup_steps), 0)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return peak * (step + 1) / warmup_steps
        t = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return schedule


def _iter_layers(model):
    """Yield every layer of ``model``, descending into nested models (``rpn_model``) instead of
    yielding them; TimeDistributed wrappers are yielded whole."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _iter_layers(layer)
        else:
            yield layer


def _prefetch(source, size=4):
    """Run the iterator ``source`` in a background thread, ``size`` items ahead."""
    q = queue.Queue(maxsize=size)
    stop = threading.Event()
    sentinel = object()

    def worker():
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # hand the error to the consumer
            q.put(exc)
            return
        q.put(sentinel)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is sentinel:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _batches(generator):
    """Endless iterator over the batches of a ``DataGenerator`` (sequence or iterable)."""
    if hasattr(generator, "__getitem__") and hasattr(generator, "__len__"):
        while True:
            for i in range(len(generator)):
                yield generator[i]
            if hasattr(generator, "on_epoch_end"):
                generator.on_epoch_end()
    else:
        while True:
            yielded = False
            for batch in generator:
                yielded = True
                yield batch
            if not yielded:
                raise ValueError("the data generator yielded no batch")


def _generator_class():
    """``DataGenerator`` that leaves images of ``no_augmentation_sources`` unaugmented."""
    from ra2.mrcnn.data import DataGenerator

    class SourceAwareGenerator(DataGenerator):
        def __init__(self, *args, no_augmentation_sources=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.no_augmentation_sources = set(no_augmentation_sources or [])

        def load_item(self, image_id, rng):
            source = self.dataset.image_info[image_id]["source"]
            if self.augmentation is None or source not in self.no_augmentation_sources:
                return super().load_item(image_id, rng)
            saved, self.augmentation = self.augmentation, None
            try:
                return super().load_item(image_id, rng)
            finally:
                self.augmentation = saved

    return SourceAwareGenerator


class MaskRCNN:
    """Mask R-CNN in matterport's shape.

    Args:
        mode: ``"training"`` or ``"inference"``.
        config: a :class:`ra2.mrcnn.config.Config`.
        model_dir: folder for training runs (one subfolder per run with the config JSON,
            one ``mask_rcnn_<name>_<epoch>.weights.h5`` per epoch and ``history.csv``).
    """

    def __init__(self, mode: str, config, model_dir):
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
        self.mode = mode
        self.config = config
        self.model_dir = str(model_dir)
        self.epoch = 0
        self._anchor_cache: dict[tuple, np.ndarray] = {}
        self._infer_fn = None
        self.set_log_dir()
        self.keras_model = build_graph(mode, config)

    # ------------------------------------------------------------------ anchors and molding

    def get_anchors(self, image_shape) -> np.ndarray:
        """Anchors ``[A, (y1, x1, y2, x2)]`` normalised to the molded image ``image_shape``, cached."""
        from ra2.mrcnn import utils
        from ra2.mrcnn.data import compute_backbone_shapes

        key = tuple(int(v) for v in image_shape[:2])
        if key not in self._anchor_cache:
            shapes = compute_backbone_shapes(self.config, image_shape)
            a = utils.generate_pyramid_anchors(self.config.RPN_ANCHOR_SCALES, self.config.RPN_ANCHOR_RATIOS,
                                               shapes, self.config.BACKBONE_STRIDES,
                                               self.config.RPN_ANCHOR_STRIDE)
            self._anchor_cache[key] = utils.norm_boxes(a, key).astype(np.float32)
        return self._anchor_cache[key]

    def mold_inputs(self, images):
        """Resize and normalise images as matterport.

        images: list of [H, W] or [H, W, C] arrays (any size; converted to IMAGE_CHANNEL_COUNT).
        Returns ``molded_images [B, h, w, C] float32``, ``image_metas [B, META]``,
        ``windows [B, (y1, x1, y2, x2)]`` (pixels of the molded image holding the original).
        """
        from ra2.mrcnn import utils
        from ra2.mrcnn.data import compose_image_meta, mold_image

        c = self.config
        molded, metas, windows = [], [], []
        for image in images:
            image = utils.to_channels(np.asarray(image), c.IMAGE_CHANNEL_COUNT)
            m, window, scale, _, _ = utils.resize_image(image, min_dim=c.IMAGE_MIN_DIM, min_scale=c.IMAGE_MIN_SCALE,
                                                        max_dim=c.IMAGE_MAX_DIM, mode=c.IMAGE_RESIZE_MODE)
            m = mold_image(m, c)
            metas.append(compose_image_meta(0, image.shape, m.shape, window, scale,
                                            np.zeros([c.NUM_CLASSES], np.int32)))
            molded.append(m)
            windows.append(window)
        shapes = {m.shape for m in molded}
        if len(shapes) > 1:
            raise ValueError(f"mold_inputs: molded images differ in shape {sorted(shapes)}; "
                             "use IMAGE_RESIZE_MODE='square' or detect them one by one")
        return (np.stack(molded).astype(np.float32), np.stack(metas).astype(np.float32),
                np.asarray(windows, np.int32))

    def unmold_detections(self, detections, mrcnn_mask, original_image_shape, image_shape, window):
        """Turn one image's network outputs into results in original-image pixels.

        detections: [N, (y1, x1, y2, x2, class_id, score)] normalised to the molded image, zero
        rows are padding; mrcnn_mask: [N, h, w, NUM_CLASSES]; window: (y1, x1, y2, x2) pixels of the
        molded image that hold the original. Returns ``(boxes [n, 4] int32 original pixels,
        class_ids [n] int32, scores [n] float32, masks [H, W, n] bool)``.
        """
        from ra2.mrcnn import utils

        zero_ix = np.where(detections[:, 4] == 0)[0]
        n = int(zero_ix[0]) if zero_ix.shape[0] > 0 else detections.shape[0]
        boxes = detections[:n, :4]
        class_ids = detections[:n, 4].astype(np.int32)
        scores = detections[:n, 5].astype(np.float32)
        masks = mrcnn_mask[np.arange(n), :, :, class_ids]
        wy1, wx1, wy2, wx2 = utils.norm_boxes(np.asarray(window, np.float32)[None], image_shape[:2])[0]
        shift = np.array([wy1, wx1, wy1, wx1])
        scale = np.array([wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
        boxes = utils.denorm_boxes((boxes - shift) / scale, original_image_shape[:2])
        keep = np.where((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0)[0]
        boxes, class_ids, scores, masks = boxes[keep], class_ids[keep], scores[keep], masks[keep]
        h, w = original_image_shape[:2]
        if len(keep):
            full = np.stack([utils.unmold_mask(masks[i], boxes[i], original_image_shape)
                             for i in range(len(keep))], axis=-1)
        else:
            full = np.zeros((h, w, 0), bool)
        return boxes.astype(np.int32), class_ids, scores, full

    # ------------------------------------------------------------------ inference

    def _infer(self, molded, metas, anchors):
        if self._infer_fn is None:
            model = self.keras_model

            @tf.function(reduce_retracing=True)
            def infer(images, metas, anchors):
                out = model([images, metas, anchors], training=False)
                return out[0], out[3]

            self._infer_fn = infer
        return self._infer_fn(tf.constant(molded), tf.constant(metas), tf.constant(anchors))

    def detect(self, images, verbose: int = 0):
        """Detect instances in ``images`` (list of [H, W] or [H, W, C] arrays of any size).

        Returns one dict per image: ``rois [N, (y1, x1, y2, x2)]`` int32 pixels of that image
        (y2/x2 exclusive), ``class_ids [N]`` int32, ``scores [N]`` float32, ``masks [H, W, N]`` bool.
        """
        if self.mode != "inference":
            raise ValueError("detect() needs a model built with mode='inference'")
        images = list(images)
        results = []
        chunk = max(int(self.config.BATCH_SIZE), 1)
        for start in range(0, len(images), chunk):
            part = images[start:start + chunk]
            molded, metas, windows = self.mold_inputs(part)
            anchors = self.get_anchors(molded.shape[1:])
            anchors = np.broadcast_to(anchors, (len(part),) + anchors.shape)
            if verbose:
                print(f"detect: {len(part)} image(s), molded {molded.shape}")
            detections, masks = self._infer(molded, metas, np.ascontiguousarray(anchors))
            detections, masks = detections.numpy(), masks.numpy()
            for i, image in enumerate(part):
                shape = np.asarray(image).shape[:2]
                rois, class_ids, scores, full = self.unmold_detections(
                    detections[i], masks[i], shape, molded[i].shape, windows[i])
                results.append({"rois": rois, "class_ids": class_ids, "scores": scores, "masks": full})
        return results

    # ------------------------------------------------------------------ training

    def set_trainable(self, layer_regex: str, verbose: int = 0) -> list[str]:
        """Make layers whose name fully matches ``layer_regex`` trainable and freeze the rest.
        Nested models (``rpn_model``) are entered; TimeDistributed wrappers count by their own name.
        Returns the names of trainable layers that own weights."""
        names = []
        for layer in _iter_layers(self.keras_model):
            trainable = bool(re.fullmatch(layer_regex, layer.name))
            layer.trainable = trainable
            if trainable and layer.weights:
                names.append(layer.name)
        if verbose:
            print(f"trainable layers ({len(names)}): {', '.join(names)}")
        return names

    def _make_train_step(self, optimizer):
        model = self.keras_model
        config = self.config
        weights = [float(config.LOSS_WEIGHTS.get(n, 1.0)) for n in losses_mod.LOSS_NAMES]
        variables = list(model.trainable_variables)
        decay = [v for v in variables if v.name == "kernel"]
        optimizer.build(variables)
        wd = float(config.WEIGHT_DECAY)

        def total_loss(batch, training):
            out = model(list(batch), training=training)
            losses = out[-5:]
            total = tf.add_n([w * tf.reduce_mean(loss) for w, loss in zip(weights, losses)])
            if wd and decay:
                reg = tf.add_n([tf.reduce_sum(tf.square(v)) / tf.cast(tf.size(v), tf.float32) for v in decay])
                total = total + wd * reg
            return total, losses

        @tf.function(reduce_retracing=True)
        def train_step(batch):
            with tf.GradientTape() as tape:
                total, losses = total_loss(batch, True)
            grads = tape.gradient(total, variables)
            pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
            optimizer.apply_gradients(pairs)
            return total, losses

        @tf.function(reduce_retracing=True)
        def eval_step(batch):
            return total_loss(batch, False)

        return train_step, eval_step

    def _full_batch(self, batch):
        batch = [np.asarray(b) for b in batch]
        images = batch[0]
        anchors = self.get_anchors(images.shape[1:])
        anchors = np.ascontiguousarray(np.broadcast_to(anchors, (images.shape[0],) + anchors.shape))
        return tuple(tf.constant(b) for b in batch) + (tf.constant(anchors),)

    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers, augmentation=None,
              custom_callbacks=None, lr_schedule=None, no_augmentation_sources=None, seed=0, verbose=1,
              optimizer=None, step_schedule=None):
        """Train from ``self.epoch`` up to ``epochs`` (matterport semantics: ``epochs`` is the last
        epoch number, so successive calls continue a schedule).

        Args:
            train_dataset, val_dataset: prepared :class:`ra2.mrcnn.utils.Dataset` (val may be None).
            learning_rate: SGD learning rate (used when ``lr_schedule`` is None).
            layers: ``"heads"``, ``"all"``, ``"3+"``, ``"4+"``, ``"5+"`` or a regex over layer names.
            augmentation: albumentations pipeline (``A.Compose``) applied to image and masks.
            custom_callbacks: objects with any of ``on_train_begin(logs)``, ``on_epoch_begin(epoch,
                logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_end(logs)`` (Keras callbacks work;
                ``set_model(keras_model)`` is called when present).
            lr_schedule: callable ``epoch -> learning rate`` (e.g. ``lambda e: 1e-3 * 0.98 ** e``).
            step_schedule: callable ``step -> learning rate`` over the global step (``epoch *
                STEPS_PER_EPOCH + step in epoch``), set before every step: warm-up and cosine decay (e.g.
                :func:`warmup_cosine`). Wins over ``lr_schedule``; the logged ``lr`` is the epoch's mean.
            no_augmentation_sources: dataset sources never augmented.
            seed: seeds the data order and TensorFlow's sampling ops.
            optimizer: None for matterport's SGD (momentum LEARNING_MOMENTUM, clipnorm
                GRADIENT_CLIP_NORM), or a callable ``learning_rate -> keras optimizer`` (e.g.
                ``lambda lr: keras.optimizers.Adam(lr, clipnorm=5.0)``, which trains from scratch
                much faster than SGD).
        Returns a list of per-epoch dicts (epoch, lr, loss, the five losses, val_* when val given).
        """
        from ra2.mrcnn.data import DataGenerator

        if self.mode != "training":
            raise ValueError("train() needs a model built with mode='training'")
        c = self.config
        regex = LAYER_REGEX.get(layers, layers)
        tf.random.set_seed(seed)
        train_gen = _generator_class()(train_dataset, c, shuffle=True, augmentation=augmentation, seed=seed,
                                       no_augmentation_sources=no_augmentation_sources)
        val_gen = DataGenerator(val_dataset, c, shuffle=True, seed=seed + 1) if val_dataset is not None else None

        os.makedirs(self.log_dir, exist_ok=True)
        c.to_json(Path(self.log_dir) / "config.json")
        self.set_trainable(regex, verbose=int(verbose > 1))
        if optimizer is None:
            optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=c.LEARNING_MOMENTUM,
                                             clipnorm=c.GRADIENT_CLIP_NORM)
        else:
            optimizer = optimizer(learning_rate)
        train_step, eval_step = self._make_train_step(optimizer)
        callbacks = list(custom_callbacks or [])
        for cb in callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(self.keras_model)
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin({})
        train_iter = _prefetch(_batches(train_gen))
        val_iter = _prefetch(_batches(val_gen)) if val_gen is not None else None
        history = []
        if verbose:
            print(f"Starting at epoch {self.epoch}, lr {learning_rate}; checkpoints {self.checkpoint_path}")
        try:
            for epoch in range(self.epoch, epochs):
                lr = float(lr_schedule(epoch)) if lr_schedule is not None else float(learning_rate)
                optimizer.learning_rate.assign(lr)
                for cb in callbacks:
                    if hasattr(cb, "on_epoch_begin"):
                        cb.on_epoch_begin(epoch, {})
                t0 = time.time()
                sums = np.zeros(6)
                step_lrs = []
                for k in range(c.STEPS_PER_EPOCH):
                    if step_schedule is not None:
                        step_lrs.append(float(step_schedule(epoch * c.STEPS_PER_EPOCH + k)))
                        optimizer.learning_rate.assign(step_lrs[-1])
                    total, losses = train_step(self._full_batch(next(train_iter)))
                    sums += np.array([float(total)] + [float(x) for x in losses])
                if step_lrs:
                    lr = float(np.mean(step_lrs))
                logs = {"epoch": epoch + 1, "lr": lr, "loss": sums[0] / c.STEPS_PER_EPOCH}
                logs.update({n: sums[i + 1] / c.STEPS_PER_EPOCH for i, n in enumerate(losses_mod.LOSS_NAMES)})
                if val_iter is not None and c.VALIDATION_STEPS:
                    vs = np.zeros(6)
                    for _ in range(c.VALIDATION_STEPS):
                        total, losses = eval_step(self._full_batch(next(val_iter)))
                        vs += np.array([float(total)] + [float(x) for x in losses])
                    logs["val_loss"] = vs[0] / c.VALIDATION_STEPS
                    logs.update({"val_" + n: vs[i + 1] / c.VALIDATION_STEPS
                                 for i, n in enumerate(losses_mod.LOSS_NAMES)})
                logs["seconds"] = time.time() - t0
                self.epoch = epoch + 1
                self.save_weights(self.checkpoint_path.format(epoch=self.epoch))
                history.append(logs)
                self._append_history(logs)
                if verbose:
                    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items()),
                          flush=True)
                for cb in callbacks:
                    if hasattr(cb, "on_epoch_end"):
                        cb.on_epoch_end(epoch, dict(logs))
        finally:
            train_iter.close()
            if val_iter is not None:
                val_iter.close()
        for cb in callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end({})
        return history

    def _append_history(self, logs):
        path = Path(self.log_dir) / "history.csv"
        new = not path.exists()
        with open(path, "a") as f:
            if new:
                f.write(",".join(logs) + "\n")
            f.write(",".join(str(v) for v in logs.values()) + "\n")

    # ------------------------------------------------------------------ evaluation

    def evaluate_map(self, dataset, image_ids=None, iou_threshold=0.5, iou_thresholds=None):
        """Mean AP over ``image_ids`` of ``dataset`` (ground truth from ``load_mask``; boxes from
        the masks). ``iou_thresholds`` given: mean over them (COCO's 0.5:0.95 with ``"coco"``)."""
        from ra2.mrcnn import utils

        ids = dataset.image_ids if image_ids is None else image_ids
        aps = []
        for image_id in ids:
            image = dataset.load_image(image_id, channels=self.config.IMAGE_CHANNEL_COUNT)
            gt_masks, gt_class_ids = dataset.load_mask(image_id)
            gt_boxes = utils.extract_bboxes(gt_masks)
            r = self.detect([image])[0]
            if iou_thresholds is None:
                ap = utils.compute_ap(gt_boxes, gt_class_ids, gt_masks, r["rois"], r["class_ids"],
                                      r["scores"], r["masks"], iou_threshold=iou_threshold)[0]
            else:
                th = None if iou_thresholds == "coco" else iou_thresholds
                ap = utils.compute_ap_range(gt_boxes, gt_class_ids, gt_masks, r["rois"], r["class_ids"],
                                            r["scores"], r["masks"], iou_thresholds=th, verbose=0)
            aps.append(ap)
        return float(np.mean(aps)) if aps else float("nan")

    # ------------------------------------------------------------------ weights and run folders

    def set_log_dir(self, model_path=None):
        """Set ``log_dir`` and ``checkpoint_path``; a checkpoint path of ours resumes its run and epoch."""
        self.epoch = 0
        now = datetime.datetime.now()
        name = (self.config.NAME or "model").lower()
        if model_path:
            m = _CHECKPOINT_RE.search(os.path.basename(str(model_path)))
            if m:
                self.epoch = int(m.group("epoch"))
                self.log_dir = os.path.dirname(os.path.abspath(str(model_path)))
                self.checkpoint_path = os.path.join(self.log_dir, f"mask_rcnn_{name}_{{epoch:04d}}.weights.h5")
                return
        self.log_dir = os.path.join(self.model_dir, f"{name}{now:%Y%m%dT%H%M%S}")
        self.checkpoint_path = os.path.join(self.log_dir, f"mask_rcnn_{name}_{{epoch:04d}}.weights.h5")

    def find_last(self) -> str:
        """Path of the last checkpoint of the most recent run of this config's NAME."""
        from ra2 import Ra2Error

        name = (self.config.NAME or "model").lower()
        runs = sorted(d for d in (os.listdir(self.model_dir) if os.path.isdir(self.model_dir) else [])
                      if d.startswith(name) and os.path.isdir(os.path.join(self.model_dir, d)))
        for run in reversed(runs):
            folder = os.path.join(self.model_dir, run)
            ckpts = sorted(f for f in os.listdir(folder) if _CHECKPOINT_RE.search(f))
            if ckpts:
                return os.path.join(folder, ckpts[-1])
        raise Ra2Error(f"{self.model_dir}: no checkpoint 'mask_rcnn_{name}_NNNN.weights.h5' in any run folder")

    def save_weights(self, path):
        """Save all weights in Keras 3 format (``path`` must end in ``.weights.h5``)."""
        path = str(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.keras_model.save_weights(path)

    def load_weights(self, path, by_name: bool = False, exclude=None):
        """Load weights from a Keras 3 ``.weights.h5`` or a matterport-format HDF5 file.

        Keras 3 files (ours, from :meth:`save_weights`) are matched layer by layer by *name*, so a
        training checkpoint loads into an inference model and vice versa. ``by_name=False``
        requires every weight-owning layer of this model (not in ``exclude``) to be in the file;
        ``by_name=True`` skips layers the file lacks. matterport files (``mask_rcnn_coco.h5``, the
        Keras 2 layout) go to :func:`ra2.mrcnn.legacy_weights.load_legacy_h5`. A shape mismatch
        raises ValueError naming the layer. A checkpoint path of ours resumes its run and epoch.
        """
        from ra2 import Ra2Error

        path = str(path)
        if not os.path.exists(path):
            raise Ra2Error(f"{path}: weights file not found")
        if _is_keras3_weights(path):
            load_keras3_by_name(self.keras_model, path, exclude=exclude, skip_missing=by_name)
        else:
            from ra2.mrcnn.legacy_weights import load_legacy_h5

            load_legacy_h5(self.keras_model, path, by_name=by_name, exclude=exclude)
        self.set_log_dir(path)


def _is_keras3_weights(path: str) -> bool:
    """Keras 3 ``.weights.h5`` files have a top ``layers`` group and no root ``layer_names`` attr."""
    import h5py

    with h5py.File(path, "r") as f:
        return "layer_names" not in f.attrs and "model_weights" not in f and "layers" in f


def _keras3_index(f):
    """Map layer name -> HDF5 group in a Keras 3 weights file (each layer's ``vars`` group carries
    the layer's name as attribute ``name``)."""
    import h5py

    index = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and name.endswith("/vars") and "name" in obj.attrs:
            layer_name = obj.attrs["name"]
            if isinstance(layer_name, bytes):
                layer_name = layer_name.decode()
            index.setdefault(str(layer_name), obj.parent)

    f.visititems(visit)
    return index


def _keras3_arrays(group):
    """Arrays of one layer's group in save order: its own ``vars`` then those of wrapped layers."""
    out = []
    if "vars" in group:
        v = group["vars"]
        out.extend(np.asarray(v[str(i)]) for i in range(len(v)))
    for key in sorted(group):
        if key != "vars" and hasattr(group[key], "keys"):
            out.extend(_keras3_arrays(group[key]))
    return out


def load_keras3_by_name(model: keras.Model, path: str, exclude=None, skip_missing: bool = True) -> list[str]:
    """Assign the weights of a Keras 3 ``.weights.h5`` file to ``model`` layer by layer by name.

    Nested models (``rpn_model``) are entered; TimeDistributed wrappers match by their own name.
    ``exclude``: layer names left untouched. ``skip_missing=False``: a weight-owning layer of
    ``model`` absent from the file raises ValueError. Returns the names of the loaded layers.
    """
    import h5py

    exclude = set(exclude or [])
    loaded = []
    with h5py.File(path, "r") as f:
        index = _keras3_index(f)
        for layer in _iter_layers(model):
            if layer.name in exclude or not layer.weights:
                continue
            group = index.get(layer.name)
            if group is None:
                if skip_missing:
                    continue
                raise ValueError(f"{path}: no weights for layer {layer.name!r} in the file")
            arrays = _keras3_arrays(group)
            if len(arrays) != len(layer.weights):
                raise ValueError(f"{path}: layer {layer.name!r} has {len(arrays)} weights in the file but "
                                 f"{len(layer.weights)} in the model")
            for var, arr in zip(layer.weights, arrays):
                if tuple(var.shape) != arr.shape:
                    raise ValueError(f"{path}: layer {layer.name!r} weight {var.path!r}: file shape {arr.shape}, "
                                     f"model shape {tuple(var.shape)}")
            for var, arr in zip(layer.weights, arrays):
                var.assign(arr)
            loaded.append(layer.name)
    return loaded
