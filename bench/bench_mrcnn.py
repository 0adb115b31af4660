"""Time ra2.mrcnn: ``detect`` (batch 1) and one training step, median over repeats; count FLOPs.

    PYTHONPATH=. python bench/bench_mrcnn.py --repeats 10 --json bench_mrcnn.json

Models (random initial weights; speed does not depend on the values because the heads always run
on the padded ROI counts):
- ``resnet50``: matterport's ResNet50-FPN with its default heads (FPN 256, RPN 512, FC 1024,
  mask 256, 1000 inference proposals, 100 detections), 3-channel input as matterport.
- ``resnet18_slim``: the light CPU model (halved ResNet18, FPN 64, RPN 128, FC 256, mask 64,
  300 inference proposals), grayscale input, as a radiograph detector would use it.

FLOPs are counted by TensorFlow's profiler on the traced inference graph (2 x multiply-adds of
convolutions and matrix products; ROIAlign, NMS and element-wise ops are not counted). The mask
head runs on the real detections only, so its cost is reported apart, per detection (analytic).
Prints a table and the machine (CPU model, cores, TensorFlow version, load average).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def machine() -> dict:
    import tensorflow as tf

    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "loadavg_1min_at_start": os.getloadavg()[0],
    }


def make_config(backbone: str, size: int, training: bool, min_confidence: float = 0.7):
    from ra2.mrcnn.config import Config

    class BenchConfig(Config):
        NAME = f"bench_{backbone}_{size}"
        BACKBONE = backbone
        NUM_CLASSES = 4
        IMAGES_PER_GPU = 1
        IMAGE_MIN_DIM = size
        IMAGE_MAX_DIM = size
        RPN_ANCHOR_SCALES = tuple(int(s * size / 1024) or 1 for s in (32, 64, 128, 256, 512))
        DETECTION_MIN_CONFIDENCE = min_confidence
        STEPS_PER_EPOCH = 1

    if backbone == "resnet18_slim":
        BenchConfig.IMAGE_CHANNEL_COUNT = 1
        BenchConfig.MEAN_PIXEL = [120.0]
        BenchConfig.TOP_DOWN_PYRAMID_SIZE = 64
        BenchConfig.RPN_CONV_SHARED_SIZE = 128
        BenchConfig.FPN_CLASSIF_FC_LAYERS_SIZE = 256
        BenchConfig.MASK_CONV_SIZE = 64
        BenchConfig.POST_NMS_ROIS_INFERENCE = 300
        BenchConfig.POST_NMS_ROIS_TRAINING = 600
        BenchConfig.TRAIN_ROIS_PER_IMAGE = 64
    return BenchConfig()


def bench_detect(backbone, size, repeats, rng, min_confidence=0.7):
    from ra2.mrcnn.model import MaskRCNN

    config = make_config(backbone, size, training=False, min_confidence=min_confidence)
    model = MaskRCNN("inference", config, "/tmp/bench_mrcnn_runs")
    image = rng.integers(0, 255, (size, size, config.IMAGE_CHANNEL_COUNT), dtype=np.uint8)
    t0 = time.perf_counter()
    model.detect([image])
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.detect([image])
        times.append(time.perf_counter() - t0)
    detections = int(model.detect([image])[0]["class_ids"].shape[0])
    return {"first_call_s": first, "median_s": statistics.median(times), "min_s": min(times),
            "params": model.keras_model.count_params(), "gflops": count_gflops(model, size),
            "mask_gflops_per_detection": mask_head_gflops(config), "detections": detections}


def mask_head_gflops(config):
    """Analytic FLOPs (2 x MACs) of the mask head for one ROI: 4 3x3 convolutions at the pool
    size, the 2x2 stride-2 deconvolution and the 1x1 class convolution at twice the pool size."""
    p = config.MASK_POOL_SIZE
    c_in = config.TOP_DOWN_PYRAMID_SIZE
    c = int(getattr(config, "MASK_CONV_SIZE", 256))
    macs = p * p * 9 * c_in * c + 3 * p * p * 9 * c * c + p * p * 4 * c * c + (2 * p) ** 2 * c * config.NUM_CLASSES
    return 2 * macs / 1e9


def count_gflops(model, size):
    """FLOPs of one inference pass on a ``size`` x ``size`` image (TensorFlow profiler)."""
    import tensorflow as tf

    c = model.config
    anchors = model.get_anchors((size, size))
    spec = [tf.TensorSpec((1, size, size, c.IMAGE_CHANNEL_COUNT), tf.float32),
            tf.TensorSpec((1, c.IMAGE_META_SIZE), tf.float32),
            tf.TensorSpec((1,) + anchors.shape, tf.float32)]
    fn = tf.function(lambda a, b, d: model.keras_model([a, b, d], training=False)).get_concrete_function(*spec)
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=fn.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
                                         options=opts)
    return info.total_float_ops / 1e9


def bench_train_step(backbone, size, repeats, rng):
    import keras

    from ra2.mrcnn.data import DataGenerator
    from ra2.mrcnn.model import MaskRCNN
    from ra2.mrcnn.shapes import ShapesDataset

    config = make_config(backbone, size, training=True)
    model = MaskRCNN("training", config, "/tmp/bench_mrcnn_runs")
    data = ShapesDataset(channels=config.IMAGE_CHANNEL_COUNT)
    data.load_shapes(4, size, size, 0)
    gen = DataGenerator(data, config, seed=0)
    model.set_trainable(".*")
    opt = keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9, clipnorm=config.GRADIENT_CLIP_NORM)
    step, _ = model._make_train_step(opt)
    batch = model._full_batch(gen[0])
    t0 = time.perf_counter()
    step(batch)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        total, _ = step(batch)
        float(total)
        times.append(time.perf_counter() - t0)
    return {"first_call_s": first, "median_s": statistics.median(times), "min_s": min(times)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--backbones", nargs="+", default=["resnet50", "resnet18_slim"])
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--min-confidence", type=float, default=0.7,
                        help="DETECTION_MIN_CONFIDENCE; 0 makes the untrained model report "
                             "DETECTION_MAX_INSTANCES detections (the mask head's worst case)")
    parser.add_argument("--no-train", action="store_true", help="skip the training-step timing")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    info = machine()
    print(f"machine: {info}")
    rows = []
    for backbone in args.backbones:
        for size in args.sizes:
            r = bench_detect(backbone, size, args.repeats, rng, args.min_confidence)
            rows.append({"what": "detect", "backbone": backbone, "size": size, **r})
            print(rows[-1], flush=True)
        if args.no_train:
            continue
        r = bench_train_step(backbone, args.train_size, args.repeats, rng)
        rows.append({"what": "train_step", "backbone": backbone, "size": args.train_size, **r})
        print(rows[-1], flush=True)
    info["loadavg_1min_at_end"] = os.getloadavg()[0]

    print()
    print(f"{'what':<11} {'backbone':<14} {'px':>4} {'median s':>9} {'min s':>7} {'first s':>8} {'GFLOPs':>7} "
          f"{'+mask/det':>9} {'dets':>4} {'params M':>8}")
    for r in rows:
        gf = f"{r['gflops']:.1f}" if "gflops" in r else "-"
        mg = f"{r['mask_gflops_per_detection']:.2f}" if "gflops" in r else "-"
        nd = str(r["detections"]) if "detections" in r else "-"
        pm = f"{r['params'] / 1e6:.1f}" if "params" in r else "-"
        print(f"{r['what']:<11} {r['backbone']:<14} {r['size']:>4} {r['median_s']:>9.3f} {r['min_s']:>7.3f} "
              f"{r['first_call_s']:>8.1f} {gf:>7} {mg:>9} {nd:>4} {pm:>8}")
    print(f"\n{info['cpu']}, {info['cores']} cores, TensorFlow {info['tensorflow']}, "
          f"load average {info['loadavg_1min_at_start']:.1f} -> {info['loadavg_1min_at_end']:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
