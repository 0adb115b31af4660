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

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract
from ra2.profiles import DEFAULTS, check_profile
from ra2.runinfo import environment

log = logging.getLogger("ra2.pipeline")

DETECTORS_DIR = "detectors"
REGRESSORS_DIR = "regressors"
TRAINING_BOXES = "training_boxes.json"
PIPELINE_FILE = "pipeline.json"
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


def _write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


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


class Trainer:
    """Train the whole pipeline.

    Args:
        profile: a profile of :mod:`ra2.profiles` (``smoke``, ``demo``, ``cpu``, ``full``): the detectors'
            recipe (when they are trained here) and the regressors'.
        detectors_from: a folder of trained detectors to use (copied into ``models_dir/detectors``).
        train_detectors: train the detectors on ``train_dir/annotations.json`` (profile ``profile``) even
            when trained ones are at hand.

    Where the detectors come from, first match: ``detectors_from``; ``train_detectors``; a complete set
    already in ``models_dir/detectors`` (an earlier run's: never overwritten); the shipped detectors
    (:func:`shipped_detectors`); detectors trained on ``train_dir/annotations.json``.
    """

    def __init__(self, profile: str = DEFAULTS["train"], seed: int = 0, progress: bool = True,
                 detectors_from: str | Path | None = None, train_detectors: bool = False):
        self.profile = check_profile(profile)
        self.seed = int(seed)
        self.progress = progress
        self.detectors_from = Path(detectors_from) if detectors_from else None
        self.train_detectors = bool(train_detectors)

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

    def _detectors(self, train_dir: Path, det_dir: Path) -> dict:
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
                              progress=self.progress)
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
        _write_json(models_dir / "environment.json", environment())  # the machine the models were trained on
        det_info = self._detectors(train_dir, models_dir / DETECTORS_DIR)
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
        _write_json(models_dir / TRAINING_BOXES, record.to_dict())
        t_detect = time.time() - t0 - t_det

        log.info("training the regressor ensembles (profile %s: %d folds) on %s crops", prof.name, prof.n_folds,
                 ", ".join(f"{len(c)} {d}" for d, c in crop_sets.items()))
        reg = train_regressors_on_crops(crop_sets, models_dir / REGRESSORS_DIR, prof, progress=self.progress,
                                        seed=self.seed)
        summary = {
            "profile": self.profile, "seed": self.seed,
            "train_dir": str(train_dir), "patients": int(len(train_df)), "films": len(record.boxes),
            "missing_films": record.missing, "detectors": det_info, "training_box_sources": record.sources,
            "crops_from": f"detected boxes (models_dir/{TRAINING_BOXES}), not ground truth",
            "regressors": {d: {"threshold": v["threshold"], "oof": v["oof"]} for d, v in reg.items()
                           if d in contract.DATASETS},
            "context": reg.get("context"),
            "training_means": means,
            "seconds": {"detectors": round(t_det, 1), "detect_training_films": round(t_detect, 1),
                        "regressors": reg["seconds"], "total": round(time.time() - t0, 1)},
        }
        _write_json(models_dir / PIPELINE_FILE, summary)
        return summary


class DetectionRecord:
    """What detection did on a folder of films: ``boxes`` (``"{patient}-{limb}"`` -> site id -> box, film
    pixels), ``sources`` (box source -> count), ``missing`` (films not found)."""

    def __init__(self):
        self.boxes: dict[str, dict[str, list[float]]] = {}
        self.box_sources: dict[str, dict[str, str]] = {}  # "{patient}-{limb}" -> site id -> box source
        self.sources: dict[str, int] = {}
        self.missing: list[str] = []

    def add(self, key: str, found) -> None:
        self.boxes[key] = {s: [round(float(v), 2) for v in b] for s, b in found.boxes.items()}
        self.box_sources[key] = {s: str(v) for s, v in found.sources.items()}
        for s in found.sources.values():
            self.sources[s] = self.sources.get(s, 0) + 1

    def to_dict(self) -> dict:
        return {"films": self.boxes, "box_sources": self.box_sources, "sources": self.sources,
                "missing_films": self.missing}


def detected_films(detector, folder: Path, patient_ids, record: DetectionRecord, progress: str | None = None,
                   boxes: dict | None = None):
    """``(patient_id, limb, film [H, W], {site id: box})`` for every film of ``patient_ids`` in ``folder``,
    each film read once; the boxes are ``detector.detect_film``'s, or ``boxes[(patient_id, limb)]`` when
    ``boxes`` is given (e.g. ground truth). Missing films are skipped and listed in ``record.missing``.
    ``progress``: a progress-bar label, or None."""
    from ra2.io import read_film

    entries = _film_names(Path(folder), patient_ids)
    record.missing.extend(f"{pid}-{limb}" for pid, limb, path in entries if path is None)
    present = [e for e in entries if e[2] is not None]
    if progress:
        from tqdm import tqdm

        present = tqdm(present, desc=progress, unit="film")
    for pid, limb, path in present:
        film = read_film(path)
        if boxes is not None:
            site_boxes = boxes[(pid, limb)]
        else:
            found = detector.detect_film(film, limb)
            record.add(f"{pid}-{limb}", found)
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

        Returns the 90-column frame in ``contract.COLUMNS`` order (Overall_* = sums). A joint without a
        prediction (its limb's film is missing) gets its training mean (0 when unknown); ``last_run`` counts
        them. ``last_spread`` receives each joint's ensemble spread (``Patient_ID`` + 86 joints, NaN without
        a crop; :mod:`ra2.scoring.uncertainty`), ``last_detections`` the :class:`DetectionRecord`.
        """
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
        films = detected_films(self.detector, test_dir, pids, record,
                               "detecting joints on test films" if self.progress else None, boxes=boxes)
        frame, self.last_spread = predict_joints_with_spread(
            self.ensembles, crop_sets_from_films(films, None, sizes, margin=margin), pids, context=self.context)
        self.last_detections = record
        for key in record.missing:
            pid, limb = key.rsplit("-", 1)
            frame.loc[pids.index(pid), list(contract.limb_columns(limb))] = np.nan
        joints = frame[list(contract.JOINT_COLUMNS)]
        unpredicted = joints.isna()
        frame[list(contract.JOINT_COLUMNS)] = joints.fillna(
            {c: float(self.training_means.get(c, 0.0)) for c in contract.JOINT_COLUMNS})
        self.last_run = {"patients": len(pids), "missing_films": record.missing, "box_sources": record.sources,
                         "joints_from_training_means": int(unpredicted.to_numpy().sum())}
        return contract.add_overall(frame)


DETECTIONS_FILE = "detections.json"


def write_prediction_extras(predictor: Predictor, template: pd.DataFrame, folder: str | Path) -> list[Path]:
    """Beside ``predictions.csv`` in ``folder``: ``predictions_uncertainty.csv`` (each joint's ensemble spread,
    :mod:`ra2.scoring.uncertainty`) and ``detections.json`` (:meth:`DetectionRecord.to_dict`: boxes
    ``(y1, x1, y2, x2)`` in film pixels and their sources) of ``predictor``'s last :meth:`Predictor.predict`."""
    from ra2.scoring.uncertainty import UNCERTAINTY_FILE, write_uncertainty

    folder = Path(folder)
    unc = write_uncertainty(predictor.last_spread, template, folder / UNCERTAINTY_FILE)
    _write_json(folder / DETECTIONS_FILE, predictor.last_detections.to_dict())
    return [unc, folder / DETECTIONS_FILE]


def model_step(profile: str = DEFAULTS["run"], progress: bool = False, detectors_from: str | Path | None = None):
    """A ``model_step`` for :func:`ra2.challenge_run.run_challenge`: train into ``work_dir/models`` then
    predict. Writes the configuration (``pipeline.json``) and ``environment.json`` in ``work_dir/models``.
    ``detectors_from``: shipped detectors (the real ``/train`` has no joint annotations to train them)."""

    def step(train_dir: Path, test_dir: Path, work_dir: Path, template: pd.DataFrame) -> pd.DataFrame:
        models = Path(work_dir) / "models"
        Trainer(profile, progress=progress, detectors_from=detectors_from).fit(train_dir, models)
        predictor = Predictor.load(models, progress=progress)
        frame = predictor.predict(test_dir, template)
        _write_json(models / "prediction_run.json", predictor.last_run)
        return frame

    return step
