"""The models folder: every artefact's name, what a folder was made from (its fingerprint), its reuse, and the
shipped detectors. Every module that writes or reads a models folder takes its file names from here.

A models folder written by :class:`ra2.pipeline.train.Trainer`::

    <models>/fingerprint.json                 what the folder was made from (:func:`training_fingerprint`)
    <models>/environment.json                 the machine and versions the models were trained with
    <models>/detectors/<detector>/            one per contract detector (:data:`DETECTOR_FILES`):
        config.json, model.weights.h5, layout.json, metadata.json
    <models>/training_boxes.json              the boxes found on the training films
    <models>/regressors/profile.json          the regressor settings used
    <models>/regressors/<dataset>/            one ensemble per data set: ensemble.json, oof_predictions.npz,
        member_<k>/{config.json, model.weights.h5, oof.npz, metadata.json}
    <models>/regressors/context.json          the patient context model
    <models>/pipeline.json                    the training summary (settings, timings, training means)
    <models>/prediction_run.json              the last challenge run's prediction record (``ra2 run``)

JSON files are written through :func:`ra2.runinfo.write_json` (a temporary file, then a rename), so a reader
never sees half a file. No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

from ra2 import Ra2Error, contract
from ra2.runinfo import write_json

log = logging.getLogger("ra2.models")

# ---- the folder's top level
DETECTORS_DIR = "detectors"
REGRESSORS_DIR = "regressors"
TRAINING_BOXES = "training_boxes.json"
PIPELINE_FILE = "pipeline.json"
FINGERPRINT_FILE = "fingerprint.json"
ENVIRONMENT_FILE = "environment.json"
PREDICTION_RUN_FILE = "prediction_run.json"
MODEL_ARTEFACTS = (DETECTORS_DIR, REGRESSORS_DIR, PIPELINE_FILE, TRAINING_BOXES, PREDICTION_RUN_FILE,
                   ENVIRONMENT_FILE, FINGERPRINT_FILE)
"""What a training run writes at the top of a models folder (and clears there when it was made from other
inputs)."""

# ---- one trained network (a detector, an ensemble member)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
LAYOUT_FILE = "layout.json"
DETECTOR_FILES = (CONFIG_FILE, WEIGHTS_FILE, LAYOUT_FILE, METADATA_FILE)
"""A trained detector's folder; ``metadata.json`` is written last."""
MEMBER_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)
"""A trained ensemble member's folder; ``metadata.json`` is written last."""
MEMBER_OOF = "oof.npz"
"""A member's out-of-fold predictions (its validation fold), kept so that a resumed run can reuse the member."""

# ---- the regressors folder
REGRESSOR_PROFILE_FILE = "profile.json"
ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_OOF = "oof_predictions.npz"
CONTEXT_FILE = "context.json"


def member_name(k: int) -> str:
    """The folder name of ensemble member ``k`` (0-based): ``member_<k>``."""
    return f"member_{int(k)}"


# ---- the shipped detectors
SOURCE_DETECTORS = Path(__file__).resolve().parent.parent / "weights" / "detectors"
"""The source tree's shipped detectors (an editable install, ``make setup``). The container's copy is named by
``run.sh`` (``$RA2_DETECTORS``), read by the command line and passed down."""


def detectors_complete(folder: str | Path) -> bool:
    """True when ``folder`` holds every contract detector's folder with all of :data:`DETECTOR_FILES`."""
    folder = Path(folder)
    return all((folder / d / f).is_file() for d in contract.DETECTORS for f in DETECTOR_FILES)


def shipped_detectors(candidates=(SOURCE_DETECTORS,)) -> Path | None:
    """The first folder of ``candidates`` holding a complete set of detectors (:func:`detectors_complete`),
    else None."""
    for folder in candidates:
        if detectors_complete(folder):
            return Path(folder)
    return None


def copy_detectors(source: Path, det_dir: Path) -> None:
    """Copy a complete set of trained detectors into ``det_dir`` (replacing what is there); a
    :class:`ra2.Ra2Error` when ``source`` is not complete. Nothing is copied when both are the same folder."""
    if not detectors_complete(source):
        raise Ra2Error(f"{source}: not a complete set of trained detectors (each of "
                       f"{', '.join(contract.DETECTORS)} needs {', '.join(DETECTOR_FILES)})")
    if det_dir.resolve() != source.resolve():
        if det_dir.exists():
            shutil.rmtree(det_dir)
        shutil.copytree(source, det_dir)


# ---- what a folder was made from
def _sha256_files(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def training_fingerprint(train_dir: Path, profile, seed: int, detectors_from: Path | None,
                         train_detectors: bool, devices: dict | None = None) -> dict:
    """What a models folder was made from: ``{"key": 16 hex digits, "parts": {...}}``.

    ``profile``: the :class:`ra2.profiles.RegressorProfile` the regressors are trained with. The parts: the
    ra2 version, the profile's name, seed, the regressor networks' and training settings, sha256 of
    ``training.csv`` and of ``annotations.json`` (when present), the film list (names and byte sizes of the
    films in ``train_dir``), sha256 of the given detectors' files, and the resolved device settings
    (``devices``: :meth:`ra2.devices.Devices.to_dict`; float16 or XLA members are not float32 ones). Models
    are reused (and a killed run resumed) only under the same key.
    """
    from ra2 import __version__
    from ra2.annotations import ANNOTATIONS_FILE
    from ra2.io import FILM_EXTENSIONS, TRAINING_CSV

    csv = train_dir / TRAINING_CSV
    ann = train_dir / ANNOTATIONS_FILE
    films = sorted(f"{p.name} {p.stat().st_size}" for p in train_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in FILM_EXTENSIONS) if train_dir.is_dir() else []
    parts = {
        "ra2": __version__, "profile": profile.name, "seed": int(seed), "train_detectors": bool(train_detectors),
        "devices": devices,
        "regressors": {"networks": {d: n.to_dict() for d, n in profile.networks.items()},
                       "training": {d: t.to_dict() for d, t in profile.training.items()},
                       "n_folds": profile.n_folds, "margin": profile.margin, "context": profile.context,
                       "tta": profile.tta},
        "training_csv": _sha256_files([csv]) if csv.is_file() else None,
        "annotations": _sha256_files([ann]) if ann.is_file() else None,
        "films": hashlib.sha256("\n".join(films).encode()).hexdigest(), "n_films": len(films),
        "detectors": (_sha256_files(sorted(p for p in detectors_from.rglob("*") if p.is_file()))
                      if detectors_from is not None and detectors_from.is_dir() else None),
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"key": key, "parts": parts}


def prepare(models_dir: Path, fingerprint: dict, keep_detectors: bool = False) -> bool:
    """Make ``models_dir`` safe to reuse for a run of ``fingerprint``; returns whether it is an earlier run's
    folder made from the same inputs and configuration (then everything complete in it is reused).

    A folder made from other inputs is cleared of :data:`MODEL_ARTEFACTS` (but its detectors with
    ``keep_detectors``: they are the run's given detectors); one holding artefacts without a fingerprint
    (made by hand or by an older ra2) has them moved aside to ``models_dir/unverified-<time>/`` (kept, not
    reused). The new fingerprint is written last.
    """
    path = models_dir / FINGERPRINT_FILE
    old = None
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
    if old and old.get("key") == fingerprint["key"]:
        log.info("models in %s were made from the same inputs and configuration: reusing what is complete",
                 models_dir)
        return True
    present = [a for a in MODEL_ARTEFACTS
               if (models_dir / a).exists() and not (keep_detectors and a == DETECTORS_DIR)]
    if present and old is None:
        aside = models_dir / time.strftime("unverified-%Y%m%d-%H%M%S")
        aside.mkdir()
        for a in present:
            shutil.move(str(models_dir / a), str(aside / a))
        log.warning("%s held models without a fingerprint (%s): moved to %s, not reused", models_dir,
                    ", ".join(present), aside)
    elif present:
        changed = sorted(k for k, v in fingerprint["parts"].items() if (old.get("parts") or {}).get(k) != v)
        for a in present:
            target = models_dir / a
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        log.warning("models in %s were made from other inputs or configuration (changed: %s): rebuilding",
                    models_dir, ", ".join(changed) or "unknown")
    write_json(path, fingerprint)
    return False


def training_means(models_dir: Path) -> dict[str, float]:
    """The training means recorded in ``models_dir/pipeline.json`` (column -> mean), or ``{}``."""
    path = Path(models_dir) / PIPELINE_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("training_means", {})
