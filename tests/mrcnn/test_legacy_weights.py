"""ra2.mrcnn.legacy_weights: reading matterport / Keras 2 HDF5 weight files into Keras 3 models."""

import h5py
import numpy as np
import pytest

from ra2 import Ra2Error
from ra2.mrcnn import legacy_weights as lw

keras = pytest.importorskip("keras")
L = keras.layers


def build_model():
    """conv1 -> bn_conv1 -> nested 'rpn_model' (conv + BN + conv) -> TimeDistributed conv/BN -> dense."""
    rpn_in = keras.Input((6, 6, 4))
    r = L.Conv2D(3, 1, name="rpn_conv_shared")(rpn_in)
    r = L.BatchNormalization(name="rpn_bn")(r)
    r = L.Conv2D(2, 1, name="rpn_class_raw")(r)
    rpn = keras.Model(rpn_in, r, name="rpn_model")

    image = keras.Input((8, 8, 1), name="input_image")
    x = L.Conv2D(4, 3, name="conv1")(image)
    x = L.BatchNormalization(name="bn_conv1")(x)
    x = rpn(x)
    x = L.Reshape((2, 6, 3, 2))(x)
    x = L.TimeDistributed(L.Conv2D(5, 3, padding="same"), name="mrcnn_mask_conv1")(x)
    x = L.TimeDistributed(L.BatchNormalization(), name="mrcnn_mask_bn1")(x)
    x = L.Flatten()(x)
    out = L.Dense(3, name="mrcnn_class_logits")(x)
    return keras.Model(image, out, name="tiny")


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(size=tuple(v.shape)).astype("float32") + (1.5 if "variance" in v.path else 0))


def weights_of(model):
    """{"layer/index": array} over the top-level layers (TimeDistributed inner names are random)."""
    return {f"{layer.name}/{i}": np.array(v.numpy()) for layer in model.layers for i, v in enumerate(layer.weights)}


def test_round_trip_and_file_layout(tmp_path):
    source = build_model()
    randomize(source, 0)
    path = tmp_path / "legacy.h5"
    lw.write_legacy_h5(source, path)
    # the file has the Keras 2 layout, checked with h5py directly
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        assert names[:3] == ["input_image", "conv1", "bn_conv1"]
        assert [n.decode() for n in f["conv1"].attrs["weight_names"]] == ["conv1/kernel:0", "conv1/bias:0"]
        assert [n.decode() for n in f["bn_conv1"].attrs["weight_names"]] == [
            "bn_conv1/gamma:0", "bn_conv1/beta:0", "bn_conv1/moving_mean:0", "bn_conv1/moving_variance:0"]
        assert [n.decode() for n in f["mrcnn_mask_conv1"].attrs["weight_names"]] == [
            "mrcnn_mask_conv1/kernel:0", "mrcnn_mask_conv1/bias:0"]
        assert "rpn_conv_shared/kernel:0" in [n.decode() for n in f["rpn_model"].attrs["weight_names"]]
        np.testing.assert_array_equal(f["conv1"]["conv1/kernel:0"][...], source.get_layer("conv1").weights[0].numpy())
        assert len(f["input_image"].attrs["weight_names"]) == 0
    assert lw.is_legacy_h5(path)

    target = build_model()
    randomize(target, 1)
    report = lw.load_legacy_h5(target, path)
    assert "conv1" in report["loaded"] and "mrcnn_mask_bn1" in report["loaded"] and "rpn_model" in report["loaded"]
    assert report["not_in_file"] == [] and report["skipped"] == []
    expected = weights_of(source)
    for key, value in weights_of(target).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


def matterport_style_dict(model, seed, overrides=None):
    """A hand-made {layer: [(weight name, array)]} with the expected names and shapes, as
    matterport's files have them: Keras 2 orders a nested model's weights trainable first."""
    rng = np.random.default_rng(seed)
    layers = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name == "rpn_model":
            order = ["rpn_conv_shared/kernel", "rpn_conv_shared/bias", "rpn_bn/gamma", "rpn_bn/beta",
                     "rpn_class_raw/kernel", "rpn_class_raw/bias", "rpn_bn/moving_mean", "rpn_bn/moving_variance"]
            shapes = {"/".join(v.path.split("/")[-2:]): tuple(v.shape) for v in layer.weights}
            layers[layer.name] = [(f"{k}:0", rng.normal(size=shapes[k]).astype("float32")) for k in order]
        else:
            layers[layer.name] = [
                (f"{layer.name}/{v.name}:0", rng.normal(size=tuple(v.shape)).astype("float32")) for v in layer.weights
            ]
    layers["layer_only_in_file"] = [("layer_only_in_file/kernel:0", np.ones((2, 2), "float32"))]
    layers.update(overrides or {})
    return layers


def test_hand_written_file_by_name_with_exclude(tmp_path):
    model = build_model()
    randomize(model, 2)
    before = weights_of(model)
    layers = matterport_style_dict(model, 3)
    path = tmp_path / "mask_rcnn_tiny.h5"
    lw.write_legacy_h5(layers, path)
    report = lw.load_legacy_h5(model, path, by_name=True, exclude=["mrcnn_class_logits", "bn_conv1"])
    assert sorted(report["excluded"]) == ["bn_conv1", "mrcnn_class_logits"]
    assert report["not_in_model"] == ["layer_only_in_file"]
    after = weights_of(model)
    # excluded layers are untouched
    for key in before:
        if key.split("/")[0] in ("mrcnn_class_logits", "bn_conv1"):
            np.testing.assert_array_equal(after[key], before[key])
    np.testing.assert_array_equal(after["conv1/0"], layers["conv1"][0][1])
    # TimeDistributed weights land in the wrapped layer, BN in gamma, beta, mean, variance order
    td_bn = model.get_layer("mrcnn_mask_bn1").weights
    for variable, (_, value) in zip(td_bn, layers["mrcnn_mask_bn1"]):
        np.testing.assert_array_equal(variable.numpy(), value)
    # the nested model's weights were matched by name, not by the file's order
    rpn = dict(layers["rpn_model"])
    rpn_model = model.get_layer("rpn_model")
    np.testing.assert_array_equal(rpn_model.get_layer("rpn_bn").moving_mean.numpy(), rpn["rpn_bn/moving_mean:0"])
    np.testing.assert_array_equal(rpn_model.get_layer("rpn_class_raw").kernel.numpy(), rpn["rpn_class_raw/kernel:0"])


def test_shape_mismatch_names_the_layer(tmp_path):
    model = build_model()
    bad_kernel = np.zeros((3, 3, 3, 4), "float32")  # RGB conv1 into a grayscale model
    layers = matterport_style_dict(model, 4, {"conv1": [("conv1/kernel:0", bad_kernel),
                                                        ("conv1/bias:0", np.zeros(4, "float32"))]})
    path = tmp_path / "rgb.h5"
    lw.write_legacy_h5(layers, path)
    before = weights_of(model)
    with pytest.raises(ValueError, match=r"layer 'conv1', weight 'conv1/kernel:0'.*\(3, 3, 3, 4\).*\(3, 3, 1, 4\)"):
        lw.load_legacy_h5(model, path)
    # nothing was assigned
    for key, value in weights_of(model).items():
        np.testing.assert_array_equal(value, before[key])
    # excluding the layer (what a grayscale user does) loads the rest
    report = lw.load_legacy_h5(model, path, exclude=["conv1"])
    assert "conv1" not in report["loaded"] and "bn_conv1" in report["loaded"]
    with pytest.warns(UserWarning, match="conv1"):
        report = lw.load_legacy_h5(model, path, skip_mismatch=True)
    assert report["skipped"] == ["conv1"]
    # a wrong number of weights is reported too
    short = matterport_style_dict(model, 4, {"bn_conv1": [("bn_conv1/gamma:0", np.ones(4, "float32"))]})
    lw.write_legacy_h5(short, tmp_path / "short.h5")
    with pytest.raises(ValueError, match="layer 'bn_conv1' has 4 weights in the model but 1 in the file"):
        lw.load_legacy_h5(model, tmp_path / "short.h5")


def test_model_weights_group_and_topological_order(tmp_path):
    source = build_model()
    randomize(source, 5)
    flat = tmp_path / "flat.h5"
    lw.write_legacy_h5(source, flat)
    nested = tmp_path / "full_save.h5"
    with h5py.File(flat, "r") as src, h5py.File(nested, "w") as dst:
        src.copy(src["/"], dst, name="model_weights")
        for key, value in src.attrs.items():
            dst["model_weights"].attrs[key] = value
        dst.attrs["model_config"] = b"{}"
    assert lw.is_legacy_h5(nested)
    target = build_model()
    lw.load_legacy_h5(target, nested)
    np.testing.assert_array_equal(target.get_layer("conv1").kernel.numpy(), source.get_layer("conv1").kernel.numpy())

    # by_name=False: order of layers with weights, names ignored
    renamed = {f"layer_{i}": entries for i, (name, entries) in enumerate(lw.read_legacy_h5(flat).items())}
    lw.write_legacy_h5(renamed, tmp_path / "renamed.h5")
    target = build_model()
    report = lw.load_legacy_h5(target, tmp_path / "renamed.h5", by_name=False)
    assert len(report["loaded"]) == 6
    for key, value in weights_of(target).items():
        np.testing.assert_array_equal(value, weights_of(source)[key], err_msg=key)
    target_by_name = build_model()
    report = lw.load_legacy_h5(target_by_name, tmp_path / "renamed.h5")
    assert report["loaded"] == [] and len(report["not_in_model"]) == 6  # names do not match


def test_not_a_legacy_file(tmp_path):
    model = build_model()
    keras3 = tmp_path / "model.weights.h5"
    model.save_weights(keras3)
    assert not lw.is_legacy_h5(keras3)
    with pytest.raises(Ra2Error, match="model.weights.h5"):
        lw.load_legacy_h5(model, keras3)
    with pytest.raises(Ra2Error, match="missing.h5"):
        lw.read_legacy_h5(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    assert not lw.is_legacy_h5(tmp_path / "text.h5")
    with pytest.raises(Ra2Error, match="text.h5"):
        lw.read_legacy_h5(tmp_path / "text.h5")


# Facts from matterport's mrcnn/model.py (ResNet50-FPN, COCO heads with 81 classes, 3 anchors per
# location): layer names and weight shapes as they appear in mask_rcnn_coco.h5.
MATTERPORT_LAYERS = {
    "conv1": [(7, 7, 3, 64), (64,)],
    "bn_conv1": [(64,)] * 4,
    "res2a_branch2a": [(1, 1, 64, 64), (64,)],
    "res2a_branch1": [(1, 1, 64, 256), (256,)],
    "bn2a_branch1": [(256,)] * 4,
    "res3a_branch2a": [(1, 1, 256, 128), (128,)],
    "res4f_branch2c": [(1, 1, 256, 1024), (1024,)],
    "res5c_branch2c": [(1, 1, 512, 2048), (2048,)],
    "bn5c_branch2c": [(2048,)] * 4,
    "fpn_c5p5": [(1, 1, 2048, 256), (256,)],
    "fpn_c2p2": [(1, 1, 256, 256), (256,)],
    "fpn_p2": [(3, 3, 256, 256), (256,)],
    "mrcnn_class_conv1": [(7, 7, 256, 1024), (1024,)],
    "mrcnn_class_bn1": [(1024,)] * 4,
    "mrcnn_class_conv2": [(1, 1, 1024, 1024), (1024,)],
    "mrcnn_class_logits": [(1024, 81), (81,)],
    "mrcnn_bbox_fc": [(1024, 324), (324,)],
    "mrcnn_mask_conv1": [(3, 3, 256, 256), (256,)],
    "mrcnn_mask_bn4": [(256,)] * 4,
    "mrcnn_mask_deconv": [(2, 2, 256, 256), (256,)],
    "mrcnn_mask": [(1, 1, 256, 81), (81,)],
}
MATTERPORT_RPN = [
    ("rpn_conv_shared/kernel:0", (3, 3, 256, 512)), ("rpn_conv_shared/bias:0", (512,)),
    ("rpn_class_raw/kernel:0", (1, 1, 512, 6)), ("rpn_class_raw/bias:0", (6,)),
    ("rpn_bbox_pred/kernel:0", (1, 1, 512, 12)), ("rpn_bbox_pred/bias:0", (12,)),
]
CLASS_HEADS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]


def matterport_file(path, seed=0):
    rng = np.random.default_rng(seed)
    layers = {name: [rng.normal(size=s).astype("float32") for s in shapes]
              for name, shapes in MATTERPORT_LAYERS.items()}
    layers["rpn_model"] = [(name, rng.normal(size=s).astype("float32")) for name, s in MATTERPORT_RPN]
    layers["input_image"] = []
    lw.write_legacy_h5(layers, path)
    return layers


@pytest.fixture(scope="module")
def coco_shaped_model(tmp_path_factory):
    """Our MaskRCNN (inference graph) built like matterport's COCO model, on 64-pixel inputs."""
    from ra2.mrcnn.config import Config
    from ra2.mrcnn.model import MaskRCNN

    class CocoLike(Config):
        NAME = "coco_like"
        BACKBONE = "resnet50"
        NUM_CLASSES = 81
        IMAGES_PER_GPU = 1
        IMAGE_MIN_DIM = 64
        IMAGE_MAX_DIM = 64
        POST_NMS_ROIS_INFERENCE = 50
        DETECTION_MAX_INSTANCES = 10

    return MaskRCNN("inference", CocoLike(), str(tmp_path_factory.mktemp("coco_like")))


def test_matterport_layout_loads_into_our_maskrcnn(coco_shaped_model, tmp_path):
    model = coco_shaped_model
    path = tmp_path / "mask_rcnn_coco_like.h5"
    layers = matterport_file(path)
    report = lw.load_legacy_h5(model.keras_model, path)
    assert sorted(report["loaded"]) == sorted(list(MATTERPORT_LAYERS) + ["rpn_model"])
    km = model.keras_model
    for name, arrays in layers.items():
        if name in ("rpn_model", "input_image"):
            continue
        for variable, value in zip(km.get_layer(name).weights, arrays):
            np.testing.assert_array_equal(variable.numpy(), value, err_msg=name)
    rpn = km.get_layer("rpn_model")
    np.testing.assert_array_equal(rpn.get_layer("rpn_class_raw").weights[0].numpy(),
                                  dict(layers["rpn_model"])["rpn_class_raw/kernel:0"])


def test_matterport_layout_through_maskrcnn_load_weights(coco_shaped_model, tmp_path):
    """MaskRCNN.load_weights dispatches legacy files here; exclude and mismatch errors work."""
    model = coco_shaped_model
    path = tmp_path / "mask_rcnn_coco_like.h5"
    layers = matterport_file(path, seed=1)
    model.load_weights(str(path), by_name=True, exclude=CLASS_HEADS)
    np.testing.assert_array_equal(model.keras_model.get_layer("fpn_p2").weights[0].numpy(), layers["fpn_p2"][0])
    # a 4-class head cannot take COCO's 81-class logits: the error names the layer and shapes
    layers["mrcnn_class_logits"] = [np.zeros((1024, 4), "float32"), np.zeros(4, "float32")]
    lw.write_legacy_h5(layers, path)
    with pytest.raises(ValueError, match=r"mrcnn_class_logits.*\(1024, 4\).*\(1024, 81\)"):
        model.load_weights(str(path), by_name=True)
