"""The whole job: train detectors and regressors, then predict a test folder (used by the CLI, ``ra2 run``,
the demo and the tests).

Walk of the data (see docs/pipeline.md)::

    Trainer(profile).fit(train_dir, models_dir)
        detectors: shipped/present in models_dir/detectors (all four complete) -> used as they are;
                   otherwise trained on train_dir/annotations.json (ground truth, the phantom's)
        every training film -> JointDetector.detect_film -> site boxes (DETECTED, not ground truth)
            -> models_dir/detected_train.json (the annotation format the scoring stage reads)
        regressors: ra2.scoring.train.train_regressors on crops cut around the detected boxes,
            so training crops look like test crops -> models_dir/regressors/<dataset>/...
    Predictor.load(models_dir).predict(test_dir, template)
        every test film -> detect_film -> site_crops -> ensembles -> 86 joints (+ Overall_* sums)

``models_dir`` also receives ``pipeline.json`` (the configuration used, timings) and ``environment.json``.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract

log = logging.getLogger("ra2.pipeline")

DETECTORS_DIR = "detectors"
REGRESSORS_DIR = "regressors"
DETECTED_TRAIN = "detected_train.json"
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


def environment() -> dict:
    """Versions, platform and devices (written next to the outputs)."""
    import keras
    import tensorflow as tf

    from ra2 import __version__

    return {"ra2": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "cpus": __import__("os").cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def _write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def detection_annotation(patient_id: str, limb: str, file_name: str, shape, found):
    """A :class:`ra2.phantom.annotations.FilmAnnotation` holding detected boxes (polygons = box outlines),
    so that the scoring stage's annotation reader can cut crops from detections."""
    from ra2.phantom.annotations import FilmAnnotation, ObjectAnnotation

    objects = []
    for site_id, box in found.boxes.items():
        site = contract.SITE_BY_ID[site_id]
        y1, x1, y2, x2 = box
        polygon = np.array([[y1, x1], [y1, x2], [y2, x2], [y2, x1]], dtype=np.float32)
        objects.append(ObjectAnnotation(detector=site.detector, class_name=site.detector_class, site_id=site_id,
                                        box=tuple(box), polygon=polygon))
    carpus = None
    if found.carpus_box is not None:
        from ra2.detection.frame import integer_region

        carpus = integer_region(found.carpus_box, shape)
    return FilmAnnotation(patient_id=patient_id, limb=limb, file_name=file_name, height=int(shape[0]),
                          width=int(shape[1]), carpus_box=carpus, objects=objects)


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
        profile: ``smoke`` (tests), ``cpu`` (the demo) or ``full`` (GPU); used for both stages unless
            ``regressor_profile`` says otherwise.
        detectors_from: a folder of trained detectors to use (copied into ``models_dir/detectors``).
        train_detectors: train the detectors on ``train_dir/annotations.json`` (profile ``profile``) even
            when trained ones are at hand.

    Where the detectors come from, first match: ``detectors_from``; ``train_detectors``; a complete set
    already in ``models_dir/detectors`` (an earlier run's: never overwritten); the shipped detectors
    (:func:`shipped_detectors`); detectors trained on ``train_dir/annotations.json``.
    """

    def __init__(self, profile: str = "cpu", regressor_profile: str | None = None, seed: int = 0,
                 progress: bool = True, detectors_from: str | Path | None = None, train_detectors: bool = False):
        from ra2.detection.specs import check_profile

        self.profile = check_profile(profile)
        self.regressor_profile = regressor_profile or profile
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
        from ra2.detection.detect import JointDetector
        from ra2.io import read_film, read_training_csv
        from ra2.phantom.annotations import write_annotations
        from ra2.scoring.train import train_regressors

        train_dir, models_dir = Path(train_dir), Path(models_dir)
        models_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        train_df = read_training_csv(train_dir / "training.csv")
        _write_json(models_dir / "environment.json", environment())
        det_info = self._detectors(train_dir, models_dir / DETECTORS_DIR)
        t_det = time.time() - t0

        detector = JointDetector.load(models_dir / DETECTORS_DIR)
        films, sources, missing = [], {}, []
        entries = _film_names(train_dir, train_df[contract.PATIENT_COLUMN])
        if self.progress:
            from tqdm import tqdm

            entries = tqdm(entries, desc="detecting joints on training films", unit="film")
        for pid, limb, path in entries:
            if path is None:
                missing.append(f"{pid}-{limb}")
                continue
            film = read_film(path)
            found = detector.detect_film(film, limb)
            for s in found.sources.values():
                sources[s] = sources.get(s, 0) + 1
            films.append(detection_annotation(pid, limb, path.name, film.shape, found))
        if not films:
            raise Ra2Error(f"{train_dir}: no training films found")
        write_annotations(models_dir / DETECTED_TRAIN, films)
        t_detect = time.time() - t0 - t_det

        reg = train_regressors(train_dir, models_dir / REGRESSORS_DIR, profile=self.regressor_profile,
                               crops_dir=models_dir / "crops", progress=self.progress, seed=self.seed,
                               annotations=models_dir / DETECTED_TRAIN)
        means = train_df[list(contract.JOINT_COLUMNS)].astype(float).mean(axis=0)
        summary = {
            "profile": self.profile, "regressor_profile": self.regressor_profile, "seed": self.seed,
            "train_dir": str(train_dir), "patients": int(len(train_df)), "films": len(films),
            "missing_films": missing, "detectors": det_info, "training_box_sources": sources,
            "crops_from": "detected boxes (models_dir/detected_train.json), not ground truth",
            "regressors": {d: {"threshold": v["threshold"], "oof": v["oof"]} for d, v in reg.items()
                           if d in contract.DATASETS},
            "context": reg.get("context"),
            "training_means": {c: float(v) for c, v in means.items()},
            "seconds": {"detectors": round(t_det, 1), "detect_training_films": round(t_detect, 1),
                        "regressors": reg["seconds"], "total": round(time.time() - t0, 1)},
        }
        _write_json(models_dir / PIPELINE_FILE, summary)
        return summary


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

    def predict(self, test_dir: str | Path, template: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predictions for the patients of ``template`` (default ``test_dir/template.csv``).

        Returns the 90-column frame in ``contract.COLUMNS`` order (Overall_* = sums). A limb whose film is
        missing gets the training means of its joints (0 when unknown).
        """
        from ra2.io import read_film, read_template_csv
        from ra2.scoring.aggregate import add_overall
        from ra2.scoring.data import crop_sets_from_films
        from ra2.scoring.ensemble import predict_joints

        test_dir = Path(test_dir)
        if template is None:
            template = read_template_csv(test_dir / "template.csv")
        pids = [str(p) for p in template[contract.PATIENT_COLUMN]]
        sizes = {d: e.input_size for d, e in self.ensembles.items()}
        margin = next(iter(self.ensembles.values())).margin
        entries = _film_names(test_dir, pids)
        missing = [(pid, limb) for pid, limb, path in entries if path is None]
        sources: dict[str, int] = {}

        def films():
            it = [e for e in entries if e[2] is not None]
            if self.progress:
                from tqdm import tqdm

                it = tqdm(it, desc="detecting joints on test films", unit="film")
            for pid, limb, path in it:
                film = read_film(path)
                found = self.detector.detect_film(film, limb)
                for s in found.sources.values():
                    sources[s] = sources.get(s, 0) + 1
                yield pid, limb, film, found.boxes

        crop_sets = crop_sets_from_films(films(), None, sizes, margin=margin)
        frame = predict_joints(self.ensembles, crop_sets, pids, context=self.context)
        for pid, limb in missing:
            row = pids.index(pid)
            for col in contract.limb_columns(limb):
                frame.loc[row, col] = float(self.training_means.get(col, 0.0))
        frame = add_overall(frame)
        self.last_run = {"patients": len(pids), "missing_films": [f"{p}-{l}" for p, l in missing],
                         "box_sources": sources}
        return frame


def model_step(profile: str = "full", progress: bool = False, detectors_from: str | Path | None = None):
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
