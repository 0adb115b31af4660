"""Per-film joint detection with the shipped detectors: seconds per hand film (hands + both wrist detectors)
and per foot film, on 2 cores, median over repeats after a warm-up call that traces the graphs.

    python bench/bench_detection.py --repeats 20 --json bench_detection.json

The films are phantom films (seed 4242, one patient per size scale 0.35 and 1.0), decoded before timing:
the time is ``JointDetector.detect_film`` (shrinking the film to the detector's input, the detectors,
the assignment, the carpus crop for the wrist detectors, the mapping back to film pixels). FLOPs of one
inference pass per detector are counted by TensorFlow's profiler (``bench_mrcnn.count_gflops``: 2 x
multiply-adds of convolutions and matrix products; the mask head on real detections comes on top).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="detectors folder (default: the shipped weights/detectors)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    from bench_mrcnn import count_gflops, machine

    from ra2 import contract
    from ra2.detection.detect import JointDetector
    from ra2.io import read_film
    from ra2.models_folder import shipped_detectors
    from ra2.phantom import generate_dataset

    models = Path(args.models) if args.models else shipped_detectors()
    if models is None:
        print("no detectors: give --models or ship weights/detectors")
        return 1
    t0 = time.perf_counter()
    detector = JointDetector.load(models)
    load_seconds = time.perf_counter() - t0
    results = {"machine": machine(), "models": str(models), "repeats": args.repeats,
               "load_seconds": round(load_seconds, 2), "films": {}, "gflops": {}}
    for name, det in detector.detectors.items():
        results["gflops"][name] = round(count_gflops(det.model, det.side), 3)
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (0.35, 1.0):
            root = Path(tmp) / f"s{scale}"
            generate_dataset(root, train_patients=1, test_patients=0, seed=4242, size_scale=scale, workers=1)
            for limb in ("LH", "RF"):
                film = read_film(root / "train" / f"PHA0001-{limb}.jpg")
                t = time.perf_counter()
                detector.detect_film(film, limb)
                first = time.perf_counter() - t
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    detector.detect_film(film, limb)
                    times.append(time.perf_counter() - t)
                kind = "hand" if limb in ("LH", "RH") else "foot"
                key = f"{kind} film, size scale {scale} ({film.shape[1]}x{film.shape[0]} px)"
                results["films"][key] = {"median_s": round(statistics.median(times), 4),
                                         "min_s": round(min(times), 4), "first_call_s": round(first, 2),
                                         "detectors": list(contract.LIMB_DETECTORS[limb])}
    results["machine"]["loadavg_1min_at_end"] = os.getloadavg()[0]
    for key, r in results["films"].items():
        print(f"{key:45s} median {r['median_s']:.3f} s  min {r['min_s']:.3f} s  first {r['first_call_s']:.1f} s "
              f"({' + '.join(r['detectors'])})")
    print("GFLOPs per inference pass (mask head excluded): " +
          ", ".join(f"{k} {v:.2f}" for k, v in results["gflops"].items()))
    print(f"loading the four detectors: {load_seconds:.1f} s; machine: {results['machine']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
