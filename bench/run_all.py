"""`make bench`: run every benchmark script in turn with its documented default settings.

Benchmarks are not tests: they print timings for docs/benchmarks.md, docs/phantom.md and
docs/detection.md. Run them on an otherwise idle machine; each script also runs on its own
(`python bench/<script>.py --help`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = [
    ["phantom_speed.py"],
    ["bench_mrcnn.py", "--repeats", "5"],
    ["bench_regressors.py", "--repeats", "2"],
    ["bench_training_step.py", "--repeats", "2"],
    ["bench_detection.py", "--repeats", "20"],
]


def main() -> int:
    failed = []
    for script, *args in RUNS:
        path = BENCH / script
        if not path.exists():
            print(f"== {script}: missing, skipped", flush=True)
            continue
        print(f"== {script} {' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(path), *args])
        print(f"== {script}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(script)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
