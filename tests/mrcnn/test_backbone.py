"""Backbones: matterport's ResNet layer names and shapes, parameter counts, pyramid strides."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ra2.mrcnn.backbone import (  # noqa: E402
    BACKBONE_PARAMS,
    BatchNorm,
    fpn_graph,
    resnet18_slim_graph,
    resnet_graph,
)


def expected_resnet_layers(identity_blocks_stage4):
    """matterport's names, written out from the architecture (not from our code)."""
    names = {"conv1", "bn_conv1"}
    blocks = {2: "abc", 3: "abcd", 4: "a" + "".join(chr(98 + i) for i in range(identity_blocks_stage4)), 5: "abc"}
    for stage, letters in blocks.items():
        for b in letters:
            for branch in ("2a", "2b", "2c"):
                names.add(f"res{stage}{b}_branch{branch}")
                names.add(f"bn{stage}{b}_branch{branch}")
            if b == "a":
                names.add(f"res{stage}a_branch1")
                names.add(f"bn{stage}a_branch1")
    return names


def weight_layers(model):
    return {layer.name: layer for layer in model.layers if layer.weights}


@pytest.mark.thorough
def test_resnet50_layer_names_shapes_and_parameters():
    inp = keras.Input((None, None, 3))
    outs = resnet_graph(inp, "resnet50", stage5=True, train_bn=False)
    model = keras.Model(inp, outs[1:])
    layers = weight_layers(model)
    assert set(layers) == expected_resnet_layers(5)
    assert len(layers) == 2 + 2 * (3 * 16 + 4)  # 16 blocks of 3 convs, 4 shortcuts, each with a BN
    assert tuple(layers["conv1"].weights[0].shape) == (7, 7, 3, 64)
    assert tuple(layers["res2a_branch2a"].weights[0].shape) == (1, 1, 64, 64)
    assert tuple(layers["res3a_branch1"].weights[0].shape) == (1, 1, 256, 512)
    assert tuple(layers["res4f_branch2b"].weights[0].shape) == (3, 3, 256, 256)
    assert tuple(layers["res5c_branch2c"].weights[0].shape) == (1, 1, 512, 2048)
    assert [w.shape for w in layers["bn5c_branch2c"].weights] == [(2048,)] * 4
    assert isinstance(layers["bn_conv1"], BatchNorm) and not layers["bn_conv1"].train_bn
    assert model.count_params() == BACKBONE_PARAMS["resnet50"]


@pytest.mark.thorough
def test_resnet101_has_22_identity_blocks_in_stage4():
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, resnet_graph(inp, "resnet101")[1:])
    assert set(weight_layers(model)) == expected_resnet_layers(22)
    assert model.count_params() == BACKBONE_PARAMS["resnet101"]


def test_slim_backbone_is_light_strided_and_named_by_stage():
    inp = keras.Input((64, 64, 1))
    outs = resnet18_slim_graph(inp)
    model = keras.Model(inp, outs[1:])
    assert [tuple(o.shape[1:]) for o in outs[1:]] == [(16, 16, 32), (8, 8, 64), (4, 4, 128), (2, 2, 256)]
    names = set(weight_layers(model))
    assert not names & expected_resnet_layers(22)  # never collides with matterport weights
    assert {"res3a_slim_branch2a", "bn5b_slim_branch2b", "conv1_slim"} <= names
    params3 = keras.Model(i := keras.Input((None, None, 3)), resnet18_slim_graph(i)[1:]).count_params()
    assert params3 == BACKBONE_PARAMS["resnet18_slim"]
    assert params3 < BACKBONE_PARAMS["resnet50"] / 8


def test_fpn_levels_have_strides_4_to_64():
    inp = keras.Input((128, 128, 1))
    _, c2, c3, c4, c5 = resnet18_slim_graph(inp)
    ps = fpn_graph(c2, c3, c4, c5, 16)
    assert [tuple(p.shape[1:]) for p in ps] == [(32, 32, 16), (16, 16, 16), (8, 8, 16), (4, 4, 16), (2, 2, 16)]


def test_frozen_batchnorm_ignores_training_flag():
    layer = BatchNorm(train_bn=False)
    x = np.random.default_rng(0).normal(3.0, 2.0, (8, 4, 4, 2)).astype("float32")
    y = np.asarray(layer(x, training=True))
    # moving statistics at their initial values (mean 0, variance 1): y = x / sqrt(1 + eps)
    np.testing.assert_allclose(y, x / np.sqrt(1 + layer.epsilon), rtol=1e-5)
    live = BatchNorm(train_bn=True)
    z = np.asarray(live(x, training=True))
    assert abs(z.mean()) < 1e-3


def test_group_norm_normalises_each_image_alike_in_training_and_inference():
    from ra2.mrcnn.backbone import GroupNorm, norm_layer

    layer = norm_layer("group", name="gn")
    assert isinstance(layer, GroupNorm) and layer.name == "gn"
    x = np.random.default_rng(0).normal(3.0, 2.0, (2, 4, 4, 12)).astype("float32")
    x[1] *= 10.0  # another image's scale does not change the first image's output
    y_train, y_infer = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=False))
    np.testing.assert_allclose(y_train, y_infer, rtol=1e-6)
    assert layer.groups == 4  # gcd(8, 12): one setting serves any channel count
    groups = y_train.reshape(2, 4, 4, 4, 3)  # [B, H, W, group, channels in group]
    np.testing.assert_allclose(groups.mean(axis=(1, 2, 4)), 0.0, atol=1e-4)
    np.testing.assert_allclose(groups.std(axis=(1, 2, 4)), 1.0, atol=1e-2)
    with pytest.raises(ValueError, match="NORM"):
        norm_layer("instance")


def test_config_norm_and_widths_reach_the_slim_backbone():
    from ra2.mrcnn.backbone import GroupNorm, backbone_graph
    from ra2.mrcnn.config import Config

    class C(Config):
        BACKBONE = "resnet18_slim"
        NORM = "group"
        BACKBONE_WIDTHS = (8, 16, 24, 24)
        IMAGE_CHANNEL_COUNT = 1
        MEAN_PIXEL = [0.0]

    inp = keras.Input((64, 64, 1))
    outs = backbone_graph(inp, C())
    assert [o.shape[-1] for o in outs[1:]] == [8, 16, 24, 24]
    model = keras.Model(inp, outs[1:])
    norms = [layer for layer in model.layers if layer.name.startswith("bn")]
    assert norms and all(isinstance(layer, GroupNorm) for layer in norms)
