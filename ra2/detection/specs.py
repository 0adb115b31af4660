"""The four joint detectors: what each one finds, at which input size, with which Mask R-CNN configuration.

A :class:`DetectorSpec` names a contract detector (``feet``, ``hands``, ``wrist_erosion``,
``wrist_narrowing``), its ordered classes (class id = position + 1, from ``contract.DETECTOR_CLASSES``) and
its square input side per profile. :func:`detector_config` turns a spec and a profile into a
:class:`ra2.mrcnn.Config` instance.

The settings of each profile (input sides, recipes, network sizes) live in :mod:`ra2.profiles`; this module
turns them into a detector's configuration.

Input images are grayscale (``IMAGE_CHANNEL_COUNT = 1``), pre-shrunk so that their long side equals the
input side (:mod:`ra2.detection.frame`); Mask R-CNN then only pads them to a square.
"""

from __future__ import annotations

from dataclasses import dataclass

from ra2 import Ra2Error, contract
from ra2.profiles import ANCHOR_FRACTIONS, DetectorRecipe, Settings, settings


@dataclass(frozen=True)
class DetectorSpec:
    """One contract detector: its class names (id = index + 1) and whether it runs on the hand detector's
    carpus crop (``kind`` ``"carpus"``) instead of the whole film (``"film"``)."""

    name: str
    class_names: tuple[str, ...]
    on_carpus: bool

    @property
    def num_classes(self) -> int:
        """Object classes without the background."""
        return len(self.class_names)

    @property
    def kind(self) -> str:
        return "carpus" if self.on_carpus else "film"

    def class_id(self, class_name: str) -> int:
        """1-based Mask R-CNN class id of ``class_name``."""
        return self.class_names.index(class_name) + 1

    def size(self, profile: str | Settings) -> int:
        """Square input side in ``profile`` (a name or resolved :class:`ra2.profiles.Settings`)."""
        return int(settings(profile).detectors[self.kind].side)


SPECS: dict[str, DetectorSpec] = {
    name: DetectorSpec(name=name, class_names=contract.DETECTOR_CLASSES[name],
                       on_carpus=name in contract.CARPUS_DETECTORS)
    for name in contract.DETECTORS
}


def get_spec(name: str) -> DetectorSpec:
    if name not in SPECS:
        raise Ra2Error(f"unknown detector {name!r}; expected one of {contract.DETECTORS}")
    return SPECS[name]


def recipe(name: str, profile: str | Settings) -> DetectorRecipe:
    """The training recipe of detector ``name`` in ``profile`` (a name or resolved settings)."""
    return settings(profile).detectors[get_spec(name).kind].recipe


def detector_config(name: str, profile: str | Settings, **overrides):
    """A :class:`ra2.mrcnn.Config` instance for detector ``name`` in ``profile``.

    Grayscale input of side ``spec.size(profile)`` (square resize mode: the pre-shrunk image is padded to a
    square), ``NUM_CLASSES = 1 + classes``, anchors proportional to the input side, group normalisation
    (trained from scratch on batches of a few images), ``DETECTION_MIN_CONFIDENCE = 0`` (the thesis's
    setting: :func:`ra2.detection.assign.assign_instances` picks one box per class from everything the
    detector returns). ``overrides``: Config attributes set last (experiments).
    """
    from ra2.mrcnn import Config

    spec = get_spec(name)
    resolved = settings(profile)
    kind = resolved.detectors[spec.kind]
    side, rec, network = kind.side, kind.recipe, kind.network
    attrs = {
        "NAME": f"{name}_{resolved.name}",
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
        "RPN_ANCHOR_SCALES": tuple(max(2, int(round(side * f))) for f in ANCHOR_FRACTIONS[spec.kind]),
        "RPN_POSITIVE_IOU": 0.5,
        "NORM": "group",
        "DETECTION_MIN_CONFIDENCE": 0.0,
        "DETECTION_NMS_THRESHOLD": 0.3,
        "MAX_GT_INSTANCES": spec.num_classes + 2,
        "DETECTION_MAX_INSTANCES": 4 * spec.num_classes,
    }
    attrs.update(network)
    attrs.update(overrides)
    config_class = type(f"{''.join(p.title() for p in name.split('_'))}Config", (Config,), attrs)
    return config_class()
