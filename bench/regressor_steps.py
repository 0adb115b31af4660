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

``--ratio`` times instead the ``cpu`` hand-erosion step as it was before issue 21 (growth 12, Keras 3's batch
norm, batches of 32), as committed since 2026-12-04 (fused batch norm, batches of 64) and at growth 8 (tried on
2026-12-07, not kept: its members were worse at the challenge's size), in one process, in alternation over
``--rounds`` rounds, the best round of each kept: the milliseconds per training crop and each step's speed-up over
the first (``docs/regressors.md``, "A faster training step").
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


def step_recipes() -> dict:
    """name -> (RegressorConfig, TrainConfig): the ``cpu`` hand-erosion step of issue 21's history, oldest first,
    and the narrower network tried last."""
    from ra2.profiles import regressor_profile

    cpu = regressor_profile("cpu")
    net, train = cpu.networks["hand_erosion"], cpu.training["hand_erosion"]
    g12 = net.replace(growth_rate=12, stem_filters=24)
    return {"growth 12, Keras batch norm, 32 crops (before issue 21)": (g12.replace(batchnorm="keras"),
                                                                          dataclasses.replace(train, batch_size=32)),
            "growth 12, fused batch norm, 64 crops (2026-12-04)": (g12, dataclasses.replace(train, batch_size=64)),
            "growth 8, fused batch norm, 64 crops (tried 2026-12-07)": (net.replace(growth_rate=8, stem_filters=16),
                                                                   dataclasses.replace(train, batch_size=64))}


def step_ratios(devices, steps: int, rounds: int, rng) -> dict:
    """The recipes of :func:`step_recipes` timed in alternation (``rounds`` rounds of ``steps`` steps each, after
    a warm-up fit that traces): per recipe the best round's ms per step and per crop, and the speed-up per crop
    over the first recipe."""
    runs = {}
    for name, (net, train) in step_recipes().items():
        model, x, y = traced_model(net, train, devices, steps, rng)
        runs[name] = (model, x, y, train.batch_size, [])
    for _ in range(rounds):
        for model, x, y, b, times in runs.values():
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=b, epochs=1, verbose=0)
            times.append((time.perf_counter() - t0) / steps)
    first = None
    out = {}
    for name, (model, _x, _y, b, times) in runs.items():
        per_crop = 1000 * min(times) / b
        first = first or per_crop
        out[name] = {"batch": b, "params": int(model.count_params()), "step_ms": round(1000 * min(times), 1),
                     "ms_per_crop": round(per_crop, 3), "speedup_per_crop": round(first / per_crop, 2)}
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


def traced_model(net, train, devices, steps: int, rng):
    """The member network compiled by :func:`ra2.scoring.train.make_model`, ``steps`` batches of random crops and
    scores for it (``x`` ``[steps * batch, size, size, 1]``, ``y`` ``[steps * batch, 1]``), and one warm-up fit on
    two of them that traces (and compiles) the step: ``(model, x, y)``."""
    from ra2.scoring.train import make_model

    model = make_model(net, train, devices)
    s, b = net.input_size, train.batch_size
    x = rng.normal(size=(b * steps, s, s, 1)).astype("float32")
    y = rng.integers(0, net.max_score + 1, size=(b * steps, 1)).astype("float32")
    model.fit(x[:2 * b], y[:2 * b], batch_size=b, epochs=1, verbose=0)  # trace / compile
    return model, x, y


def time_network(net, train, devices, steps: int, rng) -> dict:
    from bench_regressors import conv_flops

    from ra2.scoring.models import build_regressor
    from ra2.scoring.predict import predict_images

    model, x, y = traced_model(net, train, devices, steps, rng)
    s, b = net.input_size, train.batch_size
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
    parser.add_argument("--ratio", action="store_true", help="time issue 21's cpu steps against each other instead")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --ratio (the best is kept)")
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
    if args.ratio:
        rows = step_ratios(devices, args.steps, args.rounds, rng)
        for name, row in rows.items():
            print(f"{name:56s} {json.dumps(row)}", flush=True)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({**head, "ratio": rows}, fh, indent=2)
        return
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
