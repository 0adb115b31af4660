"""Train the four joint detectors from annotated films (the phantom's ``annotations.json``).

Each detector is a Mask R-CNN trained from scratch (no pretrained weights are available offline) with
SGD, an exponential learning-rate decay of 0.98 per epoch (the thesis's schedule) and albumentations
augmentation (small rotation, scale and shift, brightness/contrast, blur). A trained detector's folder::

    <out_dir>/<detector>/config.json          the ra2.mrcnn Config it was trained with
    <out_dir>/<detector>/model.weights.h5     final weights (Keras 3)
    <out_dir>/<detector>/layout.json          the class layout (Layout.fit on the training boxes, in the
                                              detector-image frame) + its mean placement (origin, scale)
    <out_dir>/<detector>/metadata.json        profile, recipe, images, per-epoch losses, seconds, versions
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.detection.specs import check_profile, detector_config, get_spec, recipe

DETECTOR_FILES = ("config.json", "model.weights.h5", "layout.json", "metadata.json")


def augmentation_pipeline():
    """Size-preserving albumentations pipeline for ``[H, W, 1]`` uint8 images with masks."""
    import albumentations as A

    return A.Compose([
        A.Affine(rotate=(-10, 10), scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), p=0.8),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.7),
        A.GaussianBlur(blur_limit=(3, 5), p=0.2),
    ])


def fit_layout(dataset):
    """:class:`ra2.detection.assign.Layout` of a detector data set plus its mean placement.

    Returns ``(layout, placement)``; ``placement`` = ``{"origin": [y, x], "scale": s}``, the mean origin and
    RMS spread of the annotated box centres in detector-image pixels, used to place the layout on an image
    when the detector finds fewer than two classes.
    """
    from ra2.detection.assign import Layout

    examples = dataset.layout_examples()
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


def _environment() -> dict:
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def train_detector(dataset, out_dir: str | Path, profile: str, seed: int = 0, progress: bool = True) -> dict:
    """Train one detector on a prepared :class:`ra2.detection.data.DetectorDataset`; write its folder.

    Returns the metadata written to ``out_dir/metadata.json``.
    """
    import keras

    from ra2.mrcnn.model import MaskRCNN

    name = dataset.detector
    rec = recipe(name, profile)
    config = detector_config(name, profile)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"ra2-{name}-") as runs:
        model = MaskRCNN("training", config, model_dir=runs)
        history = model.train(dataset, None, learning_rate=rec.learning_rate, epochs=rec.epochs,
                              layers=rec.layers, augmentation=augmentation_pipeline() if rec.augment else None,
                              lr_schedule=lambda e: rec.learning_rate * rec.lr_decay ** e, seed=seed,
                              verbose=1 if progress else 0)
        tmp_weights = out_dir / "model.weights.h5.tmp.weights.h5"
        model.save_weights(tmp_weights)
        tmp_weights.replace(out_dir / "model.weights.h5")
    config.to_json(out_dir / "config.json")
    layout, placement = fit_layout(dataset)
    (out_dir / "layout.json").write_text(json.dumps({**layout.to_dict(), "placement": placement}, indent=1))
    losses = [float(h["loss"]) for h in history]
    if not all(np.isfinite(losses)):
        raise Ra2Error(f"detector {name}: training diverged (loss {losses[-1]})")
    meta = {
        "detector": name, "profile": profile, "seed": seed, "input_size": get_spec(name).size(profile),
        "class_names": list(get_spec(name).class_names), "recipe": rec.__dict__,
        "n_images": len(dataset.image_ids), "patients": sorted({i["patient_id"] for i in dataset.image_info}),
        "history": [{k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in h.items()}
                    for h in history],
        "train_seconds": round(time.time() - t0, 1), "environment": _environment(),
    }
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def detectors_complete(models_dir: str | Path) -> bool:
    """True when ``models_dir`` holds every detector's folder with all its files."""
    models_dir = Path(models_dir)
    return all((models_dir / d / f).is_file() for d in contract.DETECTORS for f in DETECTOR_FILES)


def train_detectors(train_dir: str | Path, out_dir: str | Path, profile: str, annotations=None, seed: int = 0,
                    progress: bool = True, detectors=contract.DETECTORS) -> dict:
    """Train the detectors from a training folder's annotated films.

    Args:
        train_dir: folder of the films.
        out_dir: receives ``<detector>/{config.json, model.weights.h5, layout.json, metadata.json}``.
        profile: ``smoke``, ``cpu`` or ``full`` (:mod:`ra2.detection.specs`).
        annotations: path of the ground truth, or a list of ``FilmAnnotation`` (default
            ``train_dir/annotations.json``, the phantom's layout).

    Returns:
        detector name -> its metadata, plus ``"seconds"`` (total, data preparation included).
    """
    from ra2.detection.data import build_detector_datasets
    from ra2.phantom.annotations import read_annotations

    check_profile(profile)
    train_dir, out_dir = Path(train_dir), Path(out_dir)
    t0 = time.time()
    if annotations is None or isinstance(annotations, (str, Path)):
        films = read_annotations(Path(annotations) if annotations is not None else train_dir)
    else:
        films = list(annotations)
    datasets = build_detector_datasets(train_dir, films, profile, detectors=detectors, progress=progress)
    result: dict = {}
    for i, name in enumerate(detectors):
        if progress:
            print(f"[detectors] training {name} ({len(datasets[name].image_ids)} images, profile {profile})")
        folder = out_dir / name
        if folder.exists():
            shutil.rmtree(folder)
        result[name] = train_detector(datasets[name], folder, profile, seed=seed + i, progress=progress)
    result["seconds"] = round(time.time() - t0, 1)
    return result
