"""Training-step and prediction time of regressor networks on whatever this machine has (not a test).

The networks are the profiles' (``cpu``, ``full``) and a few candidate sizes for ``full``; each is built and
compiled by :func:`ra2.scoring.train.make_model` (the library's own compile: loss, Adam, cosine schedule) with
mixed precision and XLA as asked, then timed on random crops at the profile's batch:

- ``step_ms``: one training step (``model.fit`` over ``--steps`` batches from arrays after a warm-up fit that
  traces and compiles), i.e. what :func:`ra2.scoring.train.train_member` runs per batch;
- ``predict_ms_per_1000``: :func:`ra2.scoring.predict.predict_images` on 1000 crops;
- ``augment_ms`` (``--augment``; needs albumentations, so not on the GPU machine's image): augmenting and
  standardising one batch on one CPU thread (:func:`ra2.scoring.train._epoch_arrays`), which the trainer's
  background thread must keep ahead of the steps.

It runs on any Keras 3 backend: with TensorFlow here (the CPU), and with ``KERAS_BACKEND=jax`` on the lent
GPU machine, whose image has JAX but no TensorFlow (``docs/benchmarks.md``, "The full profile on a GPU"):
the networks, the loss and the optimizer are Keras code, the same on both.

    PYTHONPATH=. python bench/regressor_steps.py [--mixed-precision on] [--steps 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time

import numpy as np


def candidates() -> dict:
    """name -> (RegressorConfig, TrainConfig): the profiles' networks and the sizes considered for ``full``."""
    from ra2.profiles import regressor_profile

    cpu, full = regressor_profile("cpu"), regressor_profile("full")
    out = {}
    for prof in (cpu, full):
        for d in ("hand_erosion", "narrowing"):
            out[f"{prof.name} {d}"] = (prof.networks[d], prof.training[d])
    base_net, base_train = cpu.networks["hand_erosion"], cpu.training["hand_erosion"]
    for px, growth, blocks, batch in ((64, 12, (4, 8, 6), 64), (64, 24, (6, 12, 12), 64),
                                      (96, 24, (6, 12, 12), 64), (64, 32, (6, 12, 24), 64)):
        net = base_net.replace(input_size=px, growth_rate=growth, blocks=blocks, stem_filters=2 * growth)
        out[f"candidate {px}px g{growth} {'-'.join(map(str, blocks))} b{batch}"] = (
            net, dataclasses.replace(base_train, batch_size=batch))
    return out


def augment_ms(net, train, rng, batches: int = 10) -> float:
    from ra2.scoring.augment import Augmenter
    from ra2.scoring.train import _epoch_arrays

    s, b = net.input_size, train.batch_size
    images = rng.normal(size=(b * batches, s, s)).astype("float32")
    labels = np.zeros(len(images), np.float32)
    order = np.arange(len(images))
    aug = Augmenter(train.augment)
    _epoch_arrays(images[:b], labels[:b], labels[:b], order[:b], b, aug, 0)
    t0 = time.perf_counter()
    _epoch_arrays(images, labels, labels, order, b, aug, 1)
    return round(1000 * (time.perf_counter() - t0) / batches, 2)


def time_network(net, train, devices, steps: int, rng) -> dict:
    from bench_regressors import conv_flops

    from ra2.scoring.models import build_regressor
    from ra2.scoring.predict import predict_images
    from ra2.scoring.train import make_model

    model = make_model(net, train, devices)
    s, b = net.input_size, train.batch_size
    x = rng.normal(size=(b * steps, s, s, 1)).astype("float32")
    y = rng.integers(0, net.max_score + 1, size=(b * steps, 1)).astype("float32")
    model.fit(x[:2 * b], y[:2 * b], batch_size=b, epochs=1, verbose=0)  # trace / compile
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=b, epochs=1, verbose=0)
    step = (time.perf_counter() - t0) / steps
    crops = rng.normal(size=(1000, s, s)).astype("float32")
    predict_images(model, crops[:256])
    t0 = time.perf_counter()
    predict_images(model, crops)
    predict = time.perf_counter() - t0
    gflop = conv_flops(build_regressor(net)) / 1e9
    return {"input_size": s, "batch": b, "params": int(model.count_params()), "gflop_per_crop": round(gflop, 4),
            "train_gflop_per_step": round(3 * gflop * b, 2), "step_ms": round(1000 * step, 2),
            "sustained_tflops": round(3 * gflop * b / step / 1000, 3),
            "predict_ms_per_1000": round(1000 * predict, 1)}


def reset_check(devices, rng) -> dict:
    """Two members trained in turn on one compiled model (:func:`ra2.scoring.train.reinitialize` between them),
    as an ensemble does: the second member's weights and predictions must be finite (the loss scale of mixed
    precision restored, not zeroed)."""
    from ra2.profiles import regressor_profile
    from ra2.scoring.predict import predict_images
    from ra2.scoring.train import make_model, reinitialize

    prof = regressor_profile("full")
    net, train = prof.networks["narrowing"], prof.training["narrowing"]
    model = make_model(net, train, devices)
    s, b = net.input_size, train.batch_size
    x = rng.normal(size=(4 * b, s, s, 1)).astype("float32")
    y = rng.integers(0, 5, size=(4 * b, 1)).astype("float32")
    out = {}
    for member in range(2):
        if member:
            reinitialize(model, net, devices)
        model.fit(x, y, batch_size=b, epochs=2, verbose=0)
        pred = predict_images(model, x[:b, ..., 0])
        scale = getattr(model.optimizer, "dynamic_scale", None)
        out[f"member_{member}"] = {
            "finite_weights": bool(all(np.isfinite(np.asarray(w, np.float64)).all() for w in model.get_weights())),
            "finite_predictions": bool(np.isfinite(pred).all()),
            "loss_scale": float(scale) if scale is not None else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--xla", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--only", help="only networks whose name contains this text")
    parser.add_argument("--augment", action="store_true", help="also time the CPU augmentation of a batch")
    parser.add_argument("--reset-check", action="store_true", help="also train two members in turn on one model")
    parser.add_argument("--json")
    args = parser.parse_args()

    import keras

    from ra2.devices import Devices

    backend = keras.backend.backend()
    if backend == "tensorflow":
        from ra2.devices import DeviceSettings

        devices = DeviceSettings(args.mixed_precision, args.xla, "1").resolve()
    else:  # JAX: every step is compiled; mixed precision as asked ("auto": on, the GPU machine's road)
        import jax

        devices = Devices(mixed_precision=args.mixed_precision != "off", xla=True,
                          names=tuple(str(d) for d in jax.devices()[:1]),
                          gpus=sum(d.platform == "gpu" for d in jax.devices()))
    head = {"backend": backend, "keras": keras.__version__, "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "devices": devices.to_dict(), "steps": args.steps}
    print(json.dumps(head))
    rng = np.random.default_rng(0)
    rows = {}
    for name, (net, train) in candidates().items():
        if args.only and args.only not in name:
            continue
        rows[name] = time_network(net, train, devices, args.steps, rng)
        if args.augment:
            rows[name]["augment_ms"] = augment_ms(net, train, rng)
        print(f"{name:40s} {json.dumps(rows[name])}", flush=True)
    checked = reset_check(devices, rng) if args.reset_check else None
    if checked:
        print("member reset:", json.dumps(checked), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**head, "networks": rows, "reset_check": checked}, fh, indent=2)


if __name__ == "__main__":
    main()
