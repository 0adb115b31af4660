"""Backbones and the feature pyramid for :mod:`ra2.mrcnn` (Keras 3, TensorFlow backend).

Two backbone families, both returning the stage outputs ``[C1, C2, C3, C4, C5]`` at strides
2, 4, 8, 16, 32 of the input image:

- ``"resnet50"`` / ``"resnet101"``: the bottleneck ResNet of matterport's ``resnet_graph`` with the
  same layer names (``conv1``, ``bn_conv1``, ``res2a_branch2a``, ``bn2a_branch2a``, ...,
  ``res5c_branch2c``) and weight shapes, so matterport/COCO weights load by name.
  Parameter counts of the backbone alone (C1..C5, grayscale input adds nothing notable):
  ResNet50 23.6 M, ResNet101 42.6 M (3-channel input).
- ``"resnet18_slim"``: a ResNet18-style network of basic blocks ``[2, 2, 2, 2]`` with halved widths
  (32, 64, 128, 256 channels for C2..C5) for CPU use: about 2.8 M parameters (see
  :data:`BACKBONE_PARAMS`). Its layers are named ``conv1_slim``, ``bn_conv1_slim``,
  ``res{stage}{block}_slim_branch2a`` ... so that the stage regexes of :meth:`MaskRCNN.train`
  (``"3+"``, ``"4+"``, ``"5+"``) select them, while their names never collide with the ResNet50/101
  weights of a matterport file.

The FPN (:func:`fpn_graph`) uses matterport's names ``fpn_c5p5`` ... ``fpn_c2p2``, ``fpn_p2`` ...
``fpn_p5`` and ``fpn_p6``.

TensorFlow and Keras are imported by the callers of this module only (``import ra2`` stays light);
this module imports keras at top level and is itself imported lazily by :mod:`ra2.mrcnn.model`.
"""

from __future__ import annotations

import keras

#: Parameter counts of the backbones alone (C1..C5, 3-channel input), measured with
#: ``keras.Model(...).count_params()``; tested in ``tests/mrcnn/test_backbone.py``.
BACKBONE_PARAMS = {"resnet50": 23_587_712, "resnet101": 42_658_176, "resnet18_slim": 2_803_680}

#: Names accepted for ``Config.BACKBONE`` (besides a callable).
BACKBONES = ("resnet50", "resnet101", "resnet18_slim")

#: Normalisation layers accepted for ``Config.NORM``: ``"batch"`` (matterport's :class:`BatchNorm`, frozen
#: unless ``TRAIN_BN``) or ``"group"`` (:class:`GroupNorm`: per-image statistics, the same in training and
#: inference, so it suits training from scratch with batches of 1-4 images).
NORMS = ("batch", "group")


class BatchNorm(keras.layers.BatchNormalization):
    """Batch normalisation that can be frozen in inference mode.

    matterport's ``TRAIN_BN = False`` keeps the moving mean/variance fixed (small batches give poor
    statistics) while gamma and beta may still learn. ``train_bn=False`` forces ``training=False``
    whatever the caller passes; ``train_bn=True`` follows the caller.
    """

    def __init__(self, train_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.train_bn = bool(train_bn)

    def call(self, inputs, training=None, mask=None):
        if not self.train_bn:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = super().get_config()
        config["train_bn"] = self.train_bn
        return config


class GroupNorm(keras.layers.GroupNormalization):
    """Group normalisation whose group count adapts to the channels: ``gcd(groups, channels)`` groups, so one
    setting serves layers of 16 to 2048 channels."""

    def build(self, input_shape):
        import math

        self.groups = math.gcd(int(self.groups), int(input_shape[self.axis]))
        super().build(input_shape)


def norm_layer(norm: str = "batch", train_bn: bool = True, name: str | None = None, groups: int = 8):
    """The normalisation layer ``norm`` (see :data:`NORMS`) named ``name``; ``train_bn`` applies to
    ``"batch"``, ``groups`` to ``"group"``."""
    if norm == "group":
        return GroupNorm(groups=groups, name=name)
    if norm == "batch":
        return BatchNorm(train_bn, name=name)
    raise ValueError(f"Config.NORM must be one of {NORMS}, got {norm!r}")


def _bottleneck_branch(x, kernel_size, filters, stage, block, train_bn, strides=(1, 1), use_bias=True,
                       norm="batch"):
    """The residual branch of a bottleneck block: 1x1 (strided), kxk, 1x1 convolutions with BatchNorm."""
    nb1, nb2, nb3 = filters
    conv = f"res{stage}{block}_branch"
    bn = f"bn{stage}{block}_branch"
    y = keras.layers.Conv2D(nb1, (1, 1), strides=strides, name=conv + "2a", use_bias=use_bias)(x)
    y = norm_layer(norm, train_bn, name=bn + "2a")(y)
    y = keras.layers.Activation("relu")(y)
    y = keras.layers.Conv2D(nb2, (kernel_size, kernel_size), padding="same", name=conv + "2b",
                            use_bias=use_bias)(y)
    y = norm_layer(norm, train_bn, name=bn + "2b")(y)
    y = keras.layers.Activation("relu")(y)
    y = keras.layers.Conv2D(nb3, (1, 1), name=conv + "2c", use_bias=use_bias)(y)
    return norm_layer(norm, train_bn, name=bn + "2c")(y)


def _identity_block(x, kernel_size, filters, stage, block, train_bn, use_bias=True, norm="batch"):
    """Bottleneck block without a convolution on the shortcut (matterport ``identity_block``)."""
    y = _bottleneck_branch(x, kernel_size, filters, stage, block, train_bn, use_bias=use_bias, norm=norm)
    y = keras.layers.Add()([y, x])
    return keras.layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def _conv_block(x, kernel_size, filters, stage, block, train_bn, strides=(2, 2), use_bias=True, norm="batch"):
    """Bottleneck block with a 1x1 (strided) convolution on the shortcut (matterport ``conv_block``)."""
    y = _bottleneck_branch(x, kernel_size, filters, stage, block, train_bn, strides=strides,
                           use_bias=use_bias, norm=norm)
    shortcut = keras.layers.Conv2D(filters[2], (1, 1), strides=strides, name=f"res{stage}{block}_branch1",
                                   use_bias=use_bias)(x)
    shortcut = norm_layer(norm, train_bn, name=f"bn{stage}{block}_branch1")(shortcut)
    y = keras.layers.Add()([y, shortcut])
    return keras.layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def resnet_graph(input_image, architecture: str, stage5: bool = True, train_bn: bool = True, norm: str = "batch"):
    """matterport's ResNet50/101 on a symbolic ``input_image [B, H, W, C]``.

    Returns ``[C1, C2, C3, C4, C5]`` (C5 is None when ``stage5`` is False) at strides 2..32.
    """
    if architecture not in ("resnet50", "resnet101"):
        raise ValueError(f"resnet_graph: architecture must be 'resnet50' or 'resnet101', got {architecture!r}")
    x = keras.layers.ZeroPadding2D((3, 3))(input_image)
    x = keras.layers.Conv2D(64, (7, 7), strides=(2, 2), name="conv1", use_bias=True)(x)
    x = norm_layer(norm, train_bn, name="bn_conv1")(x)
    x = keras.layers.Activation("relu")(x)
    c1 = x = keras.layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same")(x)
    x = _conv_block(x, 3, [64, 64, 256], 2, "a", train_bn, strides=(1, 1), norm=norm)
    x = _identity_block(x, 3, [64, 64, 256], 2, "b", train_bn, norm=norm)
    c2 = x = _identity_block(x, 3, [64, 64, 256], 2, "c", train_bn, norm=norm)
    x = _conv_block(x, 3, [128, 128, 512], 3, "a", train_bn, norm=norm)
    for block in "bcd":
        x = _identity_block(x, 3, [128, 128, 512], 3, block, train_bn, norm=norm)
    c3 = x
    x = _conv_block(x, 3, [256, 256, 1024], 4, "a", train_bn, norm=norm)
    n_blocks = {"resnet50": 5, "resnet101": 22}[architecture]
    for i in range(n_blocks):
        x = _identity_block(x, 3, [256, 256, 1024], 4, chr(98 + i), train_bn, norm=norm)
    c4 = x
    c5 = None
    if stage5:
        x = _conv_block(x, 3, [512, 512, 2048], 5, "a", train_bn, norm=norm)
        x = _identity_block(x, 3, [512, 512, 2048], 5, "b", train_bn, norm=norm)
        c5 = _identity_block(x, 3, [512, 512, 2048], 5, "c", train_bn, norm=norm)
    return [c1, c2, c3, c4, c5]


def _basic_block(x, filters, stage, block, train_bn, strides=(1, 1), norm="batch"):
    """ResNet18 basic block (two 3x3 convolutions); a 1x1 shortcut when shape changes."""
    conv = f"res{stage}{block}_slim_branch"
    bn = f"bn{stage}{block}_slim_branch"
    y = keras.layers.Conv2D(filters, (3, 3), strides=strides, padding="same", use_bias=False,
                            name=conv + "2a")(x)
    y = norm_layer(norm, train_bn, name=bn + "2a")(y)
    y = keras.layers.Activation("relu")(y)
    y = keras.layers.Conv2D(filters, (3, 3), padding="same", use_bias=False, name=conv + "2b")(y)
    y = norm_layer(norm, train_bn, name=bn + "2b")(y)
    if strides != (1, 1) or x.shape[-1] != filters:
        x = keras.layers.Conv2D(filters, (1, 1), strides=strides, use_bias=False, name=conv + "1")(x)
        x = norm_layer(norm, train_bn, name=bn + "1")(x)
    y = keras.layers.Add()([y, x])
    return keras.layers.Activation("relu", name=f"res{stage}{block}_slim_out")(y)


def resnet18_slim_graph(input_image, train_bn: bool = True, widths=(32, 64, 128, 256), norm: str = "batch"):
    """Light CPU backbone: ResNet18 layout (basic blocks 2-2-2-2) with halved widths.

    Returns ``[C1, C2, C3, C4, C5]`` at strides 2, 4, 8, 16, 32 with ``widths`` channels for C2..C5.
    """
    x = keras.layers.Conv2D(widths[0], (7, 7), strides=(2, 2), padding="same", use_bias=False,
                            name="conv1_slim")(input_image)
    x = norm_layer(norm, train_bn, name="bn_conv1_slim")(x)
    x = keras.layers.Activation("relu")(x)
    c1 = x = keras.layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same")(x)
    outs = [c1]
    for i, width in enumerate(widths):
        stage = i + 2
        strides = (1, 1) if stage == 2 else (2, 2)
        x = _basic_block(x, width, stage, "a", train_bn, strides=strides, norm=norm)
        x = _basic_block(x, width, stage, "b", train_bn, norm=norm)
        outs.append(x)
    return outs


def backbone_graph(input_image, config):
    """Dispatch on ``config.BACKBONE``: a name of :data:`BACKBONES` or a callable
    ``f(input_image, config) -> [C1, C2, C3, C4, C5]``."""
    name = config.BACKBONE
    if callable(name):
        return name(input_image, config)
    norm = getattr(config, "NORM", "batch")
    if name in ("resnet50", "resnet101"):
        return resnet_graph(input_image, name, stage5=True, train_bn=config.TRAIN_BN, norm=norm)
    if name == "resnet18_slim":
        widths = tuple(getattr(config, "BACKBONE_WIDTHS", None) or (32, 64, 128, 256))
        return resnet18_slim_graph(input_image, train_bn=config.TRAIN_BN, widths=widths, norm=norm)
    raise ValueError(f"Config.BACKBONE must be one of {BACKBONES} or a callable, got {name!r}")


def fpn_graph(c2, c3, c4, c5, pyramid_size: int):
    """Feature pyramid (matterport names). Returns ``[P2, P3, P4, P5, P6]``, each with
    ``pyramid_size`` channels at strides 4, 8, 16, 32, 64."""
    p5 = keras.layers.Conv2D(pyramid_size, (1, 1), name="fpn_c5p5")(c5)
    p4 = keras.layers.Add(name="fpn_p4add")([
        keras.layers.UpSampling2D(size=(2, 2), name="fpn_p5upsampled")(p5),
        keras.layers.Conv2D(pyramid_size, (1, 1), name="fpn_c4p4")(c4)])
    p3 = keras.layers.Add(name="fpn_p3add")([
        keras.layers.UpSampling2D(size=(2, 2), name="fpn_p4upsampled")(p4),
        keras.layers.Conv2D(pyramid_size, (1, 1), name="fpn_c3p3")(c3)])
    p2 = keras.layers.Add(name="fpn_p2add")([
        keras.layers.UpSampling2D(size=(2, 2), name="fpn_p3upsampled")(p3),
        keras.layers.Conv2D(pyramid_size, (1, 1), name="fpn_c2p2")(c2)])
    p2 = keras.layers.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p2")(p2)
    p3 = keras.layers.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p3")(p3)
    p4 = keras.layers.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p4")(p4)
    p5 = keras.layers.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p5")(p5)
    p6 = keras.layers.MaxPooling2D(pool_size=(1, 1), strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]
