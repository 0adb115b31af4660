"""Training-step and validation cost of one regressor member on this machine (not a test).

Times, for the ``cpu`` profile's network at its crop size (48 px, batch 32):

- ``augment``: albumentations affine augmentation + standardisation of one batch
  (:func:`ra2.scoring.train._epoch_arrays`, what the background thread does);
- ``fit_arrays``: one training step from in-memory arrays, what :func:`ra2.scoring.train.train_member`
  runs (the epoch's arrays prepared beforehand);
- ``fit_numpy_function``: one training step fed by a ``tf.data`` map over ``tf.numpy_function`` that
  augments each batch on the fly (the input pipeline used before; kept here as the comparison);
- ``predict``: validation predictions (:func:`ra2.scoring.predict.predict_images`, compiled
  ``predict_on_batch``) against an eager ``model(x)`` loop, per 1000 crops.

Each timing is the best of ``--repeats`` passes over ``--batches`` batches, after one warm-up pass (the
warm-up traces the functions).

    PYTHONPATH=. python bench/bench_training_step.py [--batches 50] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def _best(fn, repeats: int) -> float:
    fn()  # warm-up: traces the compiled functions
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--dataset", default="narrowing")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()

    import tensorflow as tf

    from ra2.profiles import regressor_profile
    from ra2.scoring.augment import Augmenter
    from ra2.scoring.data import standardize
    from ra2.scoring.predict import predict_images
    from ra2.scoring.train import _epoch_arrays, make_model

    prof = regressor_profile(args.profile)
    net, train = prof.networks[args.dataset], prof.training[args.dataset]
    size, bs = net.input_size, train.batch_size
    rng = np.random.default_rng(0)
    n = bs * args.batches
    images = rng.random((max(n, 1000), size, size), dtype=np.float32)
    labels = rng.integers(0, 5, len(images)).astype(np.float32)
    weights = np.ones(len(images), np.float32)
    order = rng.permutation(len(images))[:n]
    augmenter = Augmenter(train.augment)
    model = make_model(net, train)

    res = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average": os.getloadavg()[0],
           "profile": args.profile, "dataset": args.dataset, "input_size": size, "batch_size": bs,
           "parameters": int(model.count_params())}

    res["augment_ms_per_batch"] = 1000 * _best(
        lambda: _epoch_arrays(images, labels, weights, order, bs, augmenter, 0), args.repeats) / args.batches
    x, y, w = _epoch_arrays(images, labels, weights, order, bs, augmenter, 0)
    res["fit_arrays_ms_per_batch"] = 1000 * _best(
        lambda: model.fit(x, y, sample_weight=w, batch_size=bs, epochs=1, verbose=0, shuffle=False),
        args.repeats) / args.batches

    def numpy_function_dataset():
        def load(b):
            sel = order[int(b) * bs:(int(b) + 1) * bs]
            return (standardize(augmenter(images[sel], seed=int(b)))[..., None], labels[sel, None],
                    weights[sel])

        def tf_load(b):
            xb, yb, wb = tf.numpy_function(load, [b], [tf.float32, tf.float32, tf.float32], stateful=False)
            xb.set_shape([None, size, size, 1])
            yb.set_shape([None, 1])
            wb.set_shape([None])
            return xb, yb, wb

        ds = tf.data.Dataset.range(args.batches).map(tf_load, num_parallel_calls=tf.data.AUTOTUNE,
                                                     deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    res["fit_numpy_function_ms_per_batch"] = 1000 * _best(
        lambda: model.fit(numpy_function_dataset(), epochs=1, verbose=0), args.repeats) / args.batches

    val = images[:1000]
    res["predict_s_per_1000"] = _best(lambda: predict_images(model, val), args.repeats)

    def eager():
        for i in range(0, len(val), 128):
            np.asarray(model(standardize(val[i:i + 128])[..., None], training=False))

    res["predict_eager_s_per_1000"] = _best(eager, args.repeats)
    for k, v in res.items():
        print(f"{k}: {round(v, 2) if isinstance(v, float) else v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
