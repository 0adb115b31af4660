"""The container's job (`run.sh` -> ``ra2 run``): always leave a complete, valid ``predictions.csv``.

Order of work:
1. read ``template.csv`` (it defines the rows; without it nothing valid can be written);
2. write a fallback ``predictions.csv`` at once: each joint's training mean (or, when ``training.csv``
   itself cannot be read, the constant :data:`FALLBACK_CONSTANT` for every joint), so that a crash or a
   time-out later still leaves a valid file;
3. run the model pipeline and replace the file atomically with its predictions. Any failure in this step
   is logged and the fallback stays (the pipeline itself falls back per film and per joint, so one bad film
   costs its joints, not the model's predictions: :class:`ra2.pipeline.predict.Predictor`); the model step is
   :class:`ModelStep` (train, then predict);
4. write ``run_summary.json`` beside ``predictions.csv`` (atomically; also when the run fails): versions, git
   commit, devices, profile, patients, films read / lost (with reasons), joints by box source and by fallback
   reason, seconds per stage, peak memory, and whether ``predictions.csv`` holds the model's predictions
   (``predictions_from``: ``model``, ``training_means`` or ``constant``).

Bad input: a template that cannot define the rows (missing ``Patient_ID`` column, empty or duplicate
ids, unknown or duplicate columns, ragged rows, not UTF-8) is the one case where nothing valid can be
written: :class:`ra2.Ra2Error`, one line naming the file and the problem, and no ``predictions.csv``.
``training.csv`` rows with missing or out-of-range scores are skipped and reported
(:func:`ra2.io.read_training_csv`). A template with a header and no rows (an empty test set) gives a
header-only ``predictions.csv``, which :func:`ra2.io.validate_predictions` accepts (one row per template
row, no more), and the model step is skipped: there is nothing to predict.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from ra2 import Ra2Error, contract
from ra2.devices import DeviceSettings
from ra2.profiles import DEFAULTS, settings

log = logging.getLogger("ra2.run")

SUMMARY_FILE = "run_summary.json"

FALLBACK_CONSTANT = 0.25
"""Joint score predicted for every joint when even ``training.csv`` is unreadable. Not 0: an all-zero
submission makes SC2/SC3 undefined (NA)."""


def constant_predictions(template: pd.DataFrame, value: float = FALLBACK_CONSTANT) -> pd.DataFrame:
    """Every joint column = ``value``; Overall_* = the sums. Rows and Patient_ID from the template."""
    df = pd.DataFrame({contract.PATIENT_COLUMN: template[contract.PATIENT_COLUMN].astype(str).values,
                       **{col: float(value) for col in contract.JOINT_COLUMNS}})
    return contract.add_overall(df)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, MiB (``getrusage``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class ModelStep:
    """The ``model_step`` of :func:`run_challenge`: train into ``work_dir/models``
    (:class:`ra2.pipeline.train.Trainer`), then predict (:class:`ra2.pipeline.predict.Predictor`).

    Args:
        profile: the profile (``ra2 run``: :func:`ra2.profiles.run_profile`), and ``profile_reason`` why.
        detectors_from: the detectors to use (the shipped ones: the real ``/train`` has no joint annotations
            to train them); None: trained from ``train_dir/annotations.json``.
        devices: :class:`ra2.devices.DeviceSettings` for training.

    ``report`` (copied into the run summary) holds, once called, the training summary's counts (films read and
    lost, box sources, seconds), the prediction's run record (:attr:`ra2.pipeline.predict.PredictResult.run`,
    also written to ``models/prediction_run.json``) and seconds per stage.
    """

    def __init__(self, profile: str = DEFAULTS["run"], progress: bool = False,
                 detectors_from: str | Path | None = None, devices: DeviceSettings = DeviceSettings(),
                 profile_reason: str | None = None):
        self.settings = settings(profile)  # resolved once
        self.profile = self.settings.name
        self.progress = progress
        self.detectors_from = detectors_from
        self.devices = devices
        self.report: dict = {"profile": self.profile, "profile_reason": profile_reason}

    def __call__(self, train_dir: Path, test_dir: Path, work_dir: Path, template: pd.DataFrame) -> pd.DataFrame:
        from ra2 import models_folder as mf
        from ra2.pipeline.predict import Predictor
        from ra2.pipeline.train import Trainer
        from ra2.runinfo import write_json

        models = Path(work_dir) / "models"
        t0 = time.time()
        summary = Trainer(self.settings, progress=self.progress, detectors_from=self.detectors_from,
                          devices=self.devices).fit(train_dir, models)
        self.report["training"] = {k: summary.get(k) for k in (
            "patients", "films", "missing_films", "failed_films", "training_rows_skipped", "detectors",
            "training_box_sources", "seconds", "reused", "fingerprint", "devices")}
        self.report["replicas"] = summary["replicas"]
        t1 = time.time()
        result = Predictor.load(models, progress=self.progress).predict(test_dir, template)
        write_json(models / mf.PREDICTION_RUN_FILE, result.run)
        self.report["prediction"] = result.run
        self.report["seconds"] = {"training": round(t1 - t0, 1), "prediction": round(time.time() - t1, 1)}
        return result.predictions


def run_challenge(train_dir: Path, test_dir: Path, output_dir: Path, work_dir: Path,
                  model_step=None) -> Path:
    """Write ``output_dir/predictions.csv`` for the patients of ``test_dir/template.csv``, and
    ``output_dir/run_summary.json``.

    ``model_step(train_dir, test_dir, work_dir, template) -> DataFrame`` computes the model's predictions
    (90 columns); ``None`` means the reference predictor (training means) is the final answer. A step with a
    ``report`` dict attribute (:class:`ModelStep`) has it copied into the summary.
    Returns the path written. Raises :class:`Ra2Error` only when the template itself is unusable (the summary
    is written all the same).
    With no patient in the template, ``model_step`` is not called and the file is header-only.
    """
    from ra2.runinfo import environment, write_json

    t0 = time.perf_counter()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"status": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "train_dir": str(train_dir), "test_dir": str(test_dir), "work_dir": str(work_dir),
                     "predictions": None, "predictions_from": None, "seconds": {}}
    try:
        out_path = _run(Path(train_dir), Path(test_dir), output_dir, Path(work_dir), model_step, summary, t0)
        summary["status"] = "ok"
        return out_path
    except BaseException as exc:
        summary["status"] = "failed"
        summary["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary["seconds"]["total"] = round(time.perf_counter() - t0, 1)
        summary["peak_memory_mb"] = peak_memory_mb()
        summary["environment"] = environment(tensorflow="tensorflow" in sys.modules)
        try:
            write_json(output_dir / SUMMARY_FILE, summary)
        except OSError as exc:  # the summary must never cost the predictions
            log.error("cannot write %s: %s", output_dir / SUMMARY_FILE, exc)


def _run(train_dir: Path, test_dir: Path, output_dir: Path, work_dir: Path, model_step, summary: dict,
         t0: float) -> Path:
    from ra2 import io
    from ra2.baseline import predict_means

    work_dir.mkdir(parents=True, exist_ok=True)
    out_path = output_dir / io.PREDICTIONS_CSV
    template = io.read_template_csv(test_dir / io.TEMPLATE_CSV)
    summary["patients"] = int(len(template))

    try:
        train_df = io.read_training_csv(train_dir / io.TRAINING_CSV)
        fallback = predict_means(train_df, template)
        fallback_kind = "training_means"
        skipped = train_df.attrs.get("skipped_rows", [])
        summary["training_patients"] = int(len(train_df))
        summary["training_rows_skipped"] = list(skipped)
        log.info("fallback predictions: training means of %d patients (%d training.csv rows skipped)",
                 len(train_df), len(skipped))
    except Ra2Error as exc:
        log.error("cannot read training data (%s); fallback: constant %.2f per joint", exc,
                  FALLBACK_CONSTANT)
        fallback = constant_predictions(template)
        fallback_kind = "constant"
        summary["training_error"] = str(exc)
    io.write_predictions(fallback, template, out_path)
    summary.update(predictions=str(out_path), predictions_from=fallback_kind)
    summary["seconds"]["fallback"] = round(time.perf_counter() - t0, 1)
    log.info("wrote fallback %s (%d rows)", out_path, len(template))

    if len(template) == 0:
        log.warning("%s has no patient rows: wrote a header-only predictions.csv, no model step",
                    test_dir / io.TEMPLATE_CSV)
    elif model_step is not None:
        t_model = time.perf_counter()
        try:
            predictions = model_step(train_dir, test_dir, work_dir, template)
            io.write_predictions(predictions, template, out_path)
            summary["predictions_from"] = "model"
            log.info("wrote model predictions %s", out_path)
        except Exception as exc:  # noqa: BLE001 - the fallback must survive any model failure
            summary["model_error"] = f"{type(exc).__name__}: {exc}"
            log.error("model step failed; keeping the fallback predictions:\n%s", traceback.format_exc())
        finally:
            summary["seconds"]["model"] = round(time.perf_counter() - t_model, 1)
            summary["model"] = getattr(model_step, "report", None)
    problems = io.validate_predictions(out_path, test_dir / io.TEMPLATE_CSV)
    if problems:  # should be impossible: write_predictions checks its input; rewrite the safest file
        log.error("predictions failed validation (%s); writing constant fallback", "; ".join(problems))
        io.write_predictions(constant_predictions(template), template, out_path)
        summary["predictions_from"] = "constant"
    log.info("done in %.1f s", time.perf_counter() - t0)
    return out_path
