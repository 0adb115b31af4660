"""DenseNet regressors for joint-damage scores (Keras 3 functional models).

Two architectures from the bachelor thesis (CTU FIT 2020), both built by :func:`build_regressor` from a
:class:`ra2.profiles.RegressorConfig` (the settings of every stage live in :mod:`ra2.profiles`):

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

from ra2.profiles import RegressorConfig
from ra2.scoring.layers import FusedBatchNormalization


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
    BatchNorm = FusedBatchNormalization if config.batchnorm == "fused" else keras.layers.BatchNormalization

    def conv(filters, kernel, name, strides=1):
        return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                                   kernel_regularizer=reg, name=name)

    inputs = keras.Input((config.input_size, config.input_size, 1), name="crop")
    x = conv(config.stem_filters, config.stem_kernel, "conv1", strides=config.stem_strides)(inputs)
    x = BatchNorm(name="conv1_bn", **bn)(x)
    x = _act(keras, config, "conv1_act")(x)
    if config.stem_pool:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)

    use_dropout = config.dropout_schedule == "v3" and config.dropout_max > 0
    channels = config.stem_filters
    for b, n_layers in enumerate(config.blocks, start=1):
        for i in range(1, n_layers + 1):
            p = f"block{b}_layer{i}"
            y = _drop(keras, x, config.dropout_max * i / n_layers if use_dropout else 0.0, f"{p}_drop")
            y = BatchNorm(name=f"{p}_bn1", **bn)(y)
            y = _act(keras, config, f"{p}_act1")(y)
            y = conv(config.bottleneck_factor * config.growth_rate, 1, f"{p}_conv1x1")(y)
            y = BatchNorm(name=f"{p}_bn2", **bn)(y)
            y = _act(keras, config, f"{p}_act2")(y)
            y = conv(config.growth_rate, 3, f"{p}_conv3x3")(y)
            x = keras.layers.Concatenate(name=f"{p}_concat")([x, y])
            channels += config.growth_rate
        if b < len(config.blocks):
            p = f"transition{b}"
            channels = max(1, int(channels * config.compression))
            y = _drop(keras, x, config.dropout_max / 2 if use_dropout else 0.0, f"{p}_drop")
            y = BatchNorm(name=f"{p}_bn", **bn)(y)
            y = _act(keras, config, f"{p}_act")(y)
            y = conv(channels, 1, f"{p}_conv")(y)
            x = keras.layers.AveragePooling2D(2, strides=2, name=f"{p}_pool")(y)

    x = BatchNorm(name="final_bn", **bn)(x)
    x = _act(keras, config, "final_act")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=reg, dtype="float32",
                           name="score_sigmoid")(x)
    outputs = keras.layers.Rescaling(float(config.max_score), dtype="float32", name="score")(x)
    return keras.Model(inputs, outputs, name=f"{config.architecture}_{config.dataset}")


def count_parameters(config: RegressorConfig) -> int:
    """Total parameters (trainable + BatchNorm moving statistics) of the model ``config`` builds."""
    return int(build_regressor(config).count_params())
