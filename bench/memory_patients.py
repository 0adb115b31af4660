"""Peak memory of ``ra2 predict`` against the number of test patients (is it flat?).

    python bench/memory_patients.py --out DIR [--patients 10 100] [--size-scale 0.35] [--seed 5]

Writes a phantom (4 training patients, ``max(--patients)`` test patients, one size scale), trains the
pipeline once with the ``smoke`` regressors and the shipped detectors (``ra2 train``), then predicts the first
N test patients for each N of ``--patients``, each in its own process, and reads that process's peak resident
set size (``wait4``'s ``ru_maxrss``). Results: ``OUT/memory.json`` and a Markdown table on stdout.
:class:`ra2.pipeline.predict.Predictor` works in chunks of ``PATIENTS_PER_CHUNK`` patients, so the peak should not
grow with N beyond the chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from experiment_cli import run_main


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; returns (its peak RSS in MiB, seconds). Raises if it fails."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.time() - t0


def main(argv: list[str] | None = None) -> int:
    from ra2.io import read_template_csv, write_csv_atomic
    from ra2.models_folder import PIPELINE_FILE
    from ra2.phantom import generate_dataset

    parser = argparse.ArgumentParser(prog="python bench/memory_patients.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--patients", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--size-scale", type=float, default=0.35)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    out = Path(args.out)
    data, models = out / "phantom", out / "models"
    if not (data / "test" / "template.csv").is_file():
        generate_dataset(data, train_patients=4, test_patients=max(args.patients), seed=args.seed,
                         size_scale=args.size_scale)
    ra2 = [sys.executable, "-m", "ra2"]
    if not (models / PIPELINE_FILE).is_file():
        subprocess.run(ra2 + ["train", "--train", str(data / "train"), "--models", str(models), "--profile", "smoke",
                              "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    template = read_template_csv(data / "test" / "template.csv")
    rows = []
    for n in args.patients:
        sub = out / f"template_{n}.csv"
        write_csv_atomic(sub, list(template.columns), template.head(n).values.tolist())
        peak, seconds = peak_rss_mb(ra2 + ["predict", "--test", str(data / "test"), "--models", str(models),
                                           "--output", str(out / f"predictions_{n}"), "--template", str(sub),
                                           "--no-progress"])
        rows.append({"patients": n, "films": 4 * n, "peak_rss_mb": round(peak, 1), "seconds": round(seconds, 1)})
        print(f"{n} patients: peak RSS {peak:.0f} MiB, {seconds:.0f} s", flush=True)
    result = {"size_scale": args.size_scale, "seed": args.seed, "rows": rows, "cpus": os.cpu_count()}
    (out / "memory.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| test patients | films | peak RSS (MiB) | seconds |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['patients']} | {r['films']} | {r['peak_rss_mb']} | {r['seconds']} |")
    return 0


if __name__ == "__main__":
    run_main(main)
