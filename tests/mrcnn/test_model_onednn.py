"""``MaskRCNN.detect`` with TensorFlow's oneDNN kernels on, zero to many detections, batch of one or two.

oneDNN is TensorFlow's default on CPUs with AVX-512 (the challenge cluster and most x86 servers); its batch
normalisation failed on the mask head's empty batch when an image had no detection
(``Incompatible shapes: [0,14,14,16] vs. [256]`` at ``mrcnn_mask_bn1``), which sent every ``ra2 run`` to
the training-mean fallback. The switch must be set before TensorFlow is imported, so the real code path
runs in a child process with ``TF_ENABLE_ONEDNN_OPTS=1``.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import json
    import sys

    import numpy as np
    from tensorflow.python.util import _pywrap_util_port

    from ra2.mrcnn import Config
    from ra2.mrcnn.model import MaskRCNN

    if not _pywrap_util_port.IsMklEnabled():
        print(json.dumps({"onednn": False}))
        sys.exit(0)

    class Tiny(Config):
        NAME = "tiny"
        BACKBONE = "resnet18_slim"
        NUM_CLASSES = 4
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
        IMAGE_CHANNEL_COUNT = 1
        MEAN_PIXEL = [120.0]
        RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        RPN_CONV_SHARED_SIZE = 32
        TOP_DOWN_PYRAMID_SIZE = 16
        FPN_CLASSIF_FC_LAYERS_SIZE = 32
        MASK_CONV_SIZE = 24  # differs from the pyramid depth, as in the failing demo (16 vs 256)
        PRE_NMS_LIMIT = 200
        POST_NMS_ROIS_INFERENCE = 20
        DETECTION_MAX_INSTANCES = 6
        DETECTION_MIN_CONFIDENCE = 0.0
        DETECTION_NMS_THRESHOLD = 1.0  # keep every proposal that wins a class: "many" means all 6

    def counts(model, winner, images):
        # class logits = bias only: every ROI's best class is `winner` (0: background, no detection)
        dense = model.keras_model.get_layer("mrcnn_class_logits").layer
        kernel, bias = dense.get_weights()
        bias[:] = -20.0
        bias[winner] = 20.0
        dense.set_weights([np.zeros_like(kernel), bias])
        model._infer_fn = None
        return [int(r["rois"].shape[0]) for r in model.detect(images)]

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64), dtype=np.uint8), rng.integers(0, 255, (40, 64, 1), dtype=np.uint8)]
    out = {"onednn": True}
    for batch in (1, 2):
        config = Tiny()
        config.IMAGES_PER_GPU = batch
        model = MaskRCNN("inference", Config.from_dict(config.to_dict()), "/tmp/ra2-onednn-test")
        out[f"zero_batch{batch}"] = counts(model, 0, images)
        out[f"many_batch{batch}"] = counts(model, 2, images)
    print(json.dumps(out))
""")


def test_detect_never_crashes_with_onednn_on_zero_or_many_detections():
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result["onednn"]:
        pytest.skip("this TensorFlow build has no oneDNN kernels")
    for batch in (1, 2):
        assert result[f"zero_batch{batch}"] == [0, 0]
        assert result[f"many_batch{batch}"] == [6, 6]
