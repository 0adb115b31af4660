"""Training the whole pipeline: ``Trainer(profile).fit(train_dir, models_dir)``.

Training walks the prediction road forwards (docs/pipeline.md)::

    detectors: given, present in models_dir/detectors, shipped (weights/detectors), or trained on
               train_dir/annotations.json -> models_dir/detectors
    every training film: read once -> JointDetector.detect_film -> site boxes (DETECTED, not ground truth)
        -> site_crops -> crop sets (labels from training.csv), in memory
        (the boxes are recorded in models_dir/training_boxes.json for inspection)
    regressors: ra2.scoring.train.train_regressors_on_crops -> models_dir/regressors/<dataset>/...,
        so training crops look like test crops

``models_dir`` also receives ``pipeline.json`` (the configuration used, timings, training means),
``environment.json`` and ``fingerprint.json`` (:mod:`ra2.models_folder` names every file).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ra2 import Ra2Error, contract
from ra2 import models_folder as mf
from ra2.devices import DeviceSettings
from ra2.pipeline.films import DetectionRecord, detected_films
from ra2.profiles import DEFAULTS, Settings, settings
from ra2.runinfo import environment, write_json

log = logging.getLogger("ra2.pipeline")


class Trainer:
    """Train the whole pipeline.

    Args:
        profile: a profile of :mod:`ra2.profiles` (``smoke``, ``demo``, ``cpu``, ``full``) or its resolved
            :class:`ra2.profiles.Settings` (:attr:`settings`, resolved once here): the detectors' recipe (when
            they are trained here) and the regressors'.
        detectors_from: a folder of trained detectors to use (copied into ``models_dir/detectors``).
        train_detectors: train the detectors on ``train_dir/annotations.json`` (profile ``profile``) even
            when trained ones are at hand.
        devices: mixed precision, XLA and the devices to train on (:class:`ra2.devices.DeviceSettings`,
            resolved when :meth:`fit` starts; recorded in ``pipeline.json`` and in the fingerprint).
        shipped: the folder of shipped detectors; by default the source tree's
            (:func:`ra2.models_folder.shipped_detectors`), or none where it is incomplete.

    Where the detectors come from, first match: ``detectors_from``; ``train_detectors``; a complete set
    already in ``models_dir/detectors`` made from the same inputs (an earlier run's); the shipped detectors;
    detectors trained on ``train_dir/annotations.json``.

    Reuse and resume: ``models_dir/fingerprint.json`` records what the models were made from
    (:func:`ra2.models_folder.training_fingerprint`); :func:`ra2.models_folder.prepare` reuses a folder made
    from the same inputs and configuration (a killed run continues where it stopped), clears one made from
    other inputs and moves aside one without a fingerprint.
    """

    def __init__(self, profile: str | Settings = DEFAULTS["train"], seed: int = 0, progress: bool = True,
                 detectors_from: str | Path | None = None, train_detectors: bool = False,
                 devices: DeviceSettings = DeviceSettings(), shipped: Path | None = None):
        self.settings = settings(profile)
        self.profile = self.settings.name
        self.regressors = self.settings.regressors
        self.devices = devices
        self.seed = int(seed)
        self.progress = progress
        self.detectors_from = Path(detectors_from) if detectors_from else None
        self.train_detectors = bool(train_detectors)
        self.shipped = Path(shipped) if shipped else mf.shipped_detectors()

    def _detectors(self, train_dir: Path, det_dir: Path, devices) -> dict:
        from ra2.annotations import ANNOTATIONS_FILE
        from ra2.detection.train import train_detectors

        if self.detectors_from is not None:
            mf.copy_detectors(self.detectors_from, det_dir)
            log.info("detectors: copied from %s", self.detectors_from)
            return {"source": f"copied from {self.detectors_from}"}
        if not self.train_detectors:
            if mf.detectors_complete(det_dir):
                log.info("detectors: using the trained detectors in %s", det_dir)
                return {"source": f"present in {det_dir}"}
            if self.shipped is not None:
                mf.copy_detectors(self.shipped, det_dir)
                log.info("detectors: the shipped detectors (%s)", self.shipped)
                return {"source": f"shipped ({self.shipped})"}
        ann = train_dir / ANNOTATIONS_FILE
        if not ann.is_file():
            raise Ra2Error(f"{ann}: no joint annotations to train the detectors and no trained detectors in "
                           f"{det_dir} (real films need detectors trained on annotated films)")
        log.info("detectors: training on %s (profile %s)", ann, self.profile)
        res = train_detectors(train_dir, det_dir, self.settings, annotations=ann, seed=self.seed,
                              progress=self.progress, detectors=contract.DETECTORS, devices=devices)
        return {"source": f"trained on {ann}", "seconds": res["seconds"]}

    def fit(self, train_dir: str | Path, models_dir: str | Path) -> dict:
        """Train into ``models_dir``; returns the summary written to ``models_dir/pipeline.json``."""
        from ra2.baseline import training_means
        from ra2.detection.detect import JointDetector
        from ra2.io import TRAINING_CSV, read_training_csv
        from ra2.scoring.data import crop_sets_from_films
        from ra2.scoring.train import train_regressors_on_crops

        train_dir, models_dir = Path(train_dir), Path(models_dir)
        models_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        train_df = read_training_csv(train_dir / TRAINING_CSV)
        means = training_means(train_df)
        devices = self.devices.resolve()
        log.info("training devices: %s", devices.to_dict())
        fingerprint = mf.training_fingerprint(train_dir, self.regressors, self.seed, self.detectors_from,
                                              self.train_detectors, devices.to_dict())
        det_dir = models_dir / mf.DETECTORS_DIR
        keep = self.detectors_from is not None and self.detectors_from.resolve() == det_dir.resolve()
        reused = mf.prepare(models_dir, fingerprint, keep_detectors=keep)
        write_json(models_dir / mf.ENVIRONMENT_FILE, environment())  # the machine the models were trained on
        det_info = self._detectors(train_dir, det_dir, devices)
        t_det = time.time() - t0

        prof = self.regressors
        detector = JointDetector.load(det_dir)
        log.info("detecting the joints of %d training patients' films and cutting their crops", len(train_df))
        record = DetectionRecord()
        films = detected_films(detector, train_dir, train_df[contract.PATIENT_COLUMN], record,
                               "detecting joints on training films" if self.progress else None)
        labels = train_df.set_index(contract.PATIENT_COLUMN)
        crop_sets = crop_sets_from_films(films, labels, prof.sizes(), margin=prof.margin)
        if not record.boxes:
            raise Ra2Error(f"{train_dir}: no training films found")
        write_json(models_dir / mf.TRAINING_BOXES, record.to_dict())
        t_detect = time.time() - t0 - t_det

        log.info("training the regressor ensembles (profile %s: %d folds) on %s crops", prof.name, prof.n_folds,
                 ", ".join(f"{len(c)} {d}" for d, c in crop_sets.items()))
        reg = train_regressors_on_crops(crop_sets, models_dir / mf.REGRESSORS_DIR, prof, progress=self.progress,
                                        seed=self.seed, run_key=fingerprint["key"], devices=devices)
        summary = {
            "profile": self.profile, "seed": self.seed, "fingerprint": fingerprint["key"], "reused": reused,
            "devices": devices.to_dict(), "replicas": devices.replicas,
            "train_dir": str(train_dir), "patients": int(len(train_df)), "films": len(record.boxes),
            "training_rows_skipped": list(train_df.attrs.get("skipped_rows", [])),
            "missing_films": record.missing, "failed_films": record.failed, "detectors": det_info,
            "training_box_sources": record.sources,
            "crops_from": f"detected boxes (models_dir/{mf.TRAINING_BOXES}), not ground truth",
            "regressors": {d: {"threshold": v["threshold"], "oof": v["oof"]} for d, v in reg.items()
                           if d in contract.DATASETS},
            "context": reg.get("context"),
            "training_means": means,
            "seconds": {"detectors": round(t_det, 1), "detect_training_films": round(t_detect, 1),
                        "regressors": reg["seconds"], "total": round(time.time() - t0, 1)},
        }
        write_json(models_dir / mf.PIPELINE_FILE, summary)
        return summary
