"""Training: one ensemble member (:func:`train_member`), one data set's k-fold ensemble
(:func:`train_ensemble`) and the three ensembles from a training folder (:func:`train_regressors`).

Input pipeline: every epoch draws its sample order (balanced or shuffled, :mod:`ra2.scoring.sampling`),
then one background thread augments and standardises the whole next epoch (albumentations, seeded per
batch, so results do not depend on timing) while the model trains on the current one from in-memory arrays.
This replaced a ``tf.data`` map over ``numpy_function``, which on a 2-core CPU doubled the time per batch
(205 vs 97 ms at 48 px, ``bench/bench_training_step.py``). Mixed precision, XLA (``jit_compile``) and the
devices come as one resolved :class:`ra2.devices.Devices` (default: float32, no XLA, one device); with several
devices the members train under its ``MirroredStrategy`` with the recipe's batch per replica.

A member folder holds ``config.json`` (the :class:`~ra2.profiles.RegressorConfig`),
``model.weights.h5`` (weights of the best validation epoch) and ``metadata.json`` (fold, seed, epochs,
validation metrics, training recipe, validation patients, versions).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.devices import CPU_ONLY, Devices, reset_optimizer
from ra2.models_folder import (
    CONFIG_FILE,
    ENSEMBLE_FILE,
    ENSEMBLE_OOF,
    MEMBER_FILES,
    MEMBER_OOF,
    METADATA_FILE,
    REGRESSOR_PROFILE_FILE,
    WEIGHTS_FILE,
    member_name,
)
from ra2.profiles import DEFAULTS, RegressorConfig, RegressorProfile, TrainConfig, regressor_profile
from ra2.runinfo import environment, write_json
from ra2.scoring.augment import Augmenter
from ra2.scoring.data import CropSet, build_crop_sets, standardize
from ra2.scoring.folds import fold_indices, patient_folds
from ra2.scoring.metrics import log2_rmse, mae
from ra2.scoring.models import build_regressor
from ra2.scoring.predict import predict_images, predict_views
from ra2.scoring.sampling import balanced_indices, class_weights, oversample_weights, oversampled_indices
from ra2.scoring.thresholds import search_threshold

log = logging.getLogger("ra2.scoring")


@contextlib.contextmanager
def _dtype_policy(name: str):
    import keras

    old = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def _disable_op_determinism() -> None:
    import tensorflow as tf

    disable = getattr(tf.config.experimental, "disable_op_determinism", None)
    if disable is None:  # TensorFlow 2.21 exports only the enabling half
        from tensorflow.python.framework.config import disable_op_determinism as disable
    disable()


def log2_mse(y_true, y_pred):
    """Squared error in log2(x + 1) space, per sample ``[B]``: the challenge's joint metric, squared.

    Minimising it makes the network predict the conditional mean of log2(score + 1), which minimises the
    per-joint log2 RMSE; MAE instead predicts the conditional median (0 for most joints).
    """
    from keras import ops

    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    diff = (ops.log(ops.maximum(y_pred, 0.0) + 1.0) - ops.log(y_true + 1.0)) / np.log(2.0)
    return ops.mean(ops.square(diff), axis=-1)


def make_model(net: RegressorConfig, train: TrainConfig, devices: Devices = CPU_ONLY):
    """Build and compile the member network: ``mixed_float16`` layers and XLA per ``devices``, variables
    mirrored under its strategy when it has one. XLA or a strategy override the recipe's ``run_eagerly``
    (a mirrored eager step is many times slower than a traced one)."""
    import keras

    losses = {"mae": keras.losses.MeanAbsoluteError(), "logcosh": keras.losses.LogCosh(),
              "mse": keras.losses.MeanSquaredError(), "log2_mse": log2_mse}
    if train.loss not in losses:
        raise Ra2Error(f"unknown loss {train.loss!r}; expected one of {sorted(losses)}")
    with devices.scope(), _dtype_policy(devices.dtype_policy):
        model = build_regressor(net)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate(train)), loss=losses[train.loss],
                      jit_compile=devices.xla,
                      run_eagerly=train.run_eagerly and not devices.xla and devices.strategy is None)
    return model


def best_constant(labels: np.ndarray, loss: str) -> float:
    """The constant prediction that minimises ``loss`` over ``labels`` ([N] scores, NaN ignored): the mean
    (``mse``, ``logcosh``), the median (``mae``) or 2 ** mean(log2(y + 1)) - 1 (``log2_mse``)."""
    y = np.asarray(labels, dtype=np.float64)
    y = y[np.isfinite(y)]
    if len(y) == 0:
        return 0.0
    if loss == "mae":
        return float(np.median(y))
    if loss == "log2_mse":
        return float(2.0 ** np.mean(np.log2(y + 1.0)) - 1.0)
    return float(y.mean())


def set_output_prior(model, net: RegressorConfig, value: float) -> None:
    """Set the bias of the output unit so that a zero feature vector predicts ``value`` (in score units).

    The sigmoid output starts at half the range otherwise (2.5 of 0-5 for hand erosion, where 93% of the
    scores are 0): the first hundred steps then drive every layer towards the constant with large
    gradients, and some members never leave it (``docs/regressors.md``, session 4).
    """
    frac = float(np.clip(value / net.max_score, 1e-3, 1.0 - 1e-3))
    layer = model.get_layer("score_sigmoid")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.full_like(bias, np.log(frac / (1.0 - frac)))])


def learning_rate(train: TrainConfig):
    """The optimiser's learning rate: ``train.learning_rate`` as is (``constant``) or a cosine decay from it
    to 0 over ``epochs x steps_per_epoch`` steps (``cosine``; needs ``steps_per_epoch``)."""
    import keras

    if train.lr_schedule == "constant":
        return train.learning_rate
    if train.lr_schedule != "cosine":
        raise Ra2Error(f"unknown lr_schedule {train.lr_schedule!r}; expected constant or cosine")
    if not train.steps_per_epoch:
        raise Ra2Error("lr_schedule 'cosine' needs steps_per_epoch (the number of steps must be known)")
    return keras.optimizers.schedules.CosineDecay(train.learning_rate, train.epochs * train.steps_per_epoch)


def _epoch_arrays(images: np.ndarray, labels: np.ndarray, weights: np.ndarray, order: np.ndarray,
                  batch_size: int, augmenter: Augmenter, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch's training arrays in batch order over ``order``.

    Returns ``(x [N, s, s, 1] float32 augmented and standardised, y [N, 1] float32, w [N] float32)``; batch
    ``b`` (samples ``order[b * batch_size:(b + 1) * batch_size]``) is augmented with its own seed. Memory:
    ``4 * N * s * s`` bytes (the ``cpu`` profile's 1,600 crops of 48 px: 15 MB; two epochs live at once).
    """
    parts = []
    for b in range(math.ceil(len(order) / batch_size)):
        sel = order[b * batch_size:(b + 1) * batch_size]
        parts.append(standardize(augmenter(images[sel], seed=(seed * 1_000_003 + b) % (2**31 - 1))))
    size = images.shape[1]
    x = np.concatenate(parts)[..., None] if parts else np.zeros((0, size, size, 1), np.float32)
    return x, labels[order, None].astype(np.float32), weights[order].astype(np.float32)


def _epoch_order(labels: np.ndarray, train: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Sample indices of one epoch: balanced or shuffled draws, repeated until ``steps_per_epoch``
    batches are filled (when set), so rare-class data sets still get a fixed number of steps."""
    def draw():
        if train.sampling == "balanced":
            return balanced_indices(labels, rng)
        return oversampled_indices(labels, train.oversample, rng)

    order = draw()
    if train.steps_per_epoch:
        need = train.steps_per_epoch * train.batch_size
        parts = [order]
        while sum(len(p) for p in parts) < need:
            parts.append(draw())
        order = np.concatenate(parts)[:need]
    return order


TTA_MODES = ("off", "on", "auto")


def choose_tta(mode: str, oof_plain: np.ndarray, oof_views: np.ndarray | None, labels: np.ndarray,
               max_score: float) -> tuple[bool, dict]:
    """Whether an ensemble predicts with test-time augmentation, from its out-of-fold predictions.

    Args:
        mode: ``off``, ``on``, or ``auto`` (on where the view-averaged out-of-fold predictions have the
            lower log2 RMSE; ties go to off, the cheaper).
        oof_plain, oof_views: ``[N]`` out-of-fold predictions without / with the views (``oof_views`` may
            be None with mode ``off``).
        labels: ``[N]`` true scores. max_score: the data set's top score (predictions clipped to it).

    Returns:
        ``(use the views, {"mode", "log2_rmse_plain", "log2_rmse_tta" (None without views)})``.
    """
    if mode not in TTA_MODES:
        raise Ra2Error(f"unknown test-time augmentation mode {mode!r}; expected one of {TTA_MODES}")
    plain = log2_rmse(np.clip(oof_plain, 0.0, max_score), labels)
    if oof_views is None:
        if mode != "off":
            raise ValueError(f"mode {mode!r} needs the view-averaged predictions")
        return False, {"mode": mode, "log2_rmse_plain": plain, "log2_rmse_tta": None}
    views = log2_rmse(np.clip(oof_views, 0.0, max_score), labels)
    use = mode == "on" or (mode == "auto" and views < plain - 1e-12)  # a tie (up to rounding) goes to off
    return use, {"mode": mode, "log2_rmse_plain": plain, "log2_rmse_tta": views}


class _BatchBar:
    """A Keras callback that advances a tqdm bar per batch and shows the loss."""

    def __new__(cls, bar):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                bar.update(1)
                if logs and "loss" in logs:
                    bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

        return Callback()


def reinitialize(model, net: RegressorConfig, devices: Devices = CPU_ONLY) -> None:
    """Give a compiled ``model`` fresh initial weights (from the current Keras seed) and its optimizer its
    initial state (:func:`ra2.devices.reset_optimizer`: moments and step 0, the loss scale back to its
    initial value under mixed precision).

    Lets the k folds of one data set share one compiled model, so the training step is traced once.
    """
    with _dtype_policy(devices.dtype_policy):
        fresh = build_regressor(net)
    model.set_weights(fresh.get_weights())
    if model.optimizer.built:
        reset_optimizer(model.optimizer, model.trainable_variables)


def train_member(net: RegressorConfig, train: TrainConfig, train_set: CropSet, val_set: CropSet,
                 seed: int = 0, progress: bool = True, desc: str = "",
                 model=None, devices: Devices = CPU_ONLY) -> tuple[object, dict, np.ndarray]:
    """Train one member with early stopping on validation log2 RMSE.

    ``model``: optional compiled model of ``net`` to reuse (re-initialised from ``seed`` here). ``devices``:
    mixed precision, XLA and the strategy (:mod:`ra2.devices`); with R replicas each step takes
    ``R x train.batch_size`` crops (``train.batch_size`` per replica) and an epoch as many steps as the recipe
    says, so the learning rate schedule is unchanged.

    Returns:
        ``(model at its best epoch, metadata dict, [N_val] validation predictions of that model)``.
    """
    import keras
    import tensorflow as tf

    if len(train_set) == 0 or len(val_set) == 0:
        raise Ra2Error(f"{net.dataset}: empty training or validation part ({len(train_set)}/{len(val_set)})")
    if train_set.images.shape[1] != net.input_size:
        raise ValueError(f"crops are {train_set.images.shape[1]} px but the network takes {net.input_size}")
    keras.utils.set_random_seed(seed)
    if devices.xla:
        # Keras quietly drops jit_compile while op determinism is on (not every op has a deterministic XLA
        # kernel): XLA members are seeded but not bitwise reproducible.
        _disable_op_determinism()
    elif train.deterministic:
        tf.config.experimental.enable_op_determinism()
    if model is None:
        model = make_model(net, train, devices)
    else:
        reinitialize(model, net, devices)
    if devices.xla and not model.jit_compile:
        raise RuntimeError("XLA was asked for but Keras compiled the member without it")
    recipe = train
    train = dataclasses.replace(train, batch_size=train.batch_size * devices.replicas)  # the global batch
    if train.prior_bias:
        set_output_prior(model, net, best_constant(train_set.labels, train.loss))
    augmenter = Augmenter(train.augment)
    rng = np.random.default_rng(seed)
    if train.sampling == "weights":
        weights = class_weights(train_set.labels)
    elif train.oversample > 1 and train.oversample_unbiased and train.sampling != "balanced":
        weights = oversample_weights(train_set.labels, train.oversample)
    else:
        weights = np.ones(len(train_set), np.float32)

    best = {"log2_rmse": math.inf, "epoch": -1, "weights": None, "pred": None}
    history = []  # one entry per validated epoch
    waited = 0
    every = max(1, int(train.val_every))
    val_seconds = 0.0
    epochs_run = 0
    t0 = time.time()

    def prepare(epoch: int):
        order = _epoch_order(train_set.labels, train, rng)  # drawn here, in epoch order: reproducible
        return pool.submit(_epoch_arrays, train_set.images, train_set.labels, weights, order, train.batch_size,
                           augmenter, seed * 1000 + epoch)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ra2-augment")
    try:
        upcoming = prepare(0)
        for epoch in range(train.epochs):
            epochs_run = epoch + 1
            x, y, w = upcoming.result()
            if epoch + 1 < train.epochs:
                upcoming = prepare(epoch + 1)  # augmented in the background while this epoch trains
            callbacks = []
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=math.ceil(len(y) / train.batch_size), desc=f"{desc} epoch {epoch + 1}",
                           unit="batch", leave=False)
                callbacks.append(_BatchBar(bar))
            fit = model.fit(x, y, sample_weight=w, batch_size=train.batch_size, epochs=1, verbose=0,
                            callbacks=callbacks, shuffle=False)
            if (epoch + 1) % every and epoch + 1 < train.epochs:
                if bar is not None:
                    bar.close()
                continue
            t_val = time.time()
            pred = predict_images(model, val_set.images)
            val_seconds += time.time() - t_val
            val = {"epoch": epoch + 1, "loss": float(fit.history["loss"][-1]),
                   "val_log2_rmse": log2_rmse(pred, val_set.labels), "val_mae": mae(pred, val_set.labels)}
            history.append(val)
            if bar is not None:
                bar.set_postfix(loss=f"{val['loss']:.4f}", val_log2_rmse=f"{val['val_log2_rmse']:.4f}")
                bar.close()
            if val["val_log2_rmse"] < best["log2_rmse"] - 1e-6:
                best.update(log2_rmse=val["val_log2_rmse"], epoch=epoch + 1, weights=model.get_weights(), pred=pred)
                waited = 0
            else:
                waited += every
                if waited >= train.patience:
                    break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    model.set_weights(best["weights"])
    meta = {
        "dataset": net.dataset, "seed": seed, "epochs_run": epochs_run, "best_epoch": best["epoch"],
        "validation": {"log2_rmse": best["log2_rmse"], "mae": mae(best["pred"], val_set.labels),
                       "n_samples": len(val_set), "patients": sorted(set(val_set.patient_ids.tolist()))},
        "n_train_samples": len(train_set), "history": history, "train_config": recipe.to_dict(),
        "devices": devices.to_dict(), "global_batch_size": train.batch_size, "xla_compiled": bool(model.jit_compile),
        "parameters": int(model.count_params()), "train_seconds": round(time.time() - t0, 2),
        "validation_seconds": round(val_seconds, 2), "epochs_validated": len(history),
        "environment": environment(),
    }
    return model, meta, best["pred"]


def save_member(model, net: RegressorConfig, meta: dict, folder: str | Path) -> Path:
    """Write ``config.json``, ``model.weights.h5``, ``metadata.json`` of one member into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / CONFIG_FILE, net.to_dict())
    model.save_weights(str(folder / WEIGHTS_FILE))
    write_json(folder / METADATA_FILE, meta)  # last: the member is complete
    return folder


def reusable_member(folder: Path, run_key: str | None) -> dict | None:
    """The metadata of a complete member in ``folder`` trained under ``run_key``, or None. ``metadata.json``
    is written last, so a member killed while being written is never reused."""
    if run_key is None:
        return None
    files = [folder / f for f in (*MEMBER_FILES, MEMBER_OOF)]
    if not all(f.is_file() for f in files):
        return None
    try:
        meta = json.loads((folder / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta if meta.get("run_key") == run_key else None


def train_ensemble(crops: CropSet, profile: RegressorProfile, out_dir: str | Path, seed: int = 0,
                   progress: bool = True, run_key: str | None = None, devices: Devices = CPU_ONLY) -> dict:
    """Train the k members of one data set, choose its zero threshold on out-of-fold predictions.

    Writes ``out_dir/member_<k>/{config.json, model.weights.h5, oof.npz, metadata.json}`` and
    ``out_dir/ensemble.json``; returns the ``ensemble.json`` content.

    ``run_key``: a fingerprint of the inputs and configuration (:func:`ra2.models_folder.training_fingerprint`);
    each member records it, and a member already complete under the same key is reused, not retrained: a
    killed run resumes where it stopped. ``devices``: see :func:`train_member`.
    """
    dataset = crops.dataset
    net, train = profile.networks[dataset], profile.training[dataset]
    out_dir = Path(out_dir)
    folds = patient_folds(crops.patient_ids, profile.n_folds, seed=seed, labels=crops.labels)
    if profile.tta not in TTA_MODES:
        raise Ra2Error(f"profile {profile.name!r}: unknown test-time augmentation mode {profile.tta!r}; "
                       f"expected one of {TTA_MODES}")
    oof = np.full(len(crops), np.nan)
    oof_views = np.full(len(crops), np.nan) if profile.tta != "off" else None
    members = []
    model = None
    for k in range(profile.n_folds):
        tr, va = fold_indices(folds, k)
        folder = out_dir / member_name(k)
        members.append(member_name(k))
        meta = reusable_member(folder, run_key)
        if meta is not None:
            kept = np.load(folder / MEMBER_OOF)
            if len(kept["predictions"]) == len(va):
                oof[va] = kept["predictions"]
                if oof_views is not None:
                    oof_views[va] = kept["views"]
                log.info("%s member %d/%d: reused (complete in %s from the same inputs and configuration)",
                         dataset, k + 1, profile.n_folds, folder)
                continue
        (folder / METADATA_FILE).unlink(missing_ok=True)  # the member is incomplete until it is rewritten
        t0 = time.time()
        model, meta, pred = train_member(net, train, crops.subset(tr), crops.subset(va), seed=seed + 101 * k,
                                         progress=progress, desc=f"{dataset} fold {k + 1}/{profile.n_folds}",
                                         model=model, devices=devices)
        meta.update(fold=k, n_folds=profile.n_folds, profile=profile.name, run_key=run_key)
        oof[va] = pred
        views = predict_views(model, crops.images[va]) if oof_views is not None else np.full(len(va), np.nan)
        if oof_views is not None:
            oof_views[va] = views
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / MEMBER_OOF, predictions=pred, views=views)
        save_member(model, net, meta, folder)
        log.info("%s member %d/%d: %d training crops, %d epochs, validation log2 RMSE %.4f (best epoch %d), %.0f s",
                 dataset, k + 1, profile.n_folds, len(tr), meta["epochs_run"], meta["validation"]["log2_rmse"],
                 meta["best_epoch"], time.time() - t0)
    summary = {"dataset": dataset, "members": members, "input_size": net.input_size, "margin": profile.margin,
               "profile": profile.name, "seed": seed}
    return finish_ensemble(summary, out_dir, crops, folds, oof, oof_views, profile.tta, net.max_score)


def finish_ensemble(summary: dict, out_dir: str | Path, crops: CropSet, folds: np.ndarray, oof: np.ndarray,
                    oof_views: np.ndarray | None, tta_mode: str, max_score: float) -> dict:
    """The post-training choices of an ensemble from its out-of-fold predictions: test-time augmentation
    (:func:`choose_tta`), then the zero cut-off searched on the chosen predictions.

    Args:
        summary: the ``ensemble.json`` fields that do not depend on the choices (dataset, members, ...).
        crops: the training crop set; ``folds``, ``oof``, ``oof_views``: ``[N]`` in its order.

    Writes ``out_dir/ensemble.json`` and ``out_dir/oof_predictions.npz`` (the chosen predictions, what the
    context model is fitted on); returns the ``ensemble.json`` content.
    """
    out_dir = Path(out_dir)
    use_tta, tta_report = choose_tta(tta_mode, oof, oof_views, crops.labels, max_score)
    chosen = oof_views if use_tta else oof
    threshold, curve = search_threshold(chosen, crops.labels)
    summary = dict(summary, threshold=threshold, tta=use_tta, tta_choice=tta_report, oof={
        "log2_rmse_raw": log2_rmse(chosen, crops.labels), "log2_rmse_thresholded": curve[threshold],
        "mae": mae(chosen, crops.labels), "threshold_0.5": curve.get(0.5), "n_samples": len(crops),
        "n_patients": int(len(set(crops.patient_ids.tolist())))},
        threshold_curve={f"{t:.2f}": v for t, v in curve.items()})
    write_json(out_dir / ENSEMBLE_FILE, summary)
    np.savez(out_dir / ENSEMBLE_OOF, predictions=chosen, labels=crops.labels,
             patient_ids=crops.patient_ids, columns=crops.columns, folds=folds)
    return summary


def training_csv(train_dir: Path) -> Path:
    """``train_dir/training.csv``, or a :class:`Ra2Error` naming it when it is missing."""
    csv = Path(train_dir) / "training.csv"
    if not csv.is_file():
        raise Ra2Error(f"{csv}: no such file (the training folder needs training.csv and the films)")
    return csv


def train_regressors(train_dir: str | Path, out_dir: str | Path,
                     profile: str | RegressorProfile = DEFAULTS["train-regressors"],
                     crops_dir: str | Path | None = None, progress: bool = True, seed: int = 0,
                     annotations: str | Path | None = None, datasets=None, devices: Devices = CPU_ONLY) -> dict:
    """Train the three ensembles (foot erosion, hand erosion, narrowing) on the crops of annotated site boxes.

    Args:
        train_dir: challenge-layout training folder: ``training.csv`` + films.
        out_dir: receives ``<dataset>/member_<k>/...``, ``<dataset>/ensemble.json`` and ``profile.json``.
        profile: a profile name (:mod:`ra2.profiles`) or a :class:`~ra2.profiles.RegressorProfile`.
        crops_dir: crop cache folder (default ``out_dir/crops``).
        annotations: site boxes (default ``train_dir/annotations.json``, the phantom's layout).
        datasets: subset of data sets to train (default all three).
        devices: mixed precision, XLA and the strategy (:mod:`ra2.devices`).

    Returns what :func:`train_regressors_on_crops` returns. (The pipeline's :class:`ra2.pipeline.train.Trainer`
    cuts its crops around detected boxes itself and calls :func:`train_regressors_on_crops`.)
    """
    prof = regressor_profile(profile) if isinstance(profile, str) else profile
    train_dir, out_dir = Path(train_dir), Path(out_dir)
    datasets = tuple(datasets or contract.DATASETS)
    unknown = [d for d in datasets if d not in contract.DATASET_MAX]
    if unknown:
        raise Ra2Error(f"unknown data set {unknown[0]!r}; expected some of {contract.DATASETS}")
    csv = training_csv(train_dir)
    t0 = time.time()
    sizes = {d: prof.networks[d].input_size for d in datasets}
    sets = build_crop_sets(train_dir, Path(annotations) if annotations else train_dir / "annotations.json",
                           sizes, labels_csv=csv, margin=prof.margin,
                           cache_dir=Path(crops_dir) if crops_dir else out_dir / "crops", progress=progress)
    result = train_regressors_on_crops(sets, out_dir, prof, progress=progress, seed=seed, devices=devices)
    result["seconds"] = round(time.time() - t0, 1)
    return result


def train_regressors_on_crops(crop_sets: dict[str, CropSet], out_dir: str | Path, profile: RegressorProfile,
                              progress: bool = True, seed: int = 0, run_key: str | None = None,
                              devices: Devices = CPU_ONLY) -> dict:
    """Train one ensemble per crop set (data set -> :class:`~ra2.scoring.data.CropSet` with labels).

    Writes ``out_dir/profile.json`` and ``out_dir/<dataset>/``; when ``out_dir`` then holds all three
    ensembles and the profile's ``context`` is on, the patient context model is fitted on their out-of-fold
    predictions (``out_dir/context.json``, :mod:`ra2.scoring.context`). ``run_key``: see :func:`train_ensemble`
    (members complete under the same key are reused). ``devices``: mixed precision, XLA and the strategy
    (:mod:`ra2.devices`), recorded in ``profile.json``.

    Returns:
        data set -> its ``ensemble.json`` content, plus ``"seconds"`` (and ``"context"``: the context
        model's cross-fitted report).
    """
    prof, out_dir = profile, Path(out_dir)
    t0 = time.time()
    datasets = tuple(crop_sets)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / REGRESSOR_PROFILE_FILE,
               {"profile": prof.name, "n_folds": prof.n_folds, "margin": prof.margin, "seed": seed,
                "context": prof.context, "devices": devices.to_dict(),
                "networks": {d: prof.networks[d].to_dict() for d in datasets},
                "training": {d: prof.training[d].to_dict() for d in datasets}})
    result: dict = {}
    for d in datasets:
        result[d] = train_ensemble(crop_sets[d], prof, out_dir / d, seed=seed, progress=progress, run_key=run_key,
                                   devices=devices)
    if prof.context and all((out_dir / d / ENSEMBLE_OOF).is_file() for d in contract.DATASETS):
        from ra2.scoring.context import train_context

        result["context"] = train_context(out_dir, seed=seed).report
    result["seconds"] = round(time.time() - t0, 1)
    return result


__all__ = ["train_member", "train_ensemble", "train_regressors", "train_regressors_on_crops", "save_member",
           "make_model"]
