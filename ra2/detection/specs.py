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
    """How one detector is trained: ``epochs`` x ``steps_per_epoch`` SGD steps of ``batch_size`` images,
    learning rate ``learning_rate * lr_decay ** epoch`` (the thesis's exponential decay), ``layers`` as in
    :meth:`ra2.mrcnn.model.MaskRCNN.train`."""

    epochs: int
    steps_per_epoch: int
    batch_size: int
    learning_rate: float
    lr_decay: float = 0.98
    layers: str = "all"
    augment: bool = True


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

# Anchor sides as fractions of the input side, one per pyramid level (P2..P6). On the phantom at 256 px,
# hand joints are ~4-6 % of the film's long side (10-16 px), the carpus ~23 %, toe joints 7-15 %; wrist areas
# are 15-40 % of the carpus crop.
_ANCHOR_FRACTIONS = {"film": (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2), "carpus": (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)}

RECIPES: dict[str, dict[str, TrainRecipe]] = {
    "smoke": {"film": TrainRecipe(epochs=1, steps_per_epoch=2, batch_size=2, learning_rate=0.01, augment=False),
              "carpus": TrainRecipe(epochs=1, steps_per_epoch=2, batch_size=2, learning_rate=0.01,
                                    augment=False)},
    # Measured on the shared 2-core machine (load average ~9): ~8-10 s per step at 256 px plus ~1 min of
    # graph tracing per detector, so the demo can afford only a few dozen steps per detector
    # (docs/pipeline.md): far too few to learn the joints; the layout fallback fills what is missed.
    "cpu": {"film": TrainRecipe(epochs=3, steps_per_epoch=8, batch_size=2, learning_rate=0.01),
            "carpus": TrainRecipe(epochs=3, steps_per_epoch=6, batch_size=2, learning_rate=0.01)},
    "full": {"film": TrainRecipe(epochs=100, steps_per_epoch=100, batch_size=4, learning_rate=0.002),
             "carpus": TrainRecipe(epochs=100, steps_per_epoch=100, batch_size=8, learning_rate=0.002)},
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


def detector_config(name: str, profile: str):
    """A :class:`ra2.mrcnn.Config` instance for detector ``name`` in ``profile``.

    Grayscale input of side ``spec.size(profile)`` (square resize mode: the pre-shrunk image is padded to a
    square), ``NUM_CLASSES = 1 + classes``, anchors proportional to the input side,
    ``DETECTION_MIN_CONFIDENCE = 0`` (the thesis's setting: :func:`ra2.detection.assign.assign_instances`
    picks one box per class from everything the detector returns).
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
        "RPN_ANCHOR_SCALES": tuple(max(2, int(round(side * f))) for f in _ANCHOR_FRACTIONS[kind]),
        "DETECTION_MIN_CONFIDENCE": 0.0,
        "DETECTION_NMS_THRESHOLD": 0.3,
        "MAX_GT_INSTANCES": spec.num_classes + 2,
        "DETECTION_MAX_INSTANCES": 4 * spec.num_classes,
        "TRAIN_BN": profile == "full",
    }
    if profile == "full":
        attrs.update({"BACKBONE": "resnet50", "PRE_NMS_LIMIT": 6000, "POST_NMS_ROIS_TRAINING": 1000,
                      "POST_NMS_ROIS_INFERENCE": 500, "TRAIN_ROIS_PER_IMAGE": 100,
                      "RPN_TRAIN_ANCHORS_PER_IMAGE": 256, "MINI_MASK_SHAPE": (56, 56)})
    elif profile == "cpu":
        attrs.update({"BACKBONE": "resnet18_slim", "PRE_NMS_LIMIT": 2000, "POST_NMS_ROIS_TRAINING": 300,
                      "POST_NMS_ROIS_INFERENCE": 200, "TRAIN_ROIS_PER_IMAGE": 64,
                      "RPN_TRAIN_ANCHORS_PER_IMAGE": 128, "TOP_DOWN_PYRAMID_SIZE": 64,
                      "FPN_CLASSIF_FC_LAYERS_SIZE": 256, "MINI_MASK_SHAPE": (28, 28)})
    else:  # smoke
        attrs.update({"BACKBONE": "resnet18_slim", "PRE_NMS_LIMIT": 300, "POST_NMS_ROIS_TRAINING": 64,
                      "POST_NMS_ROIS_INFERENCE": 48, "TRAIN_ROIS_PER_IMAGE": 16,
                      "RPN_TRAIN_ANCHORS_PER_IMAGE": 32, "TOP_DOWN_PYRAMID_SIZE": 16,
                      "FPN_CLASSIF_FC_LAYERS_SIZE": 32, "MINI_MASK_SHAPE": (14, 14)})
    config_class = type(f"{''.join(p.title() for p in name.split('_'))}Config", (Config,), attrs)
    return config_class()
