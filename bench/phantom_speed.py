"""Phantom generation speed and label statistics (results go to docs/phantom.md).

Usage: PYTHONPATH=. python bench/phantom_speed.py [--patients 6] [--label-patients 2000]
Prints seconds per film (render + JPEG encode + write, through generate_dataset) at size_scale 1.0 and
0.3 with 1 and 2 worker processes, and the label distribution of the score sampler.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ra2 import contract
from ra2.phantom import generate_dataset, sample_patient_scores
from ra2.phantom.labels import zero_fractions


def speed(patients: int) -> None:
    for scale in (1.0, 0.3):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                generate_dataset(Path(tmp), train_patients=patients, test_patients=0, seed=1, size_scale=scale,
                                 workers=workers)
                dt = time.perf_counter() - t
                sizes = [p.stat().st_size for p in Path(tmp, "train").glob("*.jpg")]
            print(f"size_scale {scale}: workers {workers}: {dt / (4 * patients):.3f} s/film "
                  f"(mean JPEG {np.mean(sizes) / 1e3:.0f} kB)")


def labels(n: int) -> None:
    rng = np.random.default_rng(0)
    rows = [sample_patient_scores(rng) for _ in range(n)]
    z = zero_fractions(rows)
    print(f"{n} patients: zero erosion {z['erosion']:.3f}, zero narrowing {z['narrowing']:.3f}, "
          f"patients with Overall_Tol = 0: {z['patients_all_zero']:.3f}")
    for ds, top in contract.DATASET_MAX.items():
        v = np.concatenate([[r[s.column] for r in rows] for s in contract.scores_of_dataset(ds)])
        counts = np.bincount(v, minlength=top + 1)
        print(f"  {ds:13s} " + " ".join(f"{k}:{c}" for k, c in enumerate(counts)))
    tot = np.array([r[contract.OVERALL_TOTAL] for r in rows])
    edges = [0, 1, 2, 4, 8, 21, 56, 149, 10 ** 6]
    hist = np.histogram(tot, bins=edges)[0] / n
    names = ["0", "1", "2-3", "4-7", "8-20", "21-55", "56-148", ">148"]
    print("  Overall_Tol classes: " + ", ".join(f"{a} {b:.1%}" for a, b in zip(names, hist)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--patients", type=int, default=6)
    p.add_argument("--label-patients", type=int, default=2000)
    a = p.parse_args()
    print(f"cpu_count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    labels(a.label_patients)
    speed(a.patients)


if __name__ == "__main__":
    main()
