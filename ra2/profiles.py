"""Profiles: one name chooses every stage's settings. The names, their validation, the command line's choices
and defaults, and each stage's settings per profile live here and nowhere else.

| profile | detectors (``detector_settings``)            | regressors (``regressor_profile``)             | for       |
|---------|----------------------------------------------|------------------------------------------------|-----------|
| smoke   | 64 px, tiny networks, 2 steps                | tiny networks, 24-32 px, 2 folds, 8 steps      | tests     |
| demo    | the ``cpu`` detectors                        | the ``cpu`` networks, 2 folds, short training  | make demo |
| cpu     | 256/128 px slim ResNet-18, 2,000 steps       | 48 px DenseNet, 5 folds, 40-120 epochs         | 2 cores   |
| full    | 512/256 px ResNet-50, 20,000 steps           | the cpu recipe, 64 px, wider DenseNet, 5 folds | a GPU     |

(smoke: seconds, scores mean nothing; demo: minutes on 2 cores; cpu: the shipped detectors' recipe, about 50 min /
2.5 h on 2 cores.)

Stage settings are plain data: :class:`DetectorRecipe` and the Mask R-CNN attributes of
:func:`detector_settings` for the detectors (assembled into a config by
:func:`ra2.detection.specs.detector_config`), :class:`RegressorProfile` for the regressors. The reasons
behind the numbers are in ``docs/detection.md`` and ``docs/regressors.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ra2 import Ra2Error, contract

PROFILES = ("smoke", "demo", "cpu", "full")

DESCRIPTIONS = {
    "smoke": "seconds, tiny models that show the whole road (tests; scores mean nothing)",
    "demo": "the shipped detectors and the cpu regressor networks trained for minutes (make demo)",
    "cpu": "CPU-sized models: detectors about 50 min, regressors about 2.5 h on 2 cores",
    "full": "the cpu recipe with GPU-sized networks and crops (ra2 run's default where a GPU is visible)",
}

DEFAULTS = {"train": "cpu", "train-detectors": "cpu", "train-regressors": "cpu", "demo": "demo", "run": "full"}
"""The profile each entry point uses when none is given (``ra2 run``: see :func:`run_profile`)."""


def run_profile(requested: str | None, gpus: int) -> tuple[str, str]:
    """The profile of ``ra2 run`` (the container's job) and why: ``requested`` (``$RA2_PROFILE``) when set,
    else ``full`` where a GPU is visible and ``cpu`` where none is (a CPU-only node must not start a GPU-sized
    job). Returns ``(profile, reason)``."""
    if requested:
        return check_profile(requested), f"RA2_PROFILE={requested}"
    if gpus:
        return DEFAULTS["run"], f"no RA2_PROFILE; {gpus} GPU(s) visible"
    return "cpu", "no RA2_PROFILE and no GPU visible: the CPU-sized profile"


def check_profile(name: str) -> str:
    """``name`` when it is a profile, else a :class:`ra2.Ra2Error` listing the profiles."""
    if name not in PROFILES:
        raise Ra2Error(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}")
    return name


def help_text(entry_point: str) -> str:
    """The ``--profile`` help of a command: every profile with what it is for, and the default."""
    choices = "; ".join(f"{p}: {DESCRIPTIONS[p]}" for p in PROFILES)
    return f"{choices} (default: {DEFAULTS[entry_point]})"


# ------------------------------------------------------------------------------------------- detectors
@dataclass(frozen=True)
class DetectorRecipe:
    """How one detector is trained from scratch.

    ``steps`` optimiser steps of ``batch_size`` images, grouped in epochs of ``steps_per_epoch`` (one
    checkpoint, one log line and, with validation images, one point of the learning curve per epoch).
    ``optimizer``: ``"adam"`` (from scratch; ``docs/detection.md`` has the curves) or ``"sgd"`` (momentum
    0.9, matterport's, for fine-tuning pretrained weights). ``schedule``: ``"cosine"`` (linear warm-up over
    ``warmup_steps``, then a cosine decay from ``learning_rate`` to 0) or ``"exponential"`` (the thesis's
    ``learning_rate * lr_decay ** epoch``). Gradients are clipped to norm ``clipnorm``. ``augment``:
    the albumentations pipeline of :func:`ra2.detection.train.augmentation_pipeline`.
    """

    steps: int
    batch_size: int
    learning_rate: float
    steps_per_epoch: int = 100
    optimizer: str = "adam"
    schedule: str = "cosine"
    warmup_steps: int = 0
    lr_decay: float = 0.98
    clipnorm: float = 5.0
    layers: str = "all"
    augment: bool = True

    @property
    def epochs(self) -> int:
        return max(1, -(-int(self.steps) // int(self.steps_per_epoch)))


# Square input side of the film detectors (hands, feet) and of the wrist detectors (the carpus crop).
DETECTOR_INPUT_SIDES = {"smoke": {"film": 64, "carpus": 64}, "demo": {"film": 256, "carpus": 128},
                        "cpu": {"film": 256, "carpus": 128}, "full": {"film": 512, "carpus": 256}}

# Anchor sides as fractions of the input side, one per pyramid level (P2..P6; strides 4..64 px). Measured on
# phantom films shrunk to 256 px (60 patients, size scales 0.35-1.0): hand joints 9-24 px (median 14), the
# carpus 43-75 px, toe joints 16-45 px; on 128 px carpus crops the wrist areas are 17-56 px. The film
# detectors' 12 px anchors on P2 cover the smallest finger joints, 48 px on P4 the carpus.
ANCHOR_FRACTIONS = {"film": (3 / 64, 3 / 32, 3 / 16, 3 / 8, 3 / 4), "carpus": (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)}

_CPU_RECIPE = DetectorRecipe(steps=2000, batch_size=2, learning_rate=1e-3, steps_per_epoch=250, warmup_steps=150)
DETECTOR_RECIPES = {
    "smoke": {kind: DetectorRecipe(steps=2, batch_size=2, learning_rate=1e-3, steps_per_epoch=2, augment=False)
              for kind in ("film", "carpus")},
    # From scratch on a 2-core CPU: Adam with warm-up and a cosine decay, group normalisation
    # (docs/detection.md has the learning curves these numbers were chosen on).
    "demo": {"film": _CPU_RECIPE, "carpus": _CPU_RECIPE},
    "cpu": {"film": _CPU_RECIPE, "carpus": _CPU_RECIPE},
    # The same recipe for a GPU: larger inputs and batches, more steps.
    "full": {"film": DetectorRecipe(steps=20000, batch_size=8, learning_rate=1e-3, steps_per_epoch=500,
                                    warmup_steps=500),
             "carpus": DetectorRecipe(steps=20000, batch_size=16, learning_rate=1e-3, steps_per_epoch=500,
                                      warmup_steps=500)},
}

_CPU_NETWORK = {
    # About 2.1 M parameters (8.6 MB of float32 weights) per detector, 0.4 s per training step of two
    # 256 px images on 2 cores (docs/detection.md).
    "BACKBONE": "resnet18_slim", "BACKBONE_WIDTHS": (32, 64, 128, 128), "PRE_NMS_LIMIT": 2000,
    "POST_NMS_ROIS_TRAINING": 300, "POST_NMS_ROIS_INFERENCE": 200, "TRAIN_ROIS_PER_IMAGE": 64,
    "RPN_TRAIN_ANCHORS_PER_IMAGE": 128, "TOP_DOWN_PYRAMID_SIZE": 64, "RPN_CONV_SHARED_SIZE": 128,
    "FPN_CLASSIF_FC_LAYERS_SIZE": 128, "MASK_CONV_SIZE": 64, "MINI_MASK_SHAPE": (28, 28)}
DETECTOR_NETWORKS = {
    "smoke": {"BACKBONE": "resnet18_slim", "BACKBONE_WIDTHS": (16, 16, 32, 32), "PRE_NMS_LIMIT": 300,
              "POST_NMS_ROIS_TRAINING": 64, "POST_NMS_ROIS_INFERENCE": 48, "TRAIN_ROIS_PER_IMAGE": 16,
              "RPN_TRAIN_ANCHORS_PER_IMAGE": 32, "TOP_DOWN_PYRAMID_SIZE": 16, "RPN_CONV_SHARED_SIZE": 16,
              "FPN_CLASSIF_FC_LAYERS_SIZE": 32, "MASK_CONV_SIZE": 16, "MINI_MASK_SHAPE": (14, 14)},
    "demo": _CPU_NETWORK,
    "cpu": _CPU_NETWORK,
    "full": {"BACKBONE": "resnet50", "PRE_NMS_LIMIT": 6000, "POST_NMS_ROIS_TRAINING": 1000,
             "POST_NMS_ROIS_INFERENCE": 500, "TRAIN_ROIS_PER_IMAGE": 100, "RPN_TRAIN_ANCHORS_PER_IMAGE": 256,
             "MINI_MASK_SHAPE": (56, 56)},
}


@dataclass(frozen=True)
class DetectorSettings:
    """One kind of detector in a profile: ``kind`` ``"film"`` (hands, feet) or ``"carpus"`` (the wrist detectors on
    the carpus crop). ``side``: square input side, px; ``recipe``: training; ``network``: Mask R-CNN attributes."""

    side: int
    recipe: DetectorRecipe
    network: dict


def detector_settings(profile: str, kind: str) -> tuple[int, DetectorRecipe, dict]:
    """``(input side, recipe, Mask R-CNN attributes)`` of a ``kind`` (``"film"`` or ``"carpus"``) detector."""
    check_profile(profile)
    return DETECTOR_INPUT_SIDES[profile][kind], DETECTOR_RECIPES[profile][kind], dict(DETECTOR_NETWORKS[profile])


# ------------------------------------------------------------------------------------------ regressors
ARCHITECTURES = ("densenet88", "thesis_v2")


@dataclass
class RegressorConfig:
    """Everything that defines one regressor network; JSON round trip via :meth:`to_json`/:meth:`from_json`."""

    architecture: str = "densenet88"
    dataset: str = "narrowing"  # foot_erosion | hand_erosion | narrowing: sets max_score
    input_size: int = 64  # crop side in pixels
    growth_rate: int = 32
    blocks: tuple[int, ...] = (6, 12, 24)
    stem_filters: int = 64
    stem_kernel: int = 3
    stem_strides: int = 1
    stem_pool: bool = True  # 3x3/2 max-pool after the stem convolution
    bottleneck_factor: int = 4  # 1x1 conv width = factor x growth
    compression: float = 0.5
    activation: str = "relu"  # relu | leaky_relu
    leaky_alpha: float = 0.2
    dropout_max: float = 0.75
    dropout_schedule: str = "v3"  # v3 | none
    l2: float = 1e-4
    bn_momentum: float = 0.99  # BatchNorm moving-average momentum (Keras default); lower for short runs
    # "fused": ra2.scoring.layers.FusedBatchNormalization (TensorFlow's fused kernel, same results, a faster
    # step); "keras": Keras 3's composite BatchNormalization (members trained before 2026-12-04 evening)
    batchnorm: str = "fused"

    def __post_init__(self) -> None:
        self.blocks = tuple(int(b) for b in self.blocks)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.dataset not in contract.DATASET_MAX:
            raise ValueError(f"dataset must be one of {contract.DATASETS}, got {self.dataset!r}")
        if self.activation not in ("relu", "leaky_relu"):
            raise ValueError(f"activation must be relu or leaky_relu, got {self.activation!r}")
        if self.dropout_schedule not in ("v3", "none"):
            raise ValueError(f"dropout_schedule must be v3 or none, got {self.dropout_schedule!r}")
        if self.batchnorm not in ("fused", "keras"):
            raise ValueError(f"batchnorm must be fused or keras, got {self.batchnorm!r}")
        if not 0.0 <= self.dropout_max < 1.0:
            raise ValueError(f"dropout_max must be in [0, 1), got {self.dropout_max}")
        if not self.blocks or min(self.blocks) < 1:
            raise ValueError(f"blocks must be positive layer counts, got {self.blocks}")

    @property
    def max_score(self) -> int:
        return contract.DATASET_MAX[self.dataset]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RegressorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise Ra2Error(f"regressor config has unknown keys {sorted(unknown)}")
        return cls(**d)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "RegressorConfig":
        p = Path(text_or_path) if not str(text_or_path).lstrip().startswith("{") else None
        try:
            text = p.read_text() if p is not None else str(text_or_path)
            return cls.from_dict(json.loads(text))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise Ra2Error(f"cannot read regressor config {p or '<text>'}: {exc}") from exc

    def replace(self, **changes) -> "RegressorConfig":
        return dataclasses.replace(self, **changes)


def densenet88_config(dataset: str = "narrowing", input_size: int = 64,
                      dropout_max: float = 0.75, **overrides) -> RegressorConfig:
    """Variant 1 ("DenseNet88"): 3x3/1 stem + max-pool, blocks (6, 12, 24), growth 32, ReLU."""
    kw = dict(architecture="densenet88", dataset=dataset, input_size=input_size, growth_rate=32,
              blocks=(6, 12, 24), stem_filters=64, stem_kernel=3, stem_strides=1, stem_pool=True,
              activation="relu", dropout_max=dropout_max)
    kw.update(overrides)
    return RegressorConfig(**kw)


def thesis_v2_config(dataset: str = "narrowing", input_size: int = 64,
                     dropout_max: float = 0.25, **overrides) -> RegressorConfig:
    """Variant 2: growth 16, 7x7/1 stem without pooling, LeakyReLU 0.2, blocks (6, 12, 18)."""
    kw = dict(architecture="thesis_v2", dataset=dataset, input_size=input_size, growth_rate=16,
              blocks=(6, 12, 18), stem_filters=32, stem_kernel=7, stem_strides=1, stem_pool=False,
              activation="leaky_relu", leaky_alpha=0.2, dropout_max=dropout_max)
    kw.update(overrides)
    return RegressorConfig(**kw)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation of crops (:class:`ra2.scoring.augment.Augmenter`): rotation, zoom and shift
    ranges (the thesis's 30 deg, 10 %, 10 %)."""

    rotate_deg: float = 30.0
    zoom: float = 0.1
    shift: float = 0.1
    enabled: bool = True


LEGACY_TRAIN_KEYS = ("mixed_precision", "jit_compile")
"""Fields of older members' recipes that are now device settings (:class:`ra2.devices.DeviceSettings`)."""


@dataclass
class TrainConfig:
    """How one ensemble member is trained (the network itself is a :class:`RegressorConfig`). Mixed precision,
    XLA and the devices are not part of the recipe: they are :class:`ra2.devices.DeviceSettings`."""

    batch_size: int = 32
    epochs: int = 100
    patience: int = 10  # early stopping on validation log2 RMSE
    learning_rate: float = 1e-4
    lr_schedule: str = "constant"  # constant | cosine (decay to 0 over epochs x steps_per_epoch)
    loss: str = "mae"  # mae | logcosh | mse | log2_mse
    sampling: str = "balanced"  # balanced | weights | none
    steps_per_epoch: int | None = None  # cap on batches per epoch (None: the whole balanced epoch)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    deterministic: bool = True
    run_eagerly: bool = False  # skip graph tracing: faster for a handful of steps (smoke), slower beyond (XLA on wins)
    oversample: int = 1  # every non-zero score drawn this many times per pass (with sampling "none")
    oversample_unbiased: bool = False  # weight the repeats 1/oversample: same expected loss, less noise
    prior_bias: bool = False  # start the output at the best constant for the loss (not at half the range)
    val_every: int = 1  # validate after every k-th epoch and after the last (patience still counts epochs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = {k: v for k, v in d.items() if k not in LEGACY_TRAIN_KEYS}
        d["augment"] = AugmentConfig(**d.get("augment", {}))
        return cls(**d)


@dataclass
class RegressorProfile:
    """The regressor stage of a profile: the folds, the crop margin, and per data set the network and its
    training recipe."""

    name: str
    n_folds: int
    margin: float
    networks: dict[str, RegressorConfig]  # data set -> network
    training: dict[str, TrainConfig]  # data set -> training recipe
    # test-time augmentation per data set: "off", "on", or "auto" (on where it lowers the out-of-fold
    # log2 RMSE; the ensemble records the choice, ra2.scoring.train.choose_tta)
    tta: str = "off"
    context: bool = True  # fit the patient context model (ra2.scoring.context) after the ensembles

    def sizes(self) -> dict[str, int]:
        return {d: c.input_size for d, c in self.networks.items()}


def _loss(dataset: str) -> str:
    return "logcosh" if dataset == "narrowing" else "mae"


def _smoke() -> RegressorProfile:
    """A tiny network, 24-32 px crops, 2 folds, 2 epochs of 4 batches: seconds (tests)."""
    nets = {d: RegressorConfig(architecture="densenet88", dataset=d, input_size=32 if d != "narrowing" else 24,
                               growth_rate=4, blocks=(1, 1), stem_filters=8, stem_kernel=3, stem_strides=1,
                               stem_pool=True, dropout_max=0.1, bn_momentum=0.9)
            for d in contract.DATASETS}
    train = {d: TrainConfig(batch_size=16, epochs=2, patience=2, learning_rate=3e-3, loss=_loss(d),
                            steps_per_epoch=4, run_eagerly=True)
             for d in contract.DATASETS}
    return RegressorProfile("smoke", n_folds=2, margin=0.2, networks=nets, training=train)


def _cpu() -> RegressorProfile:
    """DenseNet121-style 7x7/2 stem + pool, growth 12, blocks (4, 8, 6), 48 px crops, 5 folds, 40 epochs of 25
    batches of 64 (validated every second epoch), Adam 1.41e-3 with a cosine decay to 0, patience 10, the squared
    log2 error as the loss (the
    challenge metric itself; MAE drives the rare non-zero erosions to 0), BatchNorm momentum 0.9 (the moving
    statistics must settle within a few hundred steps), natural sampling (``docs/regressors.md`` says why not
    the thesis's balanced sampling at this budget); every data set repeats its non-zero crops 4x with
    weight 1/4 and starts its output at the prior; hand erosion trains 120 epochs (patience 30): about 4-18
    minutes per member on an idle 2-core CPU; what ``docs/regressors.md`` measures."""
    nets = {d: RegressorConfig(architecture="densenet88", dataset=d, input_size=48, growth_rate=12,
                               blocks=(4, 8, 6), stem_filters=24, stem_kernel=7, stem_strides=2,
                               stem_pool=True, dropout_max=0.2, bn_momentum=0.9)
            for d in contract.DATASETS}
    # Batches of 64 at 1e-3 x sqrt(2), 25 per epoch (the same crops per epoch as 50 of 32), validated every
    # second epoch, fused batch norm: a member trains 1.3-1.5x faster on a quiet machine (1.8-2.2x was measured on a
    # shared one) at a validation log2 RMSE within the seed-to-seed noise (narrowing fold 0, two seeds each:
    # 0.3185 vs 0.3236, seeds differ by 0.007); batches of 128 were worse (0.3336) (docs/regressors.md,
    # "A faster training step").
    train = {d: TrainConfig(batch_size=64, epochs=40, patience=10,
                            learning_rate=1e-3 * math.sqrt(2), lr_schedule="cosine", loss="log2_mse",
                            steps_per_epoch=25, sampling="none", val_every=2)
             for d in contract.DATASETS}
    # Erosion (7-9% non-zero; a hand-erosion fold has 9,400 crops, each seen about 7 times in 2,000 steps)
    # learns the rare scores far better with them repeated 4x and weighted 1/4 (same expected loss, less
    # gradient noise): fold 0 22.8% better than its baseline vs 9.6% (hands), 39.6% vs 32.5% (feet)
    # (docs/regressors.md, session 4). Narrowing (14% non-zero) too, since 2026-12-06: validation log2 RMSE
    # 0.3282 -> 0.3153 and 0.3362 -> 0.3128 on one fold with two seeds (wrist joints 0.409 -> 0.383, 0.428 ->
    # 0.391), and in the demo of seed 2 wrist narrowing's kappa 0.11 -> 0.50 (docs/regressors.md, "Narrowing
    # oversampled").
    for d in ("foot_erosion", "hand_erosion", "narrowing"):
        train[d] = dataclasses.replace(train[d], oversample=4, oversample_unbiased=True, prior_bias=True)
    # Hand erosion learns slowly (members improve until the last epochs of the cosine decay): fold 0 is
    # 22.8% better than its baseline with 40 epochs, 25.8% with 60, 33.1% with 90, 34.3% with 120 (6,000
    # steps; about 18 minutes per member). Patience 30: member 0 had an 8-epoch plateau after epoch 74.
    train["hand_erosion"] = dataclasses.replace(train["hand_erosion"], epochs=120, patience=30)
    # Test-time augmentation where the out-of-fold predictions say it helps: on the session-4 ensembles it
    # lowered the out-of-fold log2 RMSE of foot erosion 0.294 -> 0.278 and hand erosion 0.287 -> 0.283,
    # and raised narrowing's 0.299 -> 0.302 (docs/regressors.md, session 5).
    return RegressorProfile("cpu", n_folds=5, margin=0.2, networks=nets, training=train, tta="auto")


def _demo() -> RegressorProfile:
    """The ``cpu`` networks and step (batches of 64, 25 per epoch, 1.41e-3 with a cosine decay, validated every
    second epoch) cut to what ``make demo`` can afford (9.5-11 minutes for the three ensembles on an idle
    2-core CPU): 2 folds, 24 epochs for narrowing and foot erosion, 45 for hand erosion. On the demo's phantom
    (detected crops, the whole demo, films at 0.6 of full size, the patient context stage with trees and
    totals (its linear learner clipped to its fitted range), narrowing oversampled like erosion) of seeds 0 / 1 /
    2: SC1 79.8 / 78.2 / 83.3%, SC2 52.1 / 45.0 / 39.9%, SC3 38.8 / 30.5 / 23.3% better than the training-mean
    baseline, every joint group's quadratic kappa 0.43-0.88 (docs/pipeline.md, "The demo")."""
    prof = _cpu()
    # The cpu step trains a member 1.3-1.5x faster than the 32-crop step the demo had (quiet machine;
    # docs/regressors.md), and an epoch is 25 steps of 64 crops instead of 50 of 32. With 8 / 16 / 4 epochs of
    # the old step the demo was 61.0/28.5/21.4% better than the baseline (hand and wrist erosion kappa
    # 0.06 / 0.03: hand erosion never left its prior); with 12 / 24 / 24 of this step 67.9/44.5/33.5% on seed 0
    # (76.1/34.6/25.1, 71.3/28.4/15.6% on seeds 1 and 2); with 24 / 24 / 30 better on every seed and score
    # (+1.4 to +11.9 points) for about 130 s more; hand erosion at 45 instead of 30 epochs lifted its kappa from
    # 0.35 / 0.50 to 0.53 / 0.58 on seeds 1 / 2 (0.66 -> 0.56 on seed 0; SC3 +4.0 / +5.0 / -5.0 points: its
    # single members' seed noise is large, docs/regressors.md) for about 70 s more.
    epochs = {"narrowing": 24, "foot_erosion": 24, "hand_erosion": 45}
    for d, t in prof.training.items():
        prof.training[d] = dataclasses.replace(t, epochs=epochs[d], patience=100, val_every=2)
    return dataclasses.replace(prof, name="demo", n_folds=2)


FULL_NETWORK = dict(input_size=64, growth_rate=24, blocks=(6, 12, 12), stem_filters=48)
"""The ``full`` profile's network where it differs from ``cpu``'s: 64 px crops (hand erosion fold 0: 30.1% vs
25.8% better than its baseline at 48 px, docs/regressors.md session 5), twice the growth rate and deeper dense
blocks; sized by the FLOP estimate in ``docs/benchmarks.md`` ("The full profile on a GPU")."""


def _full() -> RegressorProfile:
    """The ``cpu`` recipe at GPU sizes: the same loss (squared log2 error), cosine schedule, natural sampling with
    every data set's 4x weighted oversampling and prior bias, BatchNorm momentum, dropout, 5 folds and
    test-time augmentation rule, with a wider and deeper network (:data:`FULL_NETWORK`), 64 px crops, batches of
    64 and 1.5x the epochs (hand erosion, which was still improving at the end of the ``cpu`` budget, 160).

    The thesis's recipe it replaces (DenseNet88, constant 1e-4, MAE/log-cosh, balanced sampling) was worse on
    every data set in ``docs/regressors.md``; the sizes are what the estimate lets one P100-class GPU train
    within the fast lane's 4 hours with a margin (``docs/benchmarks.md``)."""
    prof = _cpu()
    for d in contract.DATASETS:
        prof.networks[d] = prof.networks[d].replace(**FULL_NETWORK)
        t = prof.training[d]
        prof.training[d] = dataclasses.replace(t, batch_size=64, steps_per_epoch=50, learning_rate=1e-3,
                                               val_every=1, epochs=160 if d == "hand_erosion" else 60,
                                               patience=40 if d == "hand_erosion" else 15)
    return dataclasses.replace(prof, name="full")


SAMPLINGS = ("balanced", "weights", "none")
_REGRESSOR_PROFILES = {"smoke": _smoke, "demo": _demo, "cpu": _cpu, "full": _full}


def regressor_profile(name: str, sampling: str | None = None, epochs: int | None = None,
                      patience: int | None = None) -> RegressorProfile:
    """A fresh :class:`RegressorProfile` of profile ``name``.

    ``sampling`` (``balanced``, ``weights``, ``none``), ``epochs`` and ``patience`` override every data
    set's setting (experiments).
    """
    prof = _REGRESSOR_PROFILES[check_profile(name)]()
    if sampling is not None:
        if sampling not in SAMPLINGS:
            raise Ra2Error(f"unknown sampling {sampling!r}; expected one of {SAMPLINGS}")
        for t in prof.training.values():
            t.sampling = sampling
    for t in prof.training.values():
        t.epochs = epochs if epochs is not None else t.epochs
        t.patience = patience if patience is not None else t.patience
    return prof


# ------------------------------------------------------------------------------------------ the whole profile
@dataclass(frozen=True)
class Settings:
    """A profile resolved once: its name, each detector kind's settings (``"film"``, ``"carpus"`` ->
    :class:`DetectorSettings`) and the regressor stage (:class:`RegressorProfile`). An entry point resolves the
    profile it was given (:func:`settings`) and passes this object down; a function given a name resolves it
    once at its top."""

    name: str
    detectors: dict[str, DetectorSettings]
    regressors: RegressorProfile


def settings(profile: str | Settings) -> Settings:
    """The :class:`Settings` of a profile name (checked: :func:`check_profile`); a :class:`Settings` as it is."""
    if isinstance(profile, Settings):
        return profile
    name = check_profile(profile)
    return Settings(name, {kind: DetectorSettings(*detector_settings(name, kind)) for kind in ANCHOR_FRACTIONS},
                    regressor_profile(name))
