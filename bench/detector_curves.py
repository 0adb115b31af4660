"""Learning curves of the joint detectors: recall of the sites at IoU >= 0.5 on held-out films vs steps.

Trains detectors with the profile's recipe (or overrides of it) exactly as ``ra2 train-detectors`` does,
scoring the detector after every epoch on held-out annotated films (the wrist detectors on the true carpus
crops), and writes the curves as JSON. ``docs/detection.md`` records the runs behind the shipped recipe::

    python -m ra2 phantom --out /tmp/det/train --train-patients 60 --test-patients 0 --seed 1001 \\
        --size-scale 0.35 0.6 1.0
    python -m ra2 phantom --out /tmp/det/val --train-patients 0 --test-patients 10 --seed 2002 \\
        --size-scale 0.35 1.0
    python bench/detector_curves.py --train /tmp/det/train/train --val /tmp/det/val/test \\
        --val-annotations /tmp/det/val/gold_annotations.json --detectors hands \\
        --recipe '{"steps": 3000}' --config '{"NORM": "batch"}' --json curves_hands_bn.json

One training at a time: on 2 cores two runs slow each other and spoil the timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True, help="annotated training films (annotations.json)")
    parser.add_argument("--annotations", help="their annotations (default TRAIN/annotations.json), e.g. what "
                        "`ra2 annotations import` wrote")
    parser.add_argument("--val", required=True, help="held-out films")
    parser.add_argument("--val-annotations", help="their ground truth (default VAL/annotations.json)")
    parser.add_argument("--detectors", nargs="+", default=["feet", "hands", "wrist_erosion", "wrist_narrowing"])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--recipe", default="{}", help="JSON: DetectorRecipe fields to override")
    parser.add_argument("--config", default="{}", help="JSON: Mask R-CNN Config attributes to override")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="keep the trained detectors here (default: a temporary folder)")
    parser.add_argument("--json", required=True, help="write the curves here")
    args = parser.parse_args(argv)

    from ra2.detection.train import train_detectors

    recipe, config = json.loads(args.recipe), json.loads(args.config)
    with tempfile.TemporaryDirectory(prefix="ra2-curves-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        result = train_detectors(args.train, out, args.profile, annotations=args.annotations, seed=args.seed,
                                 detectors=args.detectors,
                                 val_dir=args.val, val_annotations=args.val_annotations,
                                 recipe_overrides=recipe, config_overrides=config, progress=True)
    doc = {"args": vars(args), "seconds": result["seconds"],
           "detectors": {d: {k: result[d][k] for k in ("learning_curve", "history", "train_seconds", "recipe",
                                                        "config_overrides", "parameters", "n_images",
                                                        "validation_images")}
                         for d in args.detectors}}
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    for d in args.detectors:
        pts = doc["detectors"][d]["learning_curve"]
        print(d, " ".join(f"{p['step']}:{p['recall_iou50']:.3f}" for p in pts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
