"""What each profile costs at the challenge's size, and whether ``full`` fits the time limit on one GPU.

Counted (FLOPs = 2 x multiply-adds of convolutions and dense layers; a training step = 3 x the forward pass):

- regressors, per profile and data set: GFLOP per crop, per training step (the profile's batch), per member
  (epochs x steps per epoch; early stopping can only shorten it), the validation and out-of-fold passes, and the
  prediction of the test patients (5 members, x5 with test-time views where the profile allows them);
- detectors, per profile: GFLOP of one inference pass of each detector at the profile's input side
  (``bench_mrcnn.count_gflops``, TensorFlow's profiler) and per hand / foot film. The container uses the
  shipped (``cpu``-sized) detectors whatever the profile: the real ``/train`` has no joint annotations.

Estimated wall time of ``ra2 run`` (train then predict) for 367 training and 188 test patients on one GPU:

    detection   = films x (seconds per film measured on this CPU with the shipped detectors; an upper bound:
                  a GPU host has 8 CPUs and runs the convolutions on the GPU)
    regressors  = sum over members of steps x max(GFLOP per step / rate, measured GPU step time,
                  CPU augmentation of a batch on one thread (measured here, ``--cpu-steps`` with ``--augment``))
                  + forward passes (validation, out-of-fold, test) / rate

``rate`` is the sustained TFLOP/s assumed for the challenge's GPU (``--tflops``; default 4: a P100 does 9.3
TFLOP/s float32 and 18.7 float16 at peak, without tensor cores; small DenseNet layers reach a fraction of it).
``--gpu-steps`` takes the JSON of ``bench/regressor_steps.py`` run on a GPU (docs/benchmarks.md: the lent H200):
its measured step times are a floor for a slower GPU. ``--cpu-steps`` (the same script on this CPU) adds the
measured CPU step times beside the counts.

    PYTHONPATH=. python bench/profile_cost.py [--gpu-steps gpu.json] [--cpu-steps cpu.json] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CHALLENGE = {"train_patients": 367, "test_patients": 188}
LIMITS_HOURS = {"fast lane": 4, "leaderboard": 12}
DEFAULT_SECONDS_PER_FILM = {"hand": 0.166 + 0.05, "foot": 0.081 + 0.05}
"""Shipped detectors on this CPU (docs/benchmarks.md, "Detection": median detect_film at full film size) plus
about 0.05 s to decode a 2,300 px JPEG."""


def regressor_costs(profile_name: str) -> dict:
    from bench_regressors import conv_flops

    from ra2 import contract
    from ra2.profiles import regressor_profile
    from ra2.scoring.models import build_regressor

    prof = regressor_profile(profile_name)
    out = {}
    for d in contract.DATASETS:
        net, train = prof.networks[d], prof.training[d]
        per_patient = len(contract.scores_of_dataset(d))
        n_train = CHALLENGE["train_patients"] * per_patient
        fwd = conv_flops(build_regressor(net)) / 1e9
        step = 3 * fwd * train.batch_size
        steps = train.epochs * (train.steps_per_epoch or math.ceil(n_train * 4 / 5 / train.batch_size))
        validated = math.ceil(train.epochs / max(1, train.val_every))
        views = 5 if prof.tta != "off" else 1
        val_fwd = prof.n_folds * validated * (n_train / prof.n_folds) * fwd + n_train * views * fwd
        test_fwd = CHALLENGE["test_patients"] * per_patient * prof.n_folds * views * fwd
        out[d] = {"input_size": net.input_size, "batch": train.batch_size, "gflop_per_crop": round(fwd, 4),
                  "gflop_per_step": round(step, 2), "steps_per_member": steps, "members": prof.n_folds,
                  "train_tflop": round(prof.n_folds * steps * step / 1000, 1),
                  "forward_tflop": round((val_fwd + test_fwd) / 1000, 2)}
    return out


def detector_costs(profile_name: str) -> dict:
    from bench_mrcnn import count_gflops

    from ra2 import contract
    from ra2.detection.specs import detector_config
    from ra2.mrcnn.model import MaskRCNN

    per = {}
    for name in contract.DETECTORS:
        config = detector_config(name, profile_name, IMAGES_PER_GPU=1)
        model = MaskRCNN("inference", config, "/tmp/ra2-profile-cost")
        per[name] = round(count_gflops(model, int(config.IMAGE_MAX_DIM)), 2)
    return {"per_pass": per, "hand_film": round(per["hands"] + per["wrist_erosion"] + per["wrist_narrowing"], 2),
            "foot_film": per["feet"]}


def estimate(regressors: dict, tflops: float, gpu_steps: dict | None, profile_name: str,
             seconds_per_film: dict, cpu_steps: dict | None = None) -> dict:
    """Seconds of ``ra2 run`` at the challenge's size on one GPU (see the module docstring)."""
    films = {"hand": 2 * sum(CHALLENGE.values()), "foot": 2 * sum(CHALLENGE.values())}
    detection = sum(films[k] * seconds_per_film[k] for k in films)
    train = forward = 0.0
    for d, r in regressors.items():
        by_flops = r["gflop_per_step"] / (tflops * 1000)
        measured = ((gpu_steps or {}).get(f"{profile_name} {d}") or {}).get("step_ms")
        augment = ((cpu_steps or {}).get(f"{profile_name} {d}") or {}).get("augment_ms")
        step = max(by_flops, measured / 1000 if measured else 0.0, augment / 1000 if augment else 0.0)
        train += r["members"] * r["steps_per_member"] * step
        forward += r["forward_tflop"] / tflops
    total = detection + train + forward
    return {"detection_s": round(detection), "regressor_training_s": round(train), "forward_passes_s": round(forward),
            "total_s": round(total), "total_hours": round(total / 3600, 2),
            "share_of_limit": {k: round(total / (h * 3600), 2) for k, h in LIMITS_HOURS.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["cpu", "full"])
    parser.add_argument("--tflops", type=float, default=4.0, help="sustained TFLOP/s assumed for the GPU")
    parser.add_argument("--gpu-steps", help="JSON of bench/regressor_steps.py run on a GPU")
    parser.add_argument("--cpu-steps", help="JSON of bench/regressor_steps.py run on this CPU")
    parser.add_argument("--no-detectors", action="store_true", help="skip the detectors' FLOP count (slow)")
    parser.add_argument("--json")
    args = parser.parse_args()

    gpu = json.loads(Path(args.gpu_steps).read_text())["networks"] if args.gpu_steps else None
    cpu = json.loads(Path(args.cpu_steps).read_text())["networks"] if args.cpu_steps else {}
    result = {"challenge": CHALLENGE, "tflops_assumed": args.tflops, "profiles": {}}
    for p in args.profiles:
        reg = regressor_costs(p)
        for d, r in reg.items():
            if f"{p} {d}" in cpu:
                r["cpu_step_ms"] = cpu[f"{p} {d}"]["step_ms"]
                r["cpu_augment_ms"] = cpu[f"{p} {d}"].get("augment_ms")
            if gpu and f"{p} {d}" in gpu:
                r["gpu_step_ms"] = gpu[f"{p} {d}"]["step_ms"]
        entry = {"regressors": reg,
                 "estimate_one_gpu": estimate(reg, args.tflops, gpu, p, DEFAULT_SECONDS_PER_FILM, cpu)}
        if not args.no_detectors:
            entry["detectors"] = detector_costs(p)
        result["profiles"][p] = entry
        print(f"== profile {p}")
        for d, r in reg.items():
            print(f"  {d:13s} {r['input_size']:3d} px batch {r['batch']:3d}: {r['gflop_per_crop']:.4f} GFLOP/crop, "
                  f"{r['gflop_per_step']:7.2f} GFLOP/step x {r['steps_per_member']} steps x {r['members']} members "
                  f"= {r['train_tflop']} TFLOP; forward passes {r['forward_tflop']} TFLOP"
                  + (f"; CPU {r['cpu_step_ms']} ms/step, augment {r['cpu_augment_ms']} ms/batch"
                     if "cpu_step_ms" in r else "")
                  + (f"; GPU {r['gpu_step_ms']} ms/step" if "gpu_step_ms" in r else ""))
        if "detectors" in entry:
            det = entry["detectors"]
            print(f"  detectors: {det['per_pass']} GFLOP per pass; hand film {det['hand_film']}, foot film "
                  f"{det['foot_film']} GFLOP")
        print(f"  one GPU at {args.tflops} TFLOP/s: {entry['estimate_one_gpu']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
