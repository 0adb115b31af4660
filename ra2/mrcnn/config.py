"""Mask R-CNN configuration in matterport's style.

One ``Config`` class of commented UPPER_CASE attributes carrying matterport's names and defaults.
A data set or an inference run subclasses it and overrides a few attributes; derived values
(``BATCH_SIZE``, ``IMAGE_SHAPE``, ``IMAGE_META_SIZE``) are computed once in ``__init__``.
``display()`` prints the whole configuration; ``to_json`` / ``from_json`` give a round trip so a
trained model's folder records the configuration it was trained with.

Example::

    class BonesConfig(Config):
        NAME = "bones"
        NUM_CLASSES = 1 + 3
        IMAGE_CHANNEL_COUNT = 1
        MEAN_PIXEL = [110.0]

    config = BonesConfig()
    config.to_json("run/config.json")
    same = Config.from_json("run/config.json")
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np

#: Attributes computed in ``__init__`` from the others; never read back from a dict.
DERIVED_ATTRIBUTES = ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE")

#: Resize modes understood by ``ra2.mrcnn.utils.resize_image``.
RESIZE_MODES = ("none", "square", "pad64", "crop")


class Config:
    """Base configuration. Subclass it and override the attributes you need.

    Every attribute is an UPPER_CASE class attribute; instances may also carry instance attributes
    of the same names (``from_dict`` sets them), which take precedence as usual in Python.
    """

    # Name the configurations (e.g. "coco", "shapes"); names the model's log folder.
    NAME = None

    # Number of GPUs to use (kept for matterport compatibility; our model runs on one device).
    GPU_COUNT = 1

    # Number of images to train with on each GPU. BATCH_SIZE = IMAGES_PER_GPU * GPU_COUNT.
    IMAGES_PER_GPU = 2

    # Number of training steps per epoch. An "epoch" here is this many batches, not a full pass
    # over the data set; validation statistics and checkpoints are produced once per epoch.
    STEPS_PER_EPOCH = 1000

    # Number of validation steps to run at the end of every training epoch.
    VALIDATION_STEPS = 50

    # Backbone network: "resnet50", "resnet101", a light backbone named by ra2.mrcnn.model, or a
    # callable that builds the feature maps (then COMPUTE_BACKBONE_SHAPE must be given too).
    BACKBONE = "resnet101"

    # Channels of the four stages (C2..C5) of the "resnet18_slim" backbone; None: (32, 64, 128, 256).
    BACKBONE_WIDTHS = None

    # Only used when BACKBONE is a callable: function(image_shape) -> [n_levels, (height, width)]
    # giving the shape of each level of the feature pyramid.
    COMPUTE_BACKBONE_SHAPE = None

    # Strides of each level of the feature pyramid (P2..P6), in input-image pixels.
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]

    # Size of the fully connected layers in the classification graph.
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024

    # Number of channels of the top-down layers of the feature pyramid.
    TOP_DOWN_PYRAMID_SIZE = 256

    # Channels of the RPN's shared 3x3 convolution (`rpn_conv_shared`) and of the mask head's four
    # convolutions (`mrcnn_mask_conv1..4`). matterport hard-codes 512 and 256; light CPU configs shrink them.
    RPN_CONV_SHARED_SIZE = 512
    MASK_CONV_SIZE = 256

    # Number of classification classes, including the background (class 0).
    NUM_CLASSES = 1

    # Side length of the square anchors, in input-image pixels, one per pyramid level.
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)

    # Ratios (width / height) of the anchors at each location; 1 is square, 0.5 is tall.
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]

    # Anchor stride: 1 creates anchors at every feature-map cell, 2 at every other cell, ...
    RPN_ANCHOR_STRIDE = 1

    # Non-max suppression threshold applied to the RPN proposals. Raise it during training to
    # obtain more proposals.
    RPN_NMS_THRESHOLD = 0.7

    # Number of anchors per image used to train the RPN.
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256

    # Number of top-scoring anchors kept before the proposal layer's non-max suppression.
    PRE_NMS_LIMIT = 6000

    # Regions of interest kept after non-max suppression (training and inference).
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    # If True, instance masks are stored cropped to their box and resized to MINI_MASK_SHAPE,
    # which saves memory when training on large images.
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)  # (height, width) of the mini-mask

    # Input image resizing (see ra2.mrcnn.utils.resize_image):
    # none:   no resizing or padding; the image is returned unchanged.
    # square: resize so the short side is IMAGE_MIN_DIM and the long side at most IMAGE_MAX_DIM,
    #         then pad with zeros to an IMAGE_MAX_DIM x IMAGE_MAX_DIM square.
    # pad64:  pad width and height to multiples of 64 (IMAGE_MIN_DIM upscales, IMAGE_MAX_DIM is
    #         ignored).
    # crop:   take random IMAGE_MIN_DIM x IMAGE_MIN_DIM crops (training only).
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    # Minimum scaling ratio, checked after IMAGE_MIN_DIM; 0 disables it. For example 2 upscales
    # every image to at least twice its size, even if IMAGE_MIN_DIM does not require it.
    IMAGE_MIN_SCALE = 0
    # Number of colour channels per image: 3 for RGB, 1 for grayscale (radiographs). Changing it
    # changes the first convolution, so pretrained RGB weights must exclude "conv1".
    IMAGE_CHANNEL_COUNT = 3

    # Mean pixel value per channel, subtracted from the image before it enters the network.
    # Its length must equal IMAGE_CHANNEL_COUNT (use e.g. [110.0] for grayscale).
    MEAN_PIXEL = [123.7, 116.8, 103.9]

    # Number of ROIs per image fed to the classifier and mask heads during training. The paper
    # uses 512, but the RPN rarely proposes enough positives to fill that at 33% positives.
    TRAIN_ROIS_PER_IMAGE = 200

    # Fraction of positive ROIs used to train the classifier and mask heads.
    ROI_POSITIVE_RATIO = 0.33

    # Output size (height = width) of ROIAlign for the classifier and for the mask head.
    POOL_SIZE = 7
    MASK_POOL_SIZE = 14

    # Shape [height, width] of the output mask. Changing it requires changing the mask head.
    MASK_SHAPE = [28, 28]

    # Maximum number of ground-truth instances used per image.
    MAX_GT_INSTANCES = 100

    # Standard deviations that normalise the box refinement targets of the RPN and the final
    # detections: [dy, dx, log(dh), log(dw)] are divided by them.
    RPN_BBOX_STD_DEV = [0.1, 0.1, 0.2, 0.2]
    BBOX_STD_DEV = [0.1, 0.1, 0.2, 0.2]

    # Maximum number of final detections per image.
    DETECTION_MAX_INSTANCES = 100

    # Minimum class probability for a detection to be kept; ROIs below it are dropped.
    DETECTION_MIN_CONFIDENCE = 0.7

    # Non-maximum suppression threshold applied per class to the final detections.
    DETECTION_NMS_THRESHOLD = 0.3

    # Learning rate and momentum of SGD. The paper uses 0.02, which tends to make the weights
    # explode with Keras; matterport uses 0.001.
    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9

    # L2 weight decay (regularisation) factor.
    WEIGHT_DECAY = 0.0001

    # Loss weights for a finer control of the optimisation; each loss is multiplied by its weight.
    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.0,
        "rpn_bbox_loss": 1.0,
        "mrcnn_class_loss": 1.0,
        "mrcnn_bbox_loss": 1.0,
        "mrcnn_mask_loss": 1.0,
    }

    # Use the RPN's proposals to train the heads. Set False to train the heads on ROIs supplied
    # by the data generator (e.g. to debug the heads without a trained RPN).
    USE_RPN_ROIS = True

    # Train or freeze the batch-normalisation layers. False (the default) freezes them, which
    # suits the small batches Mask R-CNN trains with.
    TRAIN_BN = False

    # Gradient norm clipping.
    GRADIENT_CLIP_NORM = 5.0

    # Normalisation layers of the backbone and the heads (same layer names either way):
    # "batch": batch normalisation (matterport), frozen at its statistics unless TRAIN_BN. Frozen BN suits
    #          fine-tuning pretrained weights; from scratch its initial statistics normalise nothing.
    # "group": group normalisation (gcd(8, channels) groups): per-image statistics, identical in training and
    #          inference, independent of the batch size: what training from scratch on small batches needs.
    NORM = "batch"

    # IoU bounds of the RPN's anchor targets: an anchor is positive at IoU >= RPN_POSITIVE_IOU with some
    # ground-truth box (or when it is a box's best anchor), negative below RPN_NEGATIVE_IOU (matterport: 0.7
    # and 0.3). Lowering the positive bound gives small objects more positive anchors.
    RPN_POSITIVE_IOU = 0.7
    RPN_NEGATIVE_IOU = 0.3

    def __init__(self):
        """Validate the attributes and compute the derived values."""
        self._validate()
        # Effective batch size.
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        # Input image size [height, width, channels].
        if self.IMAGE_RESIZE_MODE == "crop":
            side = self.IMAGE_MIN_DIM
        else:
            side = self.IMAGE_MAX_DIM
        self.IMAGE_SHAPE = [int(side), int(side), int(self.IMAGE_CHANNEL_COUNT)]
        # Length of the image meta vector, see ra2.mrcnn.data.compose_image_meta:
        # image_id (1) + original_image_shape (3) + image_shape (3) + window (4) + scale (1)
        # + active_class_ids (NUM_CLASSES).
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        if not (isinstance(self.BACKBONE, str) or callable(self.BACKBONE)):
            raise ValueError(
                f"Config.BACKBONE must be a backbone name or a callable, got {self.BACKBONE!r}"
            )
        if callable(self.BACKBONE) and not callable(self.COMPUTE_BACKBONE_SHAPE):
            raise ValueError(
                "Config.BACKBONE is a callable, so Config.COMPUTE_BACKBONE_SHAPE must be a callable "
                "image_shape -> [levels, (height, width)] too"
            )
        if self.NORM not in ("batch", "group"):
            raise ValueError(f"Config.NORM must be 'batch' or 'group', got {self.NORM!r}")
        if not 0 < float(self.RPN_NEGATIVE_IOU) <= float(self.RPN_POSITIVE_IOU) <= 1:
            raise ValueError(f"Config.RPN_NEGATIVE_IOU ({self.RPN_NEGATIVE_IOU}) and RPN_POSITIVE_IOU "
                             f"({self.RPN_POSITIVE_IOU}) must satisfy 0 < negative <= positive <= 1")
        if self.IMAGE_RESIZE_MODE not in RESIZE_MODES:
            raise ValueError(
                f"Config.IMAGE_RESIZE_MODE must be one of {RESIZE_MODES}, got {self.IMAGE_RESIZE_MODE!r}"
            )
        if int(self.NUM_CLASSES) < 1:
            raise ValueError(f"Config.NUM_CLASSES counts the background too, so must be >= 1, got {self.NUM_CLASSES}")
        if int(self.IMAGE_CHANNEL_COUNT) < 1:
            raise ValueError(f"Config.IMAGE_CHANNEL_COUNT must be >= 1, got {self.IMAGE_CHANNEL_COUNT}")
        mean_pixel = np.atleast_1d(np.asarray(self.MEAN_PIXEL, dtype=float))
        if mean_pixel.ndim != 1 or mean_pixel.shape[0] != int(self.IMAGE_CHANNEL_COUNT):
            raise ValueError(
                f"Config.MEAN_PIXEL has {mean_pixel.size} value(s) but IMAGE_CHANNEL_COUNT is "
                f"{self.IMAGE_CHANNEL_COUNT}; give one mean per channel (e.g. MEAN_PIXEL = [110.0] "
                "for grayscale)"
            )
        if len(self.BACKBONE_STRIDES) != len(self.RPN_ANCHOR_SCALES):
            raise ValueError(
                f"Config.RPN_ANCHOR_SCALES has {len(self.RPN_ANCHOR_SCALES)} values but BACKBONE_STRIDES "
                f"has {len(self.BACKBONE_STRIDES)}; give one anchor scale per pyramid level"
            )
        if self.IMAGE_RESIZE_MODE == "pad64" and self.IMAGE_MIN_DIM and self.IMAGE_MIN_DIM % 64:
            raise ValueError(
                f"Config.IMAGE_MIN_DIM must be a multiple of 64 in pad64 mode, got {self.IMAGE_MIN_DIM}"
            )
        for name in ("RPN_BBOX_STD_DEV", "BBOX_STD_DEV"):
            if len(getattr(self, name)) != 4:
                raise ValueError(f"Config.{name} must have 4 values (dy, dx, dh, dw)")

    # ------------------------------------------------------------------ introspection
    def attribute_names(self) -> list[str]:
        """Sorted names of every configuration attribute (UPPER_CASE, not callable methods)."""
        names = []
        for name in dir(self):
            if name.startswith("_") or not name.isupper():
                continue
            names.append(name)
        return sorted(names)

    def to_text(self) -> str:
        """The configuration as matterport's ``display()`` prints it: one ``NAME value`` per line."""
        lines = ["Configurations:"]
        for name in self.attribute_names():
            lines.append(f"{name:30} {getattr(self, name)}")
        return "\n".join(lines) + "\n"

    def display(self) -> None:
        """Print every configuration value (call it at the start of a training log)."""
        print(self.to_text())

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Every attribute as JSON-friendly values: tuples and arrays become lists, NumPy scalars
        become Python numbers, callables become ``{"__callable__": "module:qualname"}``."""
        return {name: _to_jsonable(getattr(self, name), name) for name in self.attribute_names()}

    def to_json(self, path: str | Path) -> None:
        """Write ``to_dict()`` to ``path`` as indented JSON (a trained model's folder records it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """An instance of ``cls`` with the given attribute values; derived values are recomputed.

        Keys must be UPPER_CASE attribute names; unknown UPPER_CASE keys are kept (subclass
        attributes). Lists stay lists (so ``to_dict`` of the result equals ``values``).
        """
        config = cls.__new__(cls)
        for name, value in values.items():
            if not isinstance(name, str) or not name.isupper() or name.startswith("_"):
                raise ValueError(f"configuration key {name!r} is not an UPPER_CASE attribute name")
            if name in DERIVED_ATTRIBUTES:
                continue
            setattr(config, name, _from_jsonable(value))
        Config.__init__(config)
        return config

    @classmethod
    def from_json(cls, path: str | Path) -> "Config":
        """Read a configuration written by ``to_json``.

        Raises ``ra2.Ra2Error`` naming the file when it is missing or not a JSON object.
        """
        from ra2 import Ra2Error

        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise Ra2Error(f"{path}: configuration file not found") from None
        except json.JSONDecodeError as error:
            raise Ra2Error(f"{path}: not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise Ra2Error(f"{path}: expected a JSON object of configuration values")
        try:
            return cls.from_dict(values)
        except ValueError as error:
            raise Ra2Error(f"{path}: {error}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # configurations are mutable

    def __repr__(self) -> str:
        return f"<{type(self).__name__} NAME={self.NAME!r}>"


def _to_jsonable(value: Any, name: str = "") -> Any:
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v, name) for v in value]
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist(), name)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        module = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None)
        if not module or not qualname or "<" in qualname:
            raise ValueError(
                f"Config.{name} is a callable without an importable name ({value!r}); use a "
                "module-level function so the configuration can be saved"
            )
        return {"__callable__": f"{module}:{qualname}"}
    raise ValueError(f"Config.{name} has a value of type {type(value).__name__} that JSON cannot hold")


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__callable__"}:
            module_name, _, qualname = value["__callable__"].partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            return obj
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value
