"""Train the four joint detectors from annotated films (the phantom's ``annotations.json``).

Each detector is a Mask R-CNN trained from scratch (no pretrained weights are available offline) with the
profile's :class:`~ra2.profiles.DetectorRecipe` (Adam with a linear warm-up and a cosine decay; SGD with the
thesis's exponential decay remains for fine-tuning) and albumentations augmentation: domain randomisation for
the film detectors (``ra2.detection.augment.film_augmentation``), a milder pipeline for the wrist detectors'
carpus crops. A trained detector's folder::

    <out_dir>/<detector>/config.json          the ra2.mrcnn Config it was trained with
    <out_dir>/<detector>/model.weights.h5     final weights (Keras 3)
    <out_dir>/<detector>/layout.json          the class layout (Layout.fit on the training boxes, in the
                                              detector-image frame) + its mean placement (origin, scale)
    <out_dir>/<detector>/metadata.json        profile, recipe, images, per-epoch losses, seconds, versions
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.detection.specs import detector_config, get_spec, recipe
from ra2.devices import Devices
from ra2.models_folder import CONFIG_FILE, LAYOUT_FILE, METADATA_FILE, WEIGHTS_FILE
from ra2.profiles import Settings, settings
from ra2.runinfo import environment, write_json

log = logging.getLogger("ra2.detection")

def augmentation_pipeline(kind: str = "film"):
    """Size-preserving albumentations pipeline for ``[H, W, 1]`` uint8 detector images with masks.

    ``kind`` ``"film"`` (the hand and feet detectors): the domain randomisation of
    :func:`ra2.detection.augment.film_augmentation` (framing, film borders, collimation, markers, text,
    rulers, tone curves, blur, compression, noise); ``"carpus"`` (the wrist detectors' carpus crops): the
    milder :func:`ra2.detection.augment.basic_augmentation`. No flips: right limbs are mirrored before
    detection, so the classes are side-specific.
    """
    from ra2.detection.augment import basic_augmentation, film_augmentation

    if kind == "film":
        return film_augmentation()
    if kind == "carpus":
        return basic_augmentation()
    raise Ra2Error(f"unknown augmentation kind {kind!r}; expected film or carpus")


def make_optimizer(rec):
    """``learning_rate -> keras optimizer`` for :meth:`ra2.mrcnn.model.MaskRCNN.train` from a recipe."""
    import keras

    if rec.optimizer == "adam":
        return lambda lr: keras.optimizers.Adam(lr, clipnorm=rec.clipnorm)
    if rec.optimizer == "sgd":
        return lambda lr: keras.optimizers.SGD(lr, momentum=0.9, clipnorm=rec.clipnorm)
    raise Ra2Error(f"unknown optimizer {rec.optimizer!r} in the detector recipe; expected adam or sgd")


def schedules(rec):
    """``(lr_schedule, step_schedule)`` for :meth:`ra2.mrcnn.model.MaskRCNN.train` from a recipe."""
    from ra2.mrcnn.model import warmup_cosine

    if rec.schedule == "cosine":
        return None, warmup_cosine(rec.learning_rate, rec.epochs * rec.steps_per_epoch, rec.warmup_steps)
    if rec.schedule == "exponential":
        return (lambda e: rec.learning_rate * rec.lr_decay ** e), None
    raise Ra2Error(f"unknown schedule {rec.schedule!r} in the detector recipe; expected cosine or exponential")


def fit_layout(dataset):
    """:class:`ra2.detection.assign.Layout` of a detector data set plus its mean placement.

    Returns ``(layout, placement)``; ``placement`` = ``{"origin": [y, x], "scale": s}``, the mean origin and
    RMS spread of the annotated box centres in detector-image pixels, used to place the layout on an image
    when the detector finds fewer than two classes.
    """
    from ra2.detection.assign import Layout

    examples = dataset.layout_examples()
    seen = {c for ex in examples if len(ex) >= 2 for c in ex}
    missing = [n for i, n in enumerate(dataset.spec.class_names, start=1) if i not in seen]
    if missing:
        raise Ra2Error(f"detector {dataset.detector}: class{'es' if len(missing) > 1 else ''} "
                       f"{', '.join(missing)} never annotated on a film together with another class; each class "
                       f"needs annotated examples (annotate it, or leave this detector out with --detectors)")
    layout = Layout.fit(examples, dataset.spec.num_classes)
    origins, scales = [], []
    for ex in examples:
        if len(ex) < 2:
            continue
        boxes = np.array(list(ex.values()), dtype=np.float64)
        cen = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        origin = cen.mean(axis=0)
        origins.append(origin)
        scales.append(float(np.sqrt(((cen - origin) ** 2).sum(axis=1).mean())))
    placement = {"origin": np.mean(origins, axis=0).tolist(), "scale": float(np.mean(scales))}
    return layout, placement


class LearningCurve:
    """Training callback: after every epoch, the detector as trained so far (the epoch's checkpoint loaded
    into an inference model) is scored on held-out detector images
    (:func:`ra2.detection.detect.score_detector_images`). ``points``: one dict per epoch with ``step``,
    ``recall_iou50``, ``mean_iou``, ``sources``, the epoch's training losses and ``seconds`` (evaluation)."""

    def __init__(self, trainer, config, val_dataset, layout, placement, progress: bool = False):
        self.trainer = trainer
        self.config = config
        self.val_dataset = val_dataset
        self.layout, self.placement = layout, placement
        self.progress = progress
        self.points: list[dict] = []
        self._model = None

    def on_epoch_end(self, epoch, logs):
        from ra2.detection.detect import Detector, score_detector_images
        from ra2.mrcnn import Config
        from ra2.mrcnn.model import MaskRCNN

        t0 = time.time()
        if self._model is None:
            config = Config.from_dict({**self.config.to_dict(), "IMAGES_PER_GPU": 1})
            self._model = MaskRCNN("inference", config, model_dir=self.trainer.model_dir)
        self._model.load_weights(self.trainer.checkpoint_path.format(epoch=epoch + 1))
        det = Detector(self.val_dataset.detector, self._model, int(self.config.IMAGE_MAX_DIM), self.layout,
                       self.placement)
        score = score_detector_images(det, self.val_dataset)
        point = {"step": (epoch + 1) * int(self.config.STEPS_PER_EPOCH), "recall_iou50": score["recall_iou50"],
                 "mean_iou": score["mean_iou"], "worst_class": score["worst_class"],
                 "per_class": score["per_class"], "sources": score["sources"], "loss": float(logs["loss"]),
                 "seconds": round(time.time() - t0, 1)}
        self.points.append(point)
        if self.progress:
            print(f"[{self.val_dataset.detector}] step {point['step']}: recall@IoU0.5 {point['recall_iou50']:.3f}, "
                  f"mean IoU {point['mean_iou']:.3f}, loss {point['loss']:.3f}", flush=True)


DETECTOR_DEVICES_NOTE = (
    "detectors train in float32, without XLA, on one device: under mixed_float16 the proposal layer's box "
    "arithmetic mixes float16 deltas with float32 anchors (TypeError), XLA has no kernel for CropAndResize "
    "(ROI align) nor for the dynamic shapes of NMS, and the container never trains detectors (docs/pipeline.md)")
"""Why :func:`train_detector` ignores the device switches (measured, docs/pipeline.md)."""


def detector_devices(devices: Devices | None) -> dict:
    """What a detector trains with: float32, no XLA, one device, whatever was asked (:data:`DETECTOR_DEVICES_NOTE`);
    a warning when ``devices`` asked for more."""
    asked = devices.to_dict() if devices is not None else None
    if devices is not None and (devices.mixed_precision or devices.xla or devices.replicas > 1):
        log.warning("%s; asked for %s", DETECTOR_DEVICES_NOTE, asked)
    return {"mixed_precision": False, "xla": False, "replicas": 1, "asked": asked, "note": DETECTOR_DEVICES_NOTE}


def train_detector(dataset, out_dir: str | Path, profile: str | Settings, seed: int = 0, progress: bool = True,
                   val_dataset=None, recipe_overrides: dict | None = None,
                   config_overrides: dict | None = None, provenance: dict | None = None,
                   devices: Devices | None = None) -> dict:
    """Train one detector on a prepared :class:`ra2.detection.data.DetectorDataset`; write its folder.

    ``val_dataset``: held-out detector images of the same detector; when given, the learning curve
    (recall of the sites at IoU >= 0.5 after every epoch, :class:`LearningCurve`) goes into the metadata.
    ``recipe_overrides`` / ``config_overrides``: fields of the profile's :class:`~ra2.profiles.DetectorRecipe` /
    attributes of its Mask R-CNN config replaced (experiments, ``bench/detector_curves.py``). ``provenance``: where the
    training films came from (e.g. the phantom's seed and size scales), kept in the metadata.
    ``devices``: the resolved device switches; detectors train in float32 without XLA on one device whatever
    they say (:data:`DETECTOR_DEVICES_NOTE`); what was asked is kept in the metadata.

    Returns the metadata written to ``out_dir/metadata.json``.
    """
    import dataclasses

    import keras

    from ra2.mrcnn.model import MaskRCNN

    name = dataset.detector
    profile = settings(profile)  # resolved once
    rec = dataclasses.replace(recipe(name, profile), **(recipe_overrides or {}))
    config = detector_config(name, profile, **{"IMAGES_PER_GPU": rec.batch_size,
                                               "STEPS_PER_EPOCH": rec.steps_per_epoch,
                                               "LEARNING_RATE": rec.learning_rate,
                                               "GRADIENT_CLIP_NORM": rec.clipnorm, **(config_overrides or {})})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    used = detector_devices(devices)
    layout, placement = fit_layout(dataset)
    lr_schedule, step_schedule = schedules(rec)
    augmentation = augmentation_pipeline(get_spec(name).kind) if rec.augment else None
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"ra2-{name}-") as runs:
        model = MaskRCNN("training", config, model_dir=runs)
        curve = LearningCurve(model, config, val_dataset, layout, placement, progress) if val_dataset else None
        history = model.train(dataset, None, learning_rate=rec.learning_rate, epochs=rec.epochs,
                              layers=rec.layers, augmentation=augmentation,
                              lr_schedule=lr_schedule, step_schedule=step_schedule, seed=seed,
                              verbose=1 if progress else 0, optimizer=make_optimizer(rec),
                              custom_callbacks=[curve] if curve else None)
        tmp_weights = out_dir / f"{WEIGHTS_FILE}.tmp.weights.h5"
        model.save_weights(tmp_weights)
        tmp_weights.replace(out_dir / WEIGHTS_FILE)
    config.to_json(out_dir / CONFIG_FILE)
    write_json(out_dir / LAYOUT_FILE, {**layout.to_dict(), "placement": placement})
    losses = [float(h["loss"]) for h in history]
    if not all(np.isfinite(losses)):
        raise Ra2Error(f"detector {name}: training diverged (loss {losses[-1]})")
    meta = {
        "detector": name, "profile": profile.name, "seed": seed, "input_size": get_spec(name).size(profile),
        "class_names": list(get_spec(name).class_names), "recipe": dataclasses.asdict(rec),
        "config_overrides": config_overrides or {}, "training_data": provenance or {},
        "n_images": len(dataset.image_ids), "patients": sorted({i["patient_id"] for i in dataset.image_info}),
        "parameters": int(model.keras_model.count_params()),
        "history": [{k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in h.items()}
                    for h in history],
        "learning_curve": curve.points if curve else None,
        "validation_images": len(val_dataset.image_ids) if val_dataset else 0,
        "train_seconds": round(time.time() - t0, 1), "environment": environment(), "devices": used,
    }
    write_json(out_dir / METADATA_FILE, meta)  # last: the folder is complete
    return meta


def _annotated_films(folder: Path, annotations) -> list:
    """FilmAnnotations from a file/folder path (default ``folder/annotations.json``) or a list of them."""
    from ra2.annotations import read_annotations

    if annotations is None or isinstance(annotations, (str, Path)):
        return read_annotations(Path(annotations) if annotations is not None else folder)
    return list(annotations)


def annotated_detectors(films) -> tuple[str, ...]:
    """The detectors (contract order) that have objects on at least one of ``films`` (FilmAnnotations)."""
    return tuple(d for d in contract.DETECTORS if any(f.objects_of(d) for f in films))


def train_detectors(train_dir: str | Path, out_dir: str | Path, profile: str | Settings, annotations=None,
                    seed: int = 0, progress: bool = True, detectors=None, val_dir: str | Path | None = None,
                    val_annotations=None, recipe_overrides: dict | None = None,
                    config_overrides: dict | None = None, provenance: dict | None = None,
                    devices: Devices | None = None) -> dict:
    """Train the detectors from a training folder's annotated films.

    Args:
        train_dir: folder of the films.
        out_dir: receives ``<detector>/{config.json, model.weights.h5, layout.json, metadata.json}``.
        profile: a profile name (``smoke``, ``demo``, ``cpu``, ``full``) or its resolved
            :class:`ra2.profiles.Settings`; resolved once here and passed down.
        annotations: path of an annotation file (the phantom's, or what ``ra2 annotations import`` wrote;
            a partial set too), or a list of ``FilmAnnotation`` (default ``train_dir/annotations.json``).
        detectors: the detectors to train (default: every detector with objects on some film; the others are
            listed under ``"skipped"``).
        val_dir, val_annotations: held-out annotated films (default ``val_dir/annotations.json``); each
            detector's metadata then holds its learning curve (the wrist detectors on the true carpus crops).
        recipe_overrides, config_overrides, provenance, devices: see :func:`train_detector`.

    Returns:
        detector name -> its metadata, plus ``"seconds"`` (total, data preparation included) and ``"skipped"``
        (the detectors not trained because no film carries their objects).
    """
    from ra2.detection.data import build_detector_datasets

    profile = settings(profile)  # resolved once, passed down
    train_dir, out_dir = Path(train_dir), Path(out_dir)
    t0 = time.time()
    films = _annotated_films(train_dir, annotations)
    skipped: list[str] = []
    if detectors is None:
        detectors = annotated_detectors(films)
        skipped = [d for d in contract.DETECTORS if d not in detectors]
        if not detectors:
            raise Ra2Error(f"{train_dir}: the annotations hold no object of any detector")
    detectors = tuple(detectors)
    datasets = build_detector_datasets(train_dir, films, profile, detectors=detectors, progress=progress)
    val_sets = {}
    if val_dir is not None or val_annotations is not None:
        val_dir = Path(val_dir) if val_dir is not None else train_dir
        val_sets = build_detector_datasets(val_dir, _annotated_films(val_dir, val_annotations), profile,
                                           detectors=detectors)
    result: dict = {}
    for i, name in enumerate(detectors):
        if progress:
            print(f"[detectors] training {name} ({len(datasets[name].image_ids)} images, profile {profile.name})")
        folder = out_dir / name
        if folder.exists():
            shutil.rmtree(folder)
        result[name] = train_detector(datasets[name], folder, profile, seed=seed + i, progress=progress,
                                      val_dataset=val_sets.get(name), recipe_overrides=recipe_overrides,
                                      config_overrides=config_overrides, provenance=provenance, devices=devices)
    result["seconds"] = round(time.time() - t0, 1)
    result["skipped"] = skipped
    return result
