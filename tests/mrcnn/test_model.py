"""MaskRCNN end to end on a tiny grayscale config: graphs, a train step, detect, weights."""

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ra2 import Ra2Error  # noqa: E402
from ra2.mrcnn.config import Config  # noqa: E402
from ra2.mrcnn.legacy_weights import write_legacy_h5  # noqa: E402
from ra2.mrcnn.model import LAYER_REGEX, MaskRCNN  # noqa: E402
from ra2.mrcnn.shapes import ShapesDataset  # noqa: E402


class TinyConfig(Config):
    NAME = "tiny"
    BACKBONE = "resnet18_slim"
    NUM_CLASSES = 4
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    IMAGE_CHANNEL_COUNT = 1
    MEAN_PIXEL = [120.0]
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    RPN_CONV_SHARED_SIZE = 32
    TOP_DOWN_PYRAMID_SIZE = 16
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    MASK_CONV_SIZE = 16
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    MINI_MASK_SHAPE = (14, 14)
    PRE_NMS_LIMIT = 200
    POST_NMS_ROIS_TRAINING = 50
    POST_NMS_ROIS_INFERENCE = 20
    TRAIN_ROIS_PER_IMAGE = 12
    MAX_GT_INSTANCES = 4
    DETECTION_MAX_INSTANCES = 6
    DETECTION_MIN_CONFIDENCE = 0.0  # an untrained model must still report something
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1


class TinyInference(TinyConfig):
    IMAGES_PER_GPU = 1


def head_weights(model, name):
    return [w.numpy() for w in model.keras_model.get_layer(name).weights]


@pytest.fixture(scope="module")
def datasets():
    shapes = ShapesDataset(channels=1)
    shapes.load_shapes(2, 64, 64, 3)
    empty = ShapesDataset(channels=1)
    empty.load_shapes(2, 64, 64, 4, min_shapes=0, max_shapes=0)
    assert all(empty.load_mask(i)[0].shape[-1] == 0 for i in empty.image_ids)
    return shapes, empty


@pytest.fixture(scope="module")
def trained(tmp_path_factory, datasets):
    """One epoch of one step on shapes, with validation on empty-ground-truth images."""
    shapes, empty = datasets
    keras.utils.set_random_seed(0)  # the detect test below relies on this untrained model's boxes
    model_dir = tmp_path_factory.mktemp("runs")
    model = MaskRCNN("training", TinyConfig(), model_dir)
    before = {n: head_weights(model, n) for n in ("res2a_slim_branch2a", "fpn_c5p5", "mrcnn_class_logits")}
    calls = []

    class Recorder:
        def on_epoch_begin(self, epoch, logs):
            calls.append(("begin", epoch))

        def on_epoch_end(self, epoch, logs):
            calls.append(("end", epoch, logs["lr"]))

    history = model.train(shapes, empty, learning_rate=0.01, epochs=1, layers="heads", verbose=0,
                          lr_schedule=lambda epoch: 0.02 * 0.98 ** epoch, custom_callbacks=[Recorder()])
    model.callback_calls = calls
    return model, history, before, model_dir


@pytest.fixture(scope="module")
def inference(trained):
    model = MaskRCNN("inference", TinyInference(), trained[3])
    model.load_weights(trained[0].find_last())
    return model


def test_training_graph_names_inputs_and_outputs(trained):
    km = trained[0].keras_model
    names = {layer.name for layer in km.layers}
    for name in ("input_image", "input_image_meta", "input_rpn_match", "input_rpn_bbox", "input_gt_class_ids",
                 "input_gt_boxes", "input_gt_masks", "input_anchors", "rpn_model", "ROI", "proposal_targets",
                 "fpn_c5p5", "fpn_p2", "fpn_p6", "mrcnn_class_conv1", "mrcnn_class_bn2", "mrcnn_class_logits",
                 "mrcnn_bbox_fc", "mrcnn_mask_conv4", "mrcnn_mask_deconv", "mrcnn_mask", "rpn_class_loss",
                 "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss"):
        assert name in names, name
    rpn = km.get_layer("rpn_model")
    assert [layer.name for layer in rpn.layers if layer.weights] == ["rpn_conv_shared", "rpn_class_raw",
                                                                      "rpn_bbox_pred"]


def test_one_train_step_heads_only(trained):
    model, history, before, model_dir = trained
    [logs] = history
    for name in ("loss", "rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
                 "mrcnn_mask_loss", "val_loss"):
        assert np.isfinite(logs[name]), name
    assert logs["rpn_class_loss"] > 0
    assert logs["lr"] == pytest.approx(0.02)  # the schedule wins over learning_rate
    assert model.callback_calls == [("begin", 0), ("end", 0, pytest.approx(0.02))]
    # validation images have no instances: no positive ROI, so no box or mask loss
    assert logs["val_mrcnn_bbox_loss"] == 0.0 and logs["val_mrcnn_mask_loss"] == 0.0
    # layers="heads": the backbone is frozen, FPN and heads move
    np.testing.assert_array_equal(head_weights(model, "res2a_slim_branch2a")[0], before["res2a_slim_branch2a"][0])
    assert not np.allclose(head_weights(model, "fpn_c5p5")[0], before["fpn_c5p5"][0])
    assert not np.allclose(head_weights(model, "mrcnn_class_logits")[0], before["mrcnn_class_logits"][0])
    run = os.path.dirname(model.find_last())
    assert os.path.basename(model.find_last()) == "mask_rcnn_tiny_0001.weights.h5"
    assert TinyConfig.from_json(os.path.join(run, "config.json")) == TinyConfig()
    assert open(os.path.join(run, "history.csv")).readline().startswith("epoch,lr,loss,")


def test_set_trainable_regexes(trained):
    model = trained[0]
    heads = model.set_trainable(LAYER_REGEX["heads"])
    assert "fpn_c5p5" in heads and "rpn_conv_shared" in heads and "mrcnn_mask" in heads
    assert not any(n.startswith(("res", "bn", "conv1")) for n in heads)
    four = model.set_trainable(LAYER_REGEX["4+"])
    assert "res4a_slim_branch2a" in four and "bn5b_slim_branch2b" in four
    assert "res3a_slim_branch2a" not in four
    everything = model.set_trainable(LAYER_REGEX["all"])
    with_weights = [layer for layer in model.keras_model.layers if layer.weights]
    assert len(everything) == len(with_weights) - 1 + 3  # rpn_model opened


def _class_logits_bias(model, winner):
    """Make class ``winner`` win every ROI (0: background, nothing detected); returns the old weights."""
    dense = model.keras_model.get_layer("mrcnn_class_logits").layer
    old = dense.get_weights()
    bias = np.full_like(old[1], -20.0)
    bias[winner] = 20.0
    dense.set_weights([np.zeros_like(old[0]), bias])
    return old


def test_detect_on_blank_and_odd_sized_images(inference):
    rng = np.random.default_rng(0)
    images = [np.zeros((64, 64), np.uint8), rng.integers(0, 255, (50, 90, 1), dtype=np.uint8)]
    old = _class_logits_bias(inference, 2)  # every proposal is class 2: detections on both images
    try:
        results = inference.detect(images)
    finally:
        inference.keras_model.get_layer("mrcnn_class_logits").layer.set_weights(old)
    assert len(results) == 2
    for image, r in zip(images, results):
        n = r["rois"].shape[0]
        assert 0 < n <= TinyConfig.DETECTION_MAX_INSTANCES
        assert r["rois"].dtype == np.int32 and r["rois"].shape == (n, 4)
        assert r["class_ids"].shape == (n,) and r["scores"].shape == (n,)
        assert r["masks"].dtype == bool and r["masks"].shape == image.shape[:2] + (n,)
        assert np.all(r["class_ids"] == 2) and np.all(r["scores"] > 0.99)
        assert np.all(np.diff(r["scores"]) <= 1e-6)
        assert np.all(r["rois"][:, :2] >= 0) and np.all(r["rois"][:, 2] <= image.shape[0])
        assert np.all(r["rois"][:, 3] <= image.shape[1])
        assert np.all(r["rois"][:, 2] > r["rois"][:, 0]) and np.all(r["rois"][:, 3] > r["rois"][:, 1])


def test_detect_returns_empty_arrays_when_nothing_is_found(inference):
    images = [np.full((64, 64), 40, np.uint8), np.full((50, 90), 200, np.uint8)]
    old = _class_logits_bias(inference, 0)  # background wins every ROI
    try:
        results = inference.detect(images)
    finally:
        inference.keras_model.get_layer("mrcnn_class_logits").layer.set_weights(old)
    for image, r in zip(images, results):
        assert r["rois"].shape == (0, 4) and r["rois"].dtype == np.int32
        assert r["class_ids"].shape == (0,) and r["scores"].shape == (0,)
        assert r["masks"].shape == image.shape[:2] + (0,) and r["masks"].dtype == bool


def test_unmold_detections_maps_back_to_original_pixels(inference):
    # 32 x 64 original in a 64 x 64 molded image: window rows 16..48, scale 1
    det = np.zeros((3, 6), np.float32)
    det[0] = [16 / 63, 0.0, 31 / 63, 31 / 63, 2, 0.9]  # molded pixels (16, 0, 32, 32)
    mask = np.ones((3, 14, 14, 4), np.float32)
    boxes, class_ids, scores, masks = inference.unmold_detections(det, mask, (32, 64, 1), (64, 64, 1),
                                                                  (16, 0, 48, 64))
    np.testing.assert_array_equal(boxes, [[0, 0, 16, 32]])
    assert class_ids.tolist() == [2] and scores.tolist() == pytest.approx([0.9])
    assert masks.shape == (32, 64, 1) and masks[:16, :32, 0].all() and not masks[16:, :, 0].any()


def test_weights_round_trip_and_training_to_inference(tmp_path, inference, trained):
    np.testing.assert_array_equal(head_weights(inference, "mrcnn_class_logits")[0],
                                  head_weights(trained[0], "mrcnn_class_logits")[0])
    image = np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8)
    first = inference.detect([image])[0]
    path = tmp_path / "model.weights.h5"
    inference.save_weights(path)
    other = MaskRCNN("inference", TinyInference(), tmp_path)
    other.load_weights(path)
    second = other.detect([image])[0]
    for key in ("rois", "class_ids", "scores", "masks"):
        np.testing.assert_array_equal(first[key], second[key])
    with pytest.raises(Ra2Error, match="not found"):
        other.load_weights(tmp_path / "missing.weights.h5")


def matterport_head_layout(cfg, num_classes, rng):
    """Head, FPN and RPN weights of a matterport file, written from the known layer shapes."""
    d, fc, mc = cfg.TOP_DOWN_PYRAMID_SIZE, cfg.FPN_CLASSIF_FC_LAYERS_SIZE, cfg.MASK_CONV_SIZE
    a = len(cfg.RPN_ANCHOR_RATIOS)
    r = lambda *s: (0.05 * rng.normal(size=s)).astype(np.float32)  # noqa: E731
    bn = lambda n: [r(n), r(n), r(n), np.abs(r(n)) + 0.5]  # noqa: E731
    layout = {
        "fpn_c5p5": [r(1, 1, 256, d), r(d)],
        "fpn_c4p4": [r(1, 1, 128, d), r(d)],
        "fpn_p2": [r(3, 3, d, d), r(d)],
        "rpn_model": [("rpn_conv_shared/kernel:0", r(3, 3, d, cfg.RPN_CONV_SHARED_SIZE)),
                      ("rpn_conv_shared/bias:0", r(cfg.RPN_CONV_SHARED_SIZE)),
                      ("rpn_class_raw/kernel:0", r(1, 1, cfg.RPN_CONV_SHARED_SIZE, 2 * a)),
                      ("rpn_class_raw/bias:0", r(2 * a)),
                      ("rpn_bbox_pred/kernel:0", r(1, 1, cfg.RPN_CONV_SHARED_SIZE, 4 * a)),
                      ("rpn_bbox_pred/bias:0", r(4 * a))],
        "mrcnn_class_conv1": [r(cfg.POOL_SIZE, cfg.POOL_SIZE, d, fc), r(fc)],
        "mrcnn_class_bn1": bn(fc),
        "mrcnn_class_logits": [r(fc, num_classes), r(num_classes)],
        "mrcnn_bbox_fc": [r(fc, 4 * num_classes), r(4 * num_classes)],
        "mrcnn_mask_conv1": [r(3, 3, d, mc), r(mc)],
        "mrcnn_mask_bn4": bn(mc),
        "mrcnn_mask_deconv": [r(2, 2, mc, mc), r(mc)],
        "mrcnn_mask": [r(1, 1, mc, num_classes), r(num_classes)],
    }
    return layout


def test_matterport_layout_file_loads_by_name_with_exclude(tmp_path):
    cfg = TinyInference()
    layout = matterport_head_layout(cfg, 81, np.random.default_rng(2))  # a COCO-like file: 81 classes
    path = tmp_path / "mask_rcnn_coco_like.h5"
    write_legacy_h5(layout, path)
    model = MaskRCNN("inference", cfg, tmp_path)
    untouched = head_weights(model, "mrcnn_class_logits")
    with pytest.raises(ValueError, match="mrcnn_class_logits"):
        model.load_weights(path, by_name=True)
    excluded = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask"]
    model.load_weights(path, by_name=True, exclude=excluded)
    for name, arrays in layout.items():
        if name in excluded:
            continue
        if name == "rpn_model":
            got = [w.numpy() for w in model.keras_model.get_layer("rpn_model").weights]
            arrays = [a for _, a in arrays]
        else:
            got = head_weights(model, name)
        assert len(got) == len(arrays), name
        for g, a in zip(got, arrays):
            np.testing.assert_array_equal(g, a, err_msg=name)
    for g, u in zip(head_weights(model, "mrcnn_class_logits"), untouched):
        np.testing.assert_array_equal(g, u)
    assert model.detect([np.zeros((64, 64), np.uint8)])[0]["masks"].shape[:2] == (64, 64)


def test_augmentation_moves_masks_and_respects_no_augmentation_sources(datasets):
    import albumentations as A

    from ra2.mrcnn.model import _generator_class

    shapes, _ = datasets
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    cfg = TinyConfig()
    generator = _generator_class()
    plain = generator(shapes, cfg, shuffle=False, seed=0)[0]
    flipped = generator(shapes, cfg, shuffle=False, augmentation=flip, seed=0)[0]
    skipped = generator(shapes, cfg, shuffle=False, augmentation=flip, seed=0, no_augmentation_sources=["shapes"])[0]
    np.testing.assert_array_equal(flipped[0], plain[0][:, :, ::-1])
    # boxes move with the image: x1' = W - x2, x2' = W - x1
    n = int(np.sum(plain[4][0] > 0))
    np.testing.assert_array_equal(flipped[5][0, :n, 1], 64 - plain[5][0, :n, 3])
    np.testing.assert_array_equal(flipped[5][0, :n, 3], 64 - plain[5][0, :n, 1])
    for a, b in zip(skipped, plain):
        np.testing.assert_array_equal(a, b)


def test_training_mask_head_runs_on_the_positive_rois_only(trained):
    model = trained[0]
    n_pos = int(TinyConfig.TRAIN_ROIS_PER_IMAGE * TinyConfig.ROI_POSITIVE_RATIO)
    assert n_pos < TinyConfig.TRAIN_ROIS_PER_IMAGE
    mask_out = model.keras_model.outputs[6]  # mrcnn_mask
    assert tuple(mask_out.shape[1:]) == (n_pos, 14, 14, TinyConfig.NUM_CLASSES)
    assert model.keras_model.outputs[8].shape[1] == TinyConfig.TRAIN_ROIS_PER_IMAGE  # the classifier sees all


def test_mask_loss_ignores_the_rois_after_the_positives():
    import tensorflow as tf

    from ra2.mrcnn.losses import mrcnn_mask_loss

    rng = np.random.default_rng(0)
    target = (rng.random((2, 6, 4, 4)) > 0.5).astype("float32")
    ids = np.array([[2, 1, 0, 0, 0, 0], [3, 0, 0, 0, 0, 0]], "int32")  # positives first, then negatives
    pred = rng.uniform(0.05, 0.95, (2, 6, 4, 4, 4)).astype("float32")
    full = float(mrcnn_mask_loss(tf.constant(target), tf.constant(ids), tf.constant(pred)))
    head = float(mrcnn_mask_loss(tf.constant(target[:, :2]), tf.constant(ids[:, :2]), tf.constant(pred[:, :2])))
    assert full == pytest.approx(head, rel=1e-6)


def test_warmup_cosine_schedule():
    from ra2.mrcnn.model import warmup_cosine

    lr = warmup_cosine(1e-3, total_steps=110, warmup_steps=10, floor=1e-5)
    assert lr(0) == pytest.approx(1e-4) and lr(9) == pytest.approx(1e-3)
    assert lr(10) == pytest.approx(1e-3)
    assert lr(60) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)  # half way through the decay
    assert lr(110) == pytest.approx(1e-5) and lr(500) == pytest.approx(1e-5)
    values = [lr(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))
