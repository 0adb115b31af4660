"""DenseNet regressors for joint-damage scores (Keras 3 functional models).

Two architectures from the bachelor thesis (CTU FIT 2020), both built by :func:`build_regressor` from a
:class:`RegressorConfig`:

- ``densenet88`` (variant 1): DenseNet121 with the 7x7/2 stem convolution replaced by a 3x3/1 one (the
  3x3/2 max-pool kept), the last dense block removed: blocks (6, 12, 24), growth 32, bottleneck 4 x growth,
  compression 0.5. About 4.0M parameters.
- ``thesis_v2`` (variant 2): growth 16, 7x7 stride-1 stem without pooling (full resolution through the
  first dense block), LeakyReLU(0.2), blocks (6, 12, 18), maximum dropout 0.25. About 0.8M parameters.

Both take a grayscale crop ``[B, size, size, 1]`` (sample-wise standardised), use L2 1e-4 on every kernel,
and end in one sigmoid unit scaled to the data set's range (0-10 foot erosion, 0-5 hand erosion,
0-4 narrowing): output ``[B, 1]`` float32 in ``[0, max_score]``.

Specialized dropout (Wan et al. 2018, "Reconciling Feature-Reuse and Overfitting in DenseNet with
Specialized Dropout"), schedule "v3" as implemented here:
- *location*: pre-dropout - the dropout acts on the input of each composite function (BN-act-conv), never
  on the concatenated features that later layers reuse;
- *granularity*: channel-wise (``SpatialDropout2D``): whole feature maps are dropped, since neighbouring
  pixels of one map are strongly correlated;
- *probability*: grows linearly with depth inside every dense block, layer ``i`` of ``n`` (1-based)
  dropping ``dropout_max * i / n``; transition layers use ``dropout_max / 2``.
The paper's exact v3 schedule is not restated in the thesis; this reading keeps its three ingredients
and the configurable maximum rate.

Layer names are deterministic (``conv1``, ``block2_layer5_conv3x3``, ``transition1_conv``, ``score``) so
weights load by name across Keras versions.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ra2 import Ra2Error, contract

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


def _act(keras, config: RegressorConfig, name: str):
    if config.activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=config.leaky_alpha, name=name)
    return keras.layers.ReLU(name=name)


def _drop(keras, x, rate: float, name: str):
    if rate <= 0.0:
        return x
    return keras.layers.SpatialDropout2D(rate, name=name)(x)


def build_regressor(config: RegressorConfig):
    """Build the Keras model of ``config``.

    Returns:
        ``keras.Model`` mapping ``[B, input_size, input_size, 1]`` float32 crops to ``[B, 1]`` float32
        scores in ``[0, config.max_score]`` (sigmoid x max score). Not compiled.
    """
    import keras

    reg = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    bn = dict(epsilon=1.001e-5, momentum=config.bn_momentum)

    def conv(filters, kernel, name, strides=1):
        return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                                   kernel_regularizer=reg, name=name)

    inputs = keras.Input((config.input_size, config.input_size, 1), name="crop")
    x = conv(config.stem_filters, config.stem_kernel, "conv1", strides=config.stem_strides)(inputs)
    x = keras.layers.BatchNormalization(name="conv1_bn", **bn)(x)
    x = _act(keras, config, "conv1_act")(x)
    if config.stem_pool:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)

    use_dropout = config.dropout_schedule == "v3" and config.dropout_max > 0
    channels = config.stem_filters
    for b, n_layers in enumerate(config.blocks, start=1):
        for i in range(1, n_layers + 1):
            p = f"block{b}_layer{i}"
            y = _drop(keras, x, config.dropout_max * i / n_layers if use_dropout else 0.0, f"{p}_drop")
            y = keras.layers.BatchNormalization(name=f"{p}_bn1", **bn)(y)
            y = _act(keras, config, f"{p}_act1")(y)
            y = conv(config.bottleneck_factor * config.growth_rate, 1, f"{p}_conv1x1")(y)
            y = keras.layers.BatchNormalization(name=f"{p}_bn2", **bn)(y)
            y = _act(keras, config, f"{p}_act2")(y)
            y = conv(config.growth_rate, 3, f"{p}_conv3x3")(y)
            x = keras.layers.Concatenate(name=f"{p}_concat")([x, y])
            channels += config.growth_rate
        if b < len(config.blocks):
            p = f"transition{b}"
            channels = max(1, int(channels * config.compression))
            y = _drop(keras, x, config.dropout_max / 2 if use_dropout else 0.0, f"{p}_drop")
            y = keras.layers.BatchNormalization(name=f"{p}_bn", **bn)(y)
            y = _act(keras, config, f"{p}_act")(y)
            y = conv(channels, 1, f"{p}_conv")(y)
            x = keras.layers.AveragePooling2D(2, strides=2, name=f"{p}_pool")(y)

    x = keras.layers.BatchNormalization(name="final_bn", **bn)(x)
    x = _act(keras, config, "final_act")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=reg, dtype="float32",
                           name="score_sigmoid")(x)
    outputs = keras.layers.Rescaling(float(config.max_score), dtype="float32", name="score")(x)
    return keras.Model(inputs, outputs, name=f"{config.architecture}_{config.dataset}")


def count_parameters(config: RegressorConfig) -> int:
    """Total parameters (trainable + BatchNorm moving statistics) of the model ``config`` builds."""
    return int(build_regressor(config).count_params())
