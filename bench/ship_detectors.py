"""Train the shipped joint detectors on a seeded phantom and list them in weights/manifest.json.

    python bench/ship_detectors.py                      # weights/detectors/, about 50 min on 2 cores
    python bench/ship_detectors.py --detectors feet     # retrain one detector only (the others stay)
    python bench/ship_detectors.py --manifest-only      # re-list what is under weights/ (after a change)

What it does, all of it recorded in each detector's ``metadata.json`` (``training_data``, the recipe, the
learning curve):
1. a phantom training set of ``--patients`` patients (seed ``--seed``) whose films cycle through size
   scales 0.35, 0.6 and 1.0, so the detectors do not depend on film resolution, and a validation set of
   10 patients (seed ``--val-seed``, scales 0.35 and 1.0) for the learning curves;
2. ``ra2.detection.train.train_detectors`` with the ``cpu`` recipe into ``weights/detectors``;
3. ``weights/manifest.json``: every file under ``weights/`` with its size and sha256.

The held-out check (``docs/detection.md``) uses a third seed: ``ra2 eval-detectors`` at scales 0.35 and 1.0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from ra2.models_folder import CONFIG_FILE, LAYOUT_FILE, METADATA_FILE, WEIGHTS_FILE

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
SCALES = (0.35, 0.6, 1.0)
VAL_SCALES = (0.35, 1.0)
DESCRIPTIONS = {
    CONFIG_FILE: "the ra2.mrcnn Config the detector was trained with",
    WEIGHTS_FILE: "Keras 3 weights (float32)",
    LAYOUT_FILE: "class layout and mean placement fitted on the training boxes (ra2.detection.assign)",
    METADATA_FILE: "training data, recipe, learning curve, losses, seconds, versions",
}


def write_manifest(weights: Path = WEIGHTS) -> dict:
    """List every file under ``weights`` (but the manifest and the model card) with bytes and sha256."""
    files = []
    for path in sorted(p for p in weights.rglob("*") if p.is_file()):
        if path.name in ("manifest.json", "MODEL_CARD.md"):
            continue
        data = path.read_bytes()
        rel = path.relative_to(weights).as_posix()
        what = DESCRIPTIONS.get(path.name, "")
        if rel.startswith("detectors/"):
            what = f"{rel.split('/')[1]} detector: {what}"
        files.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "what": what})
    manifest = {"description": "Shipped model members of ra2. Each entry: path relative to weights/, sha256, "
                "bytes, what it is. tests/test_weights_manifest.py checks that every file under weights/ is "
                "listed and matches. Regenerate with `python bench/ship_detectors.py --manifest-only`.",
                "total_bytes": sum(f["bytes"] for f in files), "files": files}
    (weights / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1001)
    parser.add_argument("--val-seed", type=int, default=2002)
    parser.add_argument("--out", default=str(WEIGHTS / "detectors"))
    parser.add_argument("--detectors", nargs="+", default=None,
                        help="train only these detectors (default: all four); the others' folders stay")
    parser.add_argument("--manifest-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.manifest_only:
        from ra2.detection.train import train_detectors
        from ra2.phantom import generate_dataset
        from ra2.phantom.dataset import GOLD_ANNOTATIONS_FILE

        with tempfile.TemporaryDirectory(prefix="ra2-ship-") as tmp:
            train, val = Path(tmp) / "train", Path(tmp) / "val"
            generate_dataset(train, train_patients=args.patients, test_patients=0, seed=args.seed,
                             size_scale=SCALES)
            generate_dataset(val, train_patients=0, test_patients=10, seed=args.val_seed, size_scale=VAL_SCALES)
            provenance = {"source": "phantom (ra2.phantom.generate_dataset)", "seed": args.seed,
                          "patients": args.patients, "size_scales": list(SCALES),
                          "validation": {"seed": args.val_seed, "patients": 10, "size_scales": list(VAL_SCALES)},
                          "augmentation": "ra2.detection.train.augmentation_pipeline(spec kind): film detectors "
                                          "ra2.detection.augment.film_augmentation, wrist detectors basic_augmentation",
                          "command": "python bench/ship_detectors.py " + " ".join(argv or sys.argv[1:])}
            # detectors=None trains all four, each with seed 0 + its index in contract order; one
            # detector alone gets that same seed, so a single retrain matches a full one.
            from ra2 import contract

            for name in args.detectors or [None]:
                names = None if name is None else [name]
                seed = 0 if name is None else contract.DETECTORS.index(name)
                train_detectors(train / "train", Path(args.out), "cpu", seed=seed, progress=True,
                                val_dir=val / "test", val_annotations=val / GOLD_ANNOTATIONS_FILE,
                                provenance=provenance, detectors=names)
    manifest = write_manifest()
    print(f"weights/manifest.json: {len(manifest['files'])} files, {manifest['total_bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
