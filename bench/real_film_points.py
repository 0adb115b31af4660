"""Real-film localisation by marked joint centres: is each labelled point inside the box of its class?

    ra2 detect --films FILMS --models weights/detectors --out /tmp/det          # labelme boxes per film
    python bench/real_film_points.py --labels tests/real_films/labels --detections /tmp/det [--limbs LF RF]

``ra2 eval-detectors`` scores IoU >= 0.5 against boxes that ``ra2 annotations import`` grows around each point
(one size per film, from its joint spacing); ra2's own boxes scale with each joint's bone width (the MTP 1 box
is about twice the MTP 2 box), so IoU mixes localisation with that size convention. This script counts a joint
as found when its marked centre lies inside the detected box of its class, and reports the distance of the box
centre from the point in units of the film's median spacing of MTP 2-5 (MCP 2-5 for hands).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ra2.annotation_import import BUILTIN_MAPPINGS


def film_points(path: Path, mapping: dict[str, str]) -> dict[str, np.ndarray]:
    """Detector class -> marked ``(x, y)`` film pixels of one labelme point file (unmapped labels skipped)."""
    shapes = json.loads(path.read_text())["shapes"]
    return {mapping[s["label"]]: np.array(s["points"][0], dtype=float)
            for s in shapes if s.get("shape_type") == "point" and s["label"] in mapping}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", required=True, help="folder of labelme point files <film>.json")
    parser.add_argument("--detections", required=True, help="folder of `ra2 detect` labelme files")
    parser.add_argument("--limbs", nargs="+", default=["LF", "RF", "LH", "RH"])
    args = parser.parse_args(argv)
    mapping = {k: v for k, v in BUILTIN_MAPPINGS["ra2-landmarks"].items() if v != "carpus"}
    found = total = 0
    dists = []
    for lf in sorted(Path(args.labels).glob("*.json")):
        if lf.stem.rsplit("-", 1)[-1] not in args.limbs:
            continue
        pts = film_points(lf, mapping)
        det = json.loads((Path(args.detections) / lf.name).read_text())
        boxes = {s["label"].split("_", 1)[1]: np.array(s["points"], dtype=float) for s in det["shapes"]}
        hand = lf.stem.endswith("H")
        row = [pts[c] for c in ([f"mcp__{i}" for i in range(2, 6)] if hand else [f"mtp__{i}" for i in range(2, 6)])
               if c in pts]
        spacing = float(np.median([np.linalg.norm(a - b) for a, b in zip(row, row[1:])])) if len(row) > 1 else np.nan
        k = 0
        for cls, p in pts.items():
            if cls not in boxes:
                continue
            (x1, y1), (x2, y2) = boxes[cls].min(axis=0), boxes[cls].max(axis=0)
            hit = bool(x1 <= p[0] <= x2 and y1 <= p[1] <= y2)
            k += hit
            total += 1
            dists.append(float(np.linalg.norm(boxes[cls].mean(axis=0) - p)) / spacing)
        found += k
        print(f"{lf.stem}: {k}/{len(pts)} marked joints inside their class's box")
    d = np.array(dists)
    print(f"all: {found}/{total} = {found / max(total, 1):.3f} inside; box centre to point: median "
          f"{np.nanmedian(d):.2f} joint spacings, {np.mean(d < 1.0):.3f} within one spacing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
