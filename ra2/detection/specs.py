"""The four joint detectors: what each one finds, at which input size, with which Mask R-CNN configuration.

A :class:`DetectorSpec` names a contract detector (``feet``, ``hands``, ``wrist_erosion``,
``wrist_narrowing``), its ordered classes (class id = position + 1, from ``contract.DETECTOR_CLASSES``) and
its square input side per profile. :func:`detector_config` turns a spec and a profile into a
:class:`ra2.mrcnn.Config` instance.

Profiles
--------
- ``smoke``: 64 px inputs, a slim backbone and tiny heads; trains in seconds (tests only, detects nothing
  useful).
- ``cpu``: the demo on a 2-core CPU: 256 px hands/feet, 128 px wrist crops, the slim ResNet-18 backbone,
  trained from scratch for a few minutes per detector.
- ``full``: the thesis's sizes (512 px hands/feet, 256 px wrist crops) with ResNet-50 and matterport's head
  sizes, meant for a GPU. The thesis trained only the heads from COCO weights; without pretrained weights
  every layer is trained here.

Input images are grayscale (``IMAGE_CHANNEL_COUNT = 1``), pre-shrunk so that their long side equals the
input side (:mod:`ra2.detection.frame`); Mask R-CNN then only pads them to a square.
"""

from __future__ import annotations

from dataclasses import dataclass

from ra2 import Ra2Error, contract

PROFILES = ("smoke", "cpu", "full")


@dataclass(frozen=True)
class TrainRecipe:
    """How one detector is trained from scratch.

    ``steps`` optimiser steps of ``batch_size`` images, grouped in epochs of ``steps_per_epoch`` (one
    checkpoint, one log line and, with validation images, one point of the learning curve per epoch).
    ``optimizer``: ``"adam"`` (from scratch; :mod:`docs/detection.md` has the curves) or ``"sgd"`` (momentum
    0.9, matterport's, for fine-tuning pretrained weights). ``schedule``: ``"cosine"`` (linear warm-up over
    ``warmup_steps``, then a cosine decay from ``learning_rate`` to 0) or ``"exponential"`` (the thesis's
    ``learning_rate * lr_decay ** epoch``). Gradients are clipped to norm ``clipnorm``. ``augment``:
    the albumentations pipeline of :func:`ra2.detection.train.augmentation_pipeline`.
    """

    steps: int
    batch_size: int
    learning_rate: float
    steps_per_epoch: int = 100
    optimizer: str = "adam"
    schedule: str = "cosine"
    warmup_steps: int = 0
    lr_decay: float = 0.98
    clipnorm: float = 5.0
    layers: str = "all"
    augment: bool = True

    @property
    def epochs(self) -> int:
        return max(1, -(-int(self.steps) // int(self.steps_per_epoch)))


@dataclass(frozen=True)
class DetectorSpec:
    """One contract detector: its class names (id = index + 1), input side per profile, and whether it runs
    on the hand detector's carpus crop instead of the whole film."""

    name: str
    class_names: tuple[str, ...]
    input_size: dict[str, int]
    on_carpus: bool

    @property
    def num_classes(self) -> int:
        """Object classes without the background."""
        return len(self.class_names)

    def class_id(self, class_name: str) -> int:
        """1-based Mask R-CNN class id of ``class_name``."""
        return self.class_names.index(class_name) + 1

    def size(self, profile: str) -> int:
        check_profile(profile)
        return int(self.input_size[profile])


_FILM_SIZES = {"smoke": 64, "cpu": 256, "full": 512}
_CARPUS_SIZES = {"smoke": 64, "cpu": 128, "full": 256}

SPECS: dict[str, DetectorSpec] = {
    name: DetectorSpec(name=name, class_names=contract.DETECTOR_CLASSES[name],
                       input_size=dict(_CARPUS_SIZES if name in contract.CARPUS_DETECTORS else _FILM_SIZES),
                       on_carpus=name in contract.CARPUS_DETECTORS)
    for name in contract.DETECTORS
}

# Anchor sides as fractions of the input side, one per pyramid level (P2..P6; strides 4..64 px). Measured on
# phantom films shrunk to 256 px (60 patients, size scales 0.35-1.0): hand joints 9-24 px (median 14), the
# carpus 43-75 px, toe joints 16-45 px; on 128 px carpus crops the wrist areas are 17-56 px. The film
# detectors' 12 px anchors on P2 cover the smallest finger joints, 48 px on P4 the carpus.
_ANCHOR_FRACTIONS = {"film": (3 / 64, 3 / 32, 3 / 16, 3 / 8, 3 / 4), "carpus": (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)}

RECIPES: dict[str, dict[str, TrainRecipe]] = {
    "smoke": {kind: TrainRecipe(steps=2, batch_size=2, learning_rate=1e-3, steps_per_epoch=2, augment=False)
              for kind in ("film", "carpus")},
    # From scratch on a 2-core CPU: Adam with warm-up and a cosine decay, group normalisation
    # (docs/detection.md has the learning curves these numbers were chosen on).
    "cpu": {"film": TrainRecipe(steps=2000, batch_size=2, learning_rate=1e-3, steps_per_epoch=250,
                                warmup_steps=150),
            "carpus": TrainRecipe(steps=2000, batch_size=2, learning_rate=1e-3, steps_per_epoch=250,
                                  warmup_steps=150)},
    # The same recipe for a GPU: larger inputs and batches, more steps.
    "full": {"film": TrainRecipe(steps=20000, batch_size=8, learning_rate=1e-3, steps_per_epoch=500,
                                 warmup_steps=500),
             "carpus": TrainRecipe(steps=20000, batch_size=16, learning_rate=1e-3, steps_per_epoch=500,
                                   warmup_steps=500)},
}


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise Ra2Error(f"unknown detector profile {profile!r}; expected one of {PROFILES}")
    return profile


def get_spec(name: str) -> DetectorSpec:
    if name not in SPECS:
        raise Ra2Error(f"unknown detector {name!r}; expected one of {contract.DETECTORS}")
    return SPECS[name]


def recipe(name: str, profile: str) -> TrainRecipe:
    """The training recipe of detector ``name`` in ``profile``."""
    spec = get_spec(name)
    return RECIPES[check_profile(profile)]["carpus" if spec.on_carpus else "film"]


def detector_config(name: str, profile: str, **overrides):
    """A :class:`ra2.mrcnn.Config` instance for detector ``name`` in ``profile``.

    Grayscale input of side ``spec.size(profile)`` (square resize mode: the pre-shrunk image is padded to a
    square), ``NUM_CLASSES = 1 + classes``, anchors proportional to the input side, group normalisation
    (trained from scratch on batches of a few images), ``DETECTION_MIN_CONFIDENCE = 0`` (the thesis's
    setting: :func:`ra2.detection.assign.assign_instances` picks one box per class from everything the
    detector returns). ``overrides``: Config attributes set last (experiments).
    """
    from ra2.mrcnn import Config

    spec = get_spec(name)
    side = spec.size(profile)
    kind = "carpus" if spec.on_carpus else "film"
    rec = recipe(name, profile)
    attrs = {
        "NAME": f"{name}_{profile}",
        "NUM_CLASSES": 1 + spec.num_classes,
        "IMAGE_CHANNEL_COUNT": 1,
        "MEAN_PIXEL": [110.0],
        "IMAGE_RESIZE_MODE": "square",
        "IMAGE_MIN_DIM": side,
        "IMAGE_MAX_DIM": side,
        "IMAGES_PER_GPU": rec.batch_size,
        "STEPS_PER_EPOCH": rec.steps_per_epoch,
        "VALIDATION_STEPS": 0,
        "LEARNING_RATE": rec.learning_rate,
        "GRADIENT_CLIP_NORM": rec.clipnorm,
        "RPN_ANCHOR_SCALES": tuple(max(2, int(round(side * f))) for f in _ANCHOR_FRACTIONS[kind]),
        "RPN_POSITIVE_IOU": 0.5,
        "NORM": "group",
        "DETECTION_MIN_CONFIDENCE": 0.0,
        "DETECTION_NMS_THRESHOLD": 0.3,
        "MAX_GT_INSTANCES": spec.num_classes + 2,
        "DETECTION_MAX_INSTANCES": 4 * spec.num_classes,
    }
    if profile == "full":
        attrs.update({"BACKBONE": "resnet50", "PRE_NMS_LIMIT": 6000, "POST_NMS_ROIS_TRAINING": 1000,
                      "POST_NMS_ROIS_INFERENCE": 500, "TRAIN_ROIS_PER_IMAGE": 100,
                      "RPN_TRAIN_ANCHORS_PER_IMAGE": 256, "MINI_MASK_SHAPE": (56, 56)})
    elif profile == "cpu":
        # About 2.1 M parameters (8.6 MB of float32 weights) per detector, 0.4 s per training step of two
        # 256 px images on 2 cores (docs/detection.md).
        attrs.update({"BACKBONE": "resnet18_slim", "BACKBONE_WIDTHS": (32, 64, 128, 128), "PRE_NMS_LIMIT": 2000,
                      "POST_NMS_ROIS_TRAINING": 300, "POST_NMS_ROIS_INFERENCE": 200, "TRAIN_ROIS_PER_IMAGE": 64,
                      "RPN_TRAIN_ANCHORS_PER_IMAGE": 128, "TOP_DOWN_PYRAMID_SIZE": 64,
                      "RPN_CONV_SHARED_SIZE": 128, "FPN_CLASSIF_FC_LAYERS_SIZE": 128, "MASK_CONV_SIZE": 64,
                      "MINI_MASK_SHAPE": (28, 28)})
    else:  # smoke
        attrs.update({"BACKBONE": "resnet18_slim", "BACKBONE_WIDTHS": (16, 16, 32, 32), "PRE_NMS_LIMIT": 300,
                      "POST_NMS_ROIS_TRAINING": 64, "POST_NMS_ROIS_INFERENCE": 48, "TRAIN_ROIS_PER_IMAGE": 16,
                      "RPN_TRAIN_ANCHORS_PER_IMAGE": 32, "TOP_DOWN_PYRAMID_SIZE": 16,
                      "RPN_CONV_SHARED_SIZE": 16, "FPN_CLASSIF_FC_LAYERS_SIZE": 32, "MASK_CONV_SIZE": 16,
                      "MINI_MASK_SHAPE": (14, 14)})
    attrs.update(overrides)
    config_class = type(f"{''.join(p.title() for p in name.split('_'))}Config", (Config,), attrs)
    return config_class()
