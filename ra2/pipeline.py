"""The whole job: train detectors and regressors, then predict a test folder (used by the CLI, ``ra2 run``,
the demo and the tests).

Walk of the data (see docs/pipeline.md); training walks the same road as prediction, forwards::

    Trainer(profile).fit(train_dir, models_dir)
        detectors: given, present in models_dir/detectors, shipped (weights/detectors), or trained on
                   train_dir/annotations.json -> models_dir/detectors
        every training film: read once -> JointDetector.detect_film -> site boxes (DETECTED, not ground truth)
            -> site_crops -> crop sets (labels from training.csv), in memory
            (the boxes are recorded in models_dir/training_boxes.json for inspection)
        regressors: ra2.scoring.train.train_regressors_on_crops -> models_dir/regressors/<dataset>/...,
            so training crops look like test crops
    Predictor.load(models_dir).predict(test_dir, template)
        every test film: read once -> detect_film -> site_crops -> ensembles (+ patient context)
            -> 86 joints; a joint without a prediction (missing film) -> its training mean
            -> Overall_* sums (contract.add_overall, once)

``models_dir`` also receives ``pipeline.json`` (the configuration used, timings, training means) and
``environment.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract
from ra2.devices import DeviceSettings
from ra2.profiles import DEFAULTS, check_profile
from ra2.runinfo import environment, write_json

log = logging.getLogger("ra2.pipeline")

DETECTORS_DIR = "detectors"
REGRESSORS_DIR = "regressors"
TRAINING_BOXES = "training_boxes.json"
PIPELINE_FILE = "pipeline.json"
FINGERPRINT_FILE = "fingerprint.json"
PATIENTS_PER_CHUNK = 16
""":meth:`Predictor.predict` detects, crops and scores this many patients at a time: its memory does not grow
with the test set (docs/benchmarks.md: peak RSS for 10 and 100 patients)."""
MODEL_ARTEFACTS = (DETECTORS_DIR, REGRESSORS_DIR, PIPELINE_FILE, TRAINING_BOXES, "prediction_run.json",
                   "environment.json", FINGERPRINT_FILE)
"""What :class:`Trainer` writes in a models folder (and clears there when it was made from other inputs)."""
SHIPPED_DETECTORS = (Path(__file__).resolve().parent.parent / "weights" / "detectors",
                     Path("/opt/ra2/weights/detectors"))
"""Where the shipped detectors are looked for: the source tree's ``weights/detectors`` (an editable install,
``make setup``) and the container's (Dockerfile: ``COPY weights/ weights/`` in /opt/ra2)."""


def shipped_detectors(env=None) -> Path | None:
    """The folder of shipped detectors: ``$RA2_DETECTORS`` when set, else the first complete folder of
    :data:`SHIPPED_DETECTORS`, else None."""
    import os

    from ra2.detection.train import detectors_complete

    env = os.environ if env is None else env
    if env.get("RA2_DETECTORS"):
        return Path(env["RA2_DETECTORS"])
    for folder in SHIPPED_DETECTORS:
        if detectors_complete(folder):
            return folder
    return None


def _film_names(folder: Path, patient_ids) -> list[tuple[str, str, Path | None]]:
    """(patient, limb, film path or None when missing) for every patient and limb."""
    from ra2.io import find_film

    out = []
    for pid in patient_ids:
        for limb in contract.LIMBS:
            try:
                out.append((str(pid), limb, find_film(folder, str(pid), limb)))
            except Ra2Error:
                out.append((str(pid), limb, None))
    return out


def _sha256_files(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def training_fingerprint(train_dir: Path, profile: str, seed: int, detectors_from: Path | None,
                         train_detectors: bool, devices: dict | None = None) -> dict:
    """What a models folder was made from: ``{"key": 16 hex digits, "parts": {...}}``.

    The parts: the ra2 version, profile, seed, the regressor networks' and training settings, sha256 of
    ``training.csv`` and of ``annotations.json`` (when present), the film list (names and byte sizes of the
    films in ``train_dir``), sha256 of the given detectors' files, and the resolved device settings
    (``devices``: :meth:`ra2.devices.Devices.to_dict`; float16 or XLA members are not float32 ones). Models are reused (and a killed run
    resumed) only under the same key.
    """
    from ra2 import __version__
    from ra2.io import FILM_EXTENSIONS
    from ra2.profiles import regressor_profile

    prof = regressor_profile(profile)
    csv = train_dir / "training.csv"
    ann = train_dir / "annotations.json"
    films = sorted(f"{p.name} {p.stat().st_size}" for p in train_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in FILM_EXTENSIONS) if train_dir.is_dir() else []
    parts = {
        "ra2": __version__, "profile": profile, "seed": int(seed), "train_detectors": bool(train_detectors),
        "devices": devices,
        "regressors": {"networks": {d: n.to_dict() for d, n in prof.networks.items()},
                       "training": {d: t.to_dict() for d, t in prof.training.items()},
                       "n_folds": prof.n_folds, "margin": prof.margin, "context": prof.context, "tta": prof.tta},
        "training_csv": _sha256_files([csv]) if csv.is_file() else None,
        "annotations": _sha256_files([ann]) if ann.is_file() else None,
        "films": hashlib.sha256("\n".join(films).encode()).hexdigest(), "n_films": len(films),
        "detectors": (_sha256_files(sorted(p for p in detectors_from.rglob("*") if p.is_file()))
                      if detectors_from is not None and detectors_from.is_dir() else None),
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"key": key, "parts": parts}


class Trainer:
    """Train the whole pipeline.

    Args:
        profile: a profile of :mod:`ra2.profiles` (``smoke``, ``demo``, ``cpu``, ``full``): the detectors'
            recipe (when they are trained here) and the regressors'.
        detectors_from: a folder of trained detectors to use (copied into ``models_dir/detectors``).
        train_detectors: train the detectors on ``train_dir/annotations.json`` (profile ``profile``) even
            when trained ones are at hand.
        devices: mixed precision, XLA and the devices to train on (:class:`ra2.devices.DeviceSettings`,
            resolved when :meth:`fit` starts; recorded in ``pipeline.json`` and in the fingerprint).

    Where the detectors come from, first match: ``detectors_from``; ``train_detectors``; a complete set
    already in ``models_dir/detectors`` made from the same inputs (an earlier run's); the shipped detectors
    (:func:`shipped_detectors`); detectors trained on ``train_dir/annotations.json``.

    Reuse and resume: ``models_dir/fingerprint.json`` records what the models were made from
    (:func:`training_fingerprint`). A models folder made from the same inputs and configuration is reused
    (trained detectors, and every complete ensemble member: a killed run continues where it stopped); one
    made from other inputs is cleared first; one without a fingerprint (made by hand or by an older ra2) is
    moved aside to ``models_dir/unverified-<time>/`` (kept, not reused).
    """

    def __init__(self, profile: str = DEFAULTS["train"], seed: int = 0, progress: bool = True,
                 detectors_from: str | Path | None = None, train_detectors: bool = False,
                 devices: DeviceSettings = DeviceSettings()):
        self.profile = check_profile(profile)
        self.devices = devices
        self.seed = int(seed)
        self.progress = progress
        self.detectors_from = Path(detectors_from) if detectors_from else None
        self.train_detectors = bool(train_detectors)

    def _prepare(self, models_dir: Path, fingerprint: dict) -> bool:
        """Make ``models_dir`` safe to reuse (see the class docstring); returns whether it is an earlier run's
        folder made from the same inputs and configuration."""
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
        keep = set()
        if self.detectors_from is not None and \
                self.detectors_from.resolve() == (models_dir / DETECTORS_DIR).resolve():
            keep.add(DETECTORS_DIR)
        present = [a for a in MODEL_ARTEFACTS if (models_dir / a).exists() and a not in keep]
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

    def _copy_detectors(self, source: Path, det_dir: Path) -> None:
        from ra2.detection.train import detectors_complete

        if not detectors_complete(source):
            raise Ra2Error(f"{source}: not a complete set of trained detectors (each of "
                           f"{', '.join(contract.DETECTORS)} needs config.json, model.weights.h5, layout.json "
                           "and metadata.json)")
        if det_dir.resolve() != source.resolve():
            if det_dir.exists():
                shutil.rmtree(det_dir)
            shutil.copytree(source, det_dir)

    def _detectors(self, train_dir: Path, det_dir: Path, devices) -> dict:
        from ra2.detection.train import detectors_complete, train_detectors

        if self.detectors_from is not None:
            self._copy_detectors(self.detectors_from, det_dir)
            log.info("detectors: copied from %s", self.detectors_from)
            return {"source": f"copied from {self.detectors_from}"}
        if not self.train_detectors:
            if detectors_complete(det_dir):
                log.info("detectors: using the trained detectors in %s", det_dir)
                return {"source": f"present in {det_dir}"}
            shipped = shipped_detectors()
            if shipped is not None:
                self._copy_detectors(shipped, det_dir)
                log.info("detectors: the shipped detectors (%s)", shipped)
                return {"source": f"shipped ({shipped})"}
        ann = train_dir / "annotations.json"
        if not ann.is_file():
            raise Ra2Error(f"{ann}: no joint annotations to train the detectors and no trained detectors in "
                           f"{det_dir} (real films need detectors trained on annotated films)")
        log.info("detectors: training on %s (profile %s)", ann, self.profile)
        res = train_detectors(train_dir, det_dir, self.profile, annotations=ann, seed=self.seed,
                              progress=self.progress, detectors=contract.DETECTORS, devices=devices)
        return {"source": f"trained on {ann}", "seconds": res["seconds"]}

    def fit(self, train_dir: str | Path, models_dir: str | Path) -> dict:
        """Train into ``models_dir``; returns the summary written to ``models_dir/pipeline.json``."""
        from ra2.baseline import training_means
        from ra2.detection.detect import JointDetector
        from ra2.io import read_training_csv
        from ra2.profiles import regressor_profile
        from ra2.scoring.data import crop_sets_from_films
        from ra2.scoring.train import train_regressors_on_crops

        train_dir, models_dir = Path(train_dir), Path(models_dir)
        models_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        train_df = read_training_csv(train_dir / "training.csv")
        means = training_means(train_df)
        devices = self.devices.resolve()
        log.info("training devices: %s", devices.to_dict())
        fingerprint = training_fingerprint(train_dir, self.profile, self.seed, self.detectors_from,
                                           self.train_detectors, devices.to_dict())
        reused = self._prepare(models_dir, fingerprint)
        write_json(models_dir / "environment.json", environment())  # the machine the models were trained on
        det_info = self._detectors(train_dir, models_dir / DETECTORS_DIR, devices)
        t_det = time.time() - t0

        prof = regressor_profile(self.profile)
        detector = JointDetector.load(models_dir / DETECTORS_DIR)
        log.info("detecting the joints of %d training patients' films and cutting their crops", len(train_df))
        record = DetectionRecord()
        films = detected_films(detector, train_dir, train_df[contract.PATIENT_COLUMN], record,
                               "detecting joints on training films" if self.progress else None)
        labels = train_df.set_index(contract.PATIENT_COLUMN)
        crop_sets = crop_sets_from_films(films, labels, prof.sizes(), margin=prof.margin)
        if not record.boxes:
            raise Ra2Error(f"{train_dir}: no training films found")
        write_json(models_dir / TRAINING_BOXES, record.to_dict())
        t_detect = time.time() - t0 - t_det

        log.info("training the regressor ensembles (profile %s: %d folds) on %s crops", prof.name, prof.n_folds,
                 ", ".join(f"{len(c)} {d}" for d, c in crop_sets.items()))
        reg = train_regressors_on_crops(crop_sets, models_dir / REGRESSORS_DIR, prof, progress=self.progress,
                                        seed=self.seed, run_key=fingerprint["key"], devices=devices)
        summary = {
            "profile": self.profile, "seed": self.seed, "fingerprint": fingerprint["key"], "reused": reused,
            "devices": devices.to_dict(), "replicas": devices.replicas,
            "train_dir": str(train_dir), "patients": int(len(train_df)), "films": len(record.boxes),
            "training_rows_skipped": list(train_df.attrs.get("skipped_rows", [])),
            "missing_films": record.missing, "failed_films": record.failed, "detectors": det_info, "training_box_sources": record.sources,
            "crops_from": f"detected boxes (models_dir/{TRAINING_BOXES}), not ground truth",
            "regressors": {d: {"threshold": v["threshold"], "oof": v["oof"]} for d, v in reg.items()
                           if d in contract.DATASETS},
            "context": reg.get("context"),
            "training_means": means,
            "seconds": {"detectors": round(t_det, 1), "detect_training_films": round(t_detect, 1),
                        "regressors": reg["seconds"], "total": round(time.time() - t0, 1)},
        }
        write_json(models_dir / PIPELINE_FILE, summary)
        return summary


class DetectionRecord:
    """What detection did on a folder of films.

    ``boxes``: ``"{patient}-{limb}"`` -> site id -> box ``(y1, x1, y2, x2)`` in film pixels; ``sources``: box
    source (detected / reassigned / layout) -> count; ``missing``: films not found; ``failed``:
    ``"{patient}-{limb}"`` -> ``{"reason", "message"}`` for films that could not be read (``film_unreadable``) or
    detected (``detection_failed``); ``read``: films read.
    """

    def __init__(self):
        self.boxes: dict[str, dict[str, list[float]]] = {}
        self.box_sources: dict[str, dict[str, str]] = {}  # "{patient}-{limb}" -> site id -> box source
        self.sources: dict[str, int] = {}
        self.missing: list[str] = []
        self.failed: dict[str, dict[str, str]] = {}
        self.read = 0

    def add(self, key: str, found) -> None:
        self.boxes[key] = {s: [round(float(v), 2) for v in b] for s, b in found.boxes.items()}
        self.box_sources[key] = {s: str(v) for s, v in found.sources.items()}
        for s in found.sources.values():
            self.sources[s] = self.sources.get(s, 0) + 1

    def fail(self, key: str, reason: str, message: str) -> None:
        """Record (and log once) a film that costs its limb's joints."""
        self.failed[key] = {"reason": reason, "message": message}
        log.warning("%s: %s (%s); its joints get fallback estimates", key, reason.replace("_", " "), message)

    def lost_films(self) -> dict[str, str]:
        """``"{patient}-{limb}"`` -> reason (``film_missing``, ``film_unreadable``, ``detection_failed``)."""
        return {**{k: "film_missing" for k in self.missing}, **{k: f["reason"] for k, f in self.failed.items()}}

    def to_dict(self) -> dict:
        return {"films": self.boxes, "box_sources": self.box_sources, "sources": self.sources,
                "missing_films": self.missing,
                "failed_films": self.failed,
                "films_read": self.read}


def detected_films(detector, folder: Path, patient_ids, record: DetectionRecord, progress: str | None = None,
                   boxes: dict | None = None):
    """``(patient_id, limb, film [H, W], {site id: box})`` for every film of ``patient_ids`` in ``folder``,
    each film read once; the boxes are ``detector.detect_film``'s, or ``boxes[(patient_id, limb)]`` when
    ``boxes`` is given (e.g. ground truth). A film that is missing, cannot be read or fails in detection is
    skipped and recorded in ``record`` (the fallback is at the film: its limb's joints, never the run).
    ``progress``: a progress-bar label, or None."""
    from ra2.io import read_film

    entries = _film_names(Path(folder), patient_ids)
    record.missing.extend(f"{pid}-{limb}" for pid, limb, path in entries if path is None)
    present = [e for e in entries if e[2] is not None]
    if progress:
        from tqdm import tqdm

        present = tqdm(present, desc=progress, unit="film")
    for pid, limb, path in present:
        key = f"{pid}-{limb}"
        try:
            film = read_film(path)
        except Ra2Error as exc:
            record.fail(key, "film_unreadable", str(exc))
            continue
        except MemoryError:
            record.fail(key, "film_unreadable", f"film {path}: not enough memory to decode it")
            continue
        record.read += 1
        if boxes is not None:
            if (pid, limb) not in boxes:
                record.fail(key, "detection_failed", "no boxes given for this film")
                continue
            site_boxes = boxes[(pid, limb)]
        else:
            try:
                found = detector.detect_film(film, limb)
            except Exception as exc:  # noqa: BLE001 - one film's failure costs that film, not the run
                record.fail(key, "detection_failed", f"{type(exc).__name__}: {exc}")
                continue
            record.add(key, found)
            site_boxes = found.boxes
        yield pid, limb, film, site_boxes


class Predictor:
    """Predict a test folder with a trained ``models_dir`` (detectors + regressor ensembles)."""

    def __init__(self, detector, ensembles: dict, training_means: dict[str, float] | None = None,
                 progress: bool = False, context=None):
        self.detector = detector
        self.ensembles = ensembles
        self.context = context  # ra2.scoring.context.ContextModel or None
        self.training_means = training_means or {}
        self.progress = progress
        self.patients_per_chunk = PATIENTS_PER_CHUNK
        self.last_run: dict = {}
        self.last_spread: pd.DataFrame | None = None  # per-joint ensemble spread of the last predict()
        self.last_detections: DetectionRecord | None = None  # the boxes of the last predict()

    @classmethod
    def load(cls, models_dir: str | Path, progress: bool = False) -> "Predictor":
        from ra2.detection.detect import JointDetector
        from ra2.scoring.context import load_context
        from ra2.scoring.ensemble import load_ensembles

        models_dir = Path(models_dir)
        means = {}
        if (models_dir / PIPELINE_FILE).is_file():
            means = json.loads((models_dir / PIPELINE_FILE).read_text()).get("training_means", {})
        return cls(JointDetector.load(models_dir / DETECTORS_DIR), load_ensembles(models_dir / REGRESSORS_DIR),
                   means, progress=progress, context=load_context(models_dir / REGRESSORS_DIR))

    def predict(self, test_dir: str | Path, template: pd.DataFrame | None = None,
                boxes: dict | None = None) -> pd.DataFrame:
        """Predictions for the patients of ``template`` (default ``test_dir/template.csv``).

        ``boxes``: ``{(patient_id, limb): {site id: (y1, x1, y2, x2) film pixels}}`` to use instead of
        detecting (e.g. the ground truth, to measure the regressors alone).

        Returns the 90-column frame in ``contract.COLUMNS`` order (Overall_* = sums). Failures cost the
        smallest unit: a film that is missing, unreadable or fails in detection costs its limb's joints; a
        joint whose crop cannot be cut, or whose data set's ensemble fails, costs that joint. Each such joint
        gets the estimate of :mod:`ra2.fallback` (the other side's prediction averaged with the training mean,
        else the training mean). ``last_run`` counts films read / lost and joints by box source, fallback
        reason and estimate.
        ``last_spread`` receives each joint's ensemble spread (``Patient_ID`` + 86 joints, NaN where the joint
        had no network prediction; :mod:`ra2.scoring.uncertainty`), ``last_detections`` the
        :class:`DetectionRecord`.
        """
        from ra2.fallback import fill_unpredicted
        from ra2.io import read_template_csv
        from ra2.scoring.data import crop_sets_from_films
        from ra2.scoring.ensemble import predict_joints_with_spread

        test_dir = Path(test_dir)
        if template is None:
            template = read_template_csv(test_dir / "template.csv")
        pids = [str(p) for p in template[contract.PATIENT_COLUMN]]
        sizes = {d: e.input_size for d, e in self.ensembles.items()}
        margin = next(iter(self.ensembles.values())).margin
        record = DetectionRecord()
        crop_failures: dict = {}
        scoring_failures: dict = {}
        reasons: dict[tuple[int, str], str] = {}
        frames, spreads = [], []
        for start in range(0, len(pids), self.patients_per_chunk):  # memory bounded by the chunk, not the test set
            part = pids[start:start + self.patients_per_chunk]
            crop_part: dict = {}
            scoring_part: dict = {}
            label = (f"detecting joints on test films (patients {start + 1}-{start + len(part)} of {len(pids)})"
                     if self.progress else None)
            films = detected_films(self.detector, test_dir, part, record, label, boxes=boxes)
            chunk, spread = predict_joints_with_spread(
                self.ensembles, crop_sets_from_films(films, None, sizes, margin=margin, failures=crop_part),
                part, context=self.context, failures=scoring_part)
            for (row, column), reason in fallback_reasons(part, record.lost_films(), crop_part,
                                                          scoring_part).items():
                chunk.loc[row, column] = np.nan
                reasons[(start + row, column)] = reason
            crop_failures.update(crop_part)
            for dataset, message in scoring_part.items():
                scoring_failures.setdefault(dataset, message)
            frames.append(chunk)
            spreads.append(spread)
        if frames:
            frame = pd.concat(frames, ignore_index=True)
            self.last_spread = pd.concat(spreads, ignore_index=True)
        else:
            frame, self.last_spread = predict_joints_with_spread(self.ensembles, {}, [])
        self.last_detections = record
        for (pid, site_id), message in crop_failures.items():
            log.warning("%s %s: crop failed (%s); its joints get fallback estimates", pid, site_id, message)
        for dataset, message in scoring_failures.items():
            log.warning("%s ensemble failed (%s); its joints get fallback estimates", dataset, message)
        unscored = frame[list(contract.JOINT_COLUMNS)].isna().to_numpy()
        for row, col in zip(*np.nonzero(unscored)):  # no crop for a reason not recorded above (should not happen)
            reasons.setdefault((int(row), contract.JOINT_COLUMNS[col]), "no_prediction")
        frame, kinds = fill_unpredicted(frame, self.training_means)
        by_reason = dict(Counter(reasons.values()))
        by_estimate = dict(Counter(kinds[kinds != None]))  # noqa: E711 - element-wise on an object array
        self.last_run = {
            "patients": len(pids), "films_read": record.read, "missing_films": record.missing,
            "failed_films": record.failed,
            "box_sources": record.sources,
            "crop_failures": {f"{p} {s}": m for (p, s), m in crop_failures.items()},
            "scoring_failures": scoring_failures,
            "fallback_joints": {"total": int(len(reasons)), "by_reason": by_reason, "by_estimate": by_estimate},
            "joints_from_training_means": int(by_estimate.get("training_mean", 0))}
        return contract.add_overall(frame)


def fallback_reasons(patient_ids: list[str], lost_films: dict[str, str], crop_failures: dict,
                     scoring_failures: dict) -> dict[tuple[int, str], str]:
    """``(row, joint column) -> reason`` of every joint the model could not predict: the joints of a lost film
    (``film_missing`` / ``film_unreadable`` / ``detection_failed``), of a site whose crop failed
    (``crop_failed``), of a data set whose ensemble failed (``scoring_failed``). Rows index ``patient_ids``;
    lost films of other patients are ignored."""
    row = {p: i for i, p in enumerate(patient_ids)}
    out: dict[tuple[int, str], str] = {}
    for key, reason in lost_films.items():
        pid, limb = key.rsplit("-", 1)
        if pid not in row:  # another chunk's patient
            continue
        for column in contract.limb_columns(limb):
            out[(row[pid], column)] = reason
    for (pid, site_id), _ in crop_failures.items():
        for score in contract.scores_of_site(site_id):
            out.setdefault((row[pid], score.column), "crop_failed")
    for dataset in scoring_failures:
        for score in contract.scores_of_dataset(dataset):
            for r in range(len(patient_ids)):
                out.setdefault((r, score.column), "scoring_failed")
    return out


DETECTIONS_FILE = "detections.json"


def write_prediction_extras(predictor: Predictor, template: pd.DataFrame, folder: str | Path) -> list[Path]:
    """Beside ``predictions.csv`` in ``folder``: ``predictions_uncertainty.csv`` (each joint's ensemble spread,
    :mod:`ra2.scoring.uncertainty`) and ``detections.json`` (:meth:`DetectionRecord.to_dict`: boxes
    ``(y1, x1, y2, x2)`` in film pixels and their sources) of ``predictor``'s last :meth:`Predictor.predict`."""
    from ra2.scoring.uncertainty import UNCERTAINTY_FILE, write_uncertainty

    folder = Path(folder)
    unc = write_uncertainty(predictor.last_spread, template, folder / UNCERTAINTY_FILE)
    write_json(folder / DETECTIONS_FILE, predictor.last_detections.to_dict())
    return [unc, folder / DETECTIONS_FILE]


class ModelStep:
    """The ``model_step`` of :func:`ra2.challenge_run.run_challenge`: train into ``work_dir/models``, then
    predict. ``detectors_from``: shipped detectors (the real ``/train`` has no joint annotations to train them).

    ``report`` (read by the run summary) holds, once called, the training summary's counts (films read and
    lost, box sources, seconds) and the prediction's (:attr:`Predictor.last_run`), with seconds per stage.
    """

    def __init__(self, profile: str = DEFAULTS["run"], progress: bool = False,
                 detectors_from: str | Path | None = None, devices: DeviceSettings = DeviceSettings(),
                 profile_reason: str | None = None):
        self.profile = check_profile(profile)
        self.progress = progress
        self.detectors_from = detectors_from
        self.devices = devices
        self.report: dict = {"profile": self.profile, "profile_reason": profile_reason}

    def __call__(self, train_dir: Path, test_dir: Path, work_dir: Path, template: pd.DataFrame) -> pd.DataFrame:
        models = Path(work_dir) / "models"
        t0 = time.time()
        summary = Trainer(self.profile, progress=self.progress, detectors_from=self.detectors_from,
                          devices=self.devices).fit(train_dir, models)
        self.report["training"] = {k: summary.get(k) for k in (
            "patients", "films", "missing_films", "failed_films", "training_rows_skipped", "detectors",
            "training_box_sources", "seconds", "reused", "fingerprint", "devices")}
        self.report["replicas"] = summary["replicas"]
        t1 = time.time()
        predictor = Predictor.load(models, progress=self.progress)
        frame = predictor.predict(test_dir, template)
        write_json(models / "prediction_run.json", predictor.last_run)
        self.report["prediction"] = predictor.last_run
        self.report["seconds"] = {"training": round(t1 - t0, 1), "prediction": round(time.time() - t1, 1)}
        return frame


def model_step(profile: str = DEFAULTS["run"], progress: bool = False,
               detectors_from: str | Path | None = None, devices: DeviceSettings = DeviceSettings(),
               profile_reason: str | None = None) -> ModelStep:
    """A :class:`ModelStep` (train then predict) for :func:`ra2.challenge_run.run_challenge`."""
    return ModelStep(profile, progress=progress, detectors_from=detectors_from, devices=devices,
                     profile_reason=profile_reason)
