"""Forward-pass cost of the regressor variants on this machine (not a test).

For each network and crop size (64, 128 px) and batch (32, 128): FLOPs per crop (convolutions and the
dense head, multiply-add = 2 FLOPs; BatchNorm/activations/pooling ignored) and the wall time of one
inference batch (best of ``--repeats`` after one warm-up call), in ms per crop.

    PYTHONPATH=. python bench/bench_regressors.py [--sizes 64 128] [--batches 32 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def conv_flops(model) -> int:
    """Multiply-add FLOPs (x2) of one input through the Conv2D and Dense layers of ``model``."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += 2 * h * w * cout * kh * kw * cin
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def networks(size: int) -> dict:
    from ra2.profiles import densenet88_config, regressor_profile, thesis_v2_config

    cpu = regressor_profile("cpu").networks["narrowing"].replace(input_size=size)
    return {
        "densenet88 (variant 1)": densenet88_config("narrowing", input_size=size),
        "thesis_v2 (variant 2, 7x7/1 stem, no pool)": thesis_v2_config("narrowing", input_size=size),
        "thesis_v2 + DenseNet121 stem (7x7/2 + pool)": thesis_v2_config(
            "narrowing", input_size=size, stem_strides=2, stem_pool=True),
        "cpu profile (default for CPU runs)": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="write the rows to this JSON file")
    parser.add_argument("--flops-only", action="store_true", help="count FLOPs and parameters, time nothing")
    parser.add_argument("--only", help="time only networks whose name contains this text")
    args = parser.parse_args()

    import tensorflow as tf

    from ra2.scoring.models import build_regressor

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"TensorFlow {tf.__version__}, GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    rows = []
    for size in args.sizes:
        for name, cfg in networks(size).items():
            if args.only and args.only not in name:
                continue
            model = build_regressor(cfg)
            infer = tf.function(lambda x, m=model: m(x, training=False), reduce_retracing=True)
            flops = conv_flops(model)
            if args.flops_only:
                rows.append({"network": name, "size": size, "params": int(model.count_params()),
                             "gflops_per_crop": flops / 1e9})
                print(f"{name:46s} {size:4d}px: {rows[-1]['params']:>9,d} params "
                      f"{flops / 1e9:7.3f} GFLOP/crop", flush=True)
                continue
            for batch in args.batches:
                x = np.random.default_rng(0).normal(size=(batch, size, size, 1)).astype(np.float32)
                infer(x).numpy()  # warm-up (tracing)
                best = min(_timed(infer, x) for _ in range(args.repeats))
                row = {"network": name, "size": size, "batch": batch, "params": int(model.count_params()),
                       "gflops_per_crop": flops / 1e9, "ms_per_crop": 1e3 * best / batch,
                       "s_per_512": 512 * best / batch}
                rows.append(row)
                print(f"{name:46s} {size:4d}px batch {batch:4d}: {row['params']:>9,d} params "
                      f"{row['gflops_per_crop']:7.3f} GFLOP/crop {row['ms_per_crop']:8.2f} ms/crop "
                      f"{row['s_per_512']:7.2f} s/512", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


def _timed(fn, x) -> float:
    t = time.perf_counter()
    fn(x).numpy()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
