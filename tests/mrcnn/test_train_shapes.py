"""Slow: Mask R-CNN trained from scratch on synthetic grayscale shapes on a CPU.

Run with ``PYTHONPATH=. python -m pytest -q -m slow tests/mrcnn/test_train_shapes.py -s``.
The light backbone at 64 x 64 px trains 1200 steps of 4 images (Adam, learning rate 1e-3 then
1e-4 for the last quarter) and must detect held-out shapes with mAP@0.5 >= 0.9.
"""

import time

import pytest

keras = pytest.importorskip("keras")

from ra2.mrcnn.model import MaskRCNN  # noqa: E402
from ra2.mrcnn.shapes import GrayShapesConfig, ShapesDataset  # noqa: E402


class FastShapesConfig(GrayShapesConfig):
    """Grayscale shapes, light backbone and heads sized for a CPU."""

    NAME = "shapes_cpu"
    BACKBONE = "resnet18_slim"
    TRAIN_BN = True  # from scratch: batch statistics are needed (no pretrained BN)
    IMAGES_PER_GPU = 4
    RPN_CONV_SHARED_SIZE = 64
    MASK_CONV_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 128
    TRAIN_ROIS_PER_IMAGE = 16
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 5
    DETECTION_MIN_CONFIDENCE = 0.7


class FastShapesInference(FastShapesConfig):
    IMAGES_PER_GPU = 1


EPOCHS = 12


def schedule(epoch):
    return 1e-3 if epoch < 9 else 1e-4


@pytest.mark.slow
def test_train_shapes_from_scratch_reaches_map_0_9(tmp_path):
    train = ShapesDataset(channels=1)
    train.load_shapes(2000, 64, 64, 1)
    val = ShapesDataset(channels=1)
    val.load_shapes(50, 64, 64, 2)
    held_out = ShapesDataset(channels=1)
    held_out.load_shapes(100, 64, 64, 999)

    t0 = time.time()
    model = MaskRCNN("training", FastShapesConfig(), tmp_path)
    history = model.train(train, val, learning_rate=1e-3, epochs=EPOCHS, layers="all", lr_schedule=schedule,
                          optimizer=lambda lr: keras.optimizers.Adam(lr, clipnorm=5.0), seed=0)
    train_s = time.time() - t0
    first, last = history[0], history[-1]
    assert len(history) == EPOCHS and [h["lr"] for h in history][-1] == pytest.approx(1e-4)
    assert last["loss"] < 0.5 * first["loss"]
    assert last["val_loss"] < first["val_loss"]

    detector = MaskRCNN("inference", FastShapesInference(), tmp_path)
    detector.load_weights(model.find_last())
    t1 = time.time()
    map50 = detector.evaluate_map(held_out)
    map_coco = detector.evaluate_map(held_out, iou_thresholds="coco")
    print(f"\nshapes from scratch: loss {first['loss']:.3f} -> {last['loss']:.3f}, training {train_s:.0f} s; "
          f"held-out mAP@0.5 {map50:.3f}, mAP@0.5:0.95 {map_coco:.3f} (evaluation {time.time() - t1:.0f} s)")
    assert map50 >= 0.9
