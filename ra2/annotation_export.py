"""Boxes of films written for a person to open and correct: labelme files (one per film) or one COCO file.

Used by ``ra2 detect`` (the detectors' boxes as pre-annotations) and ``ra2 annotations export`` (any file in
the pipeline's format, e.g. the phantom's ground truth). What is written reads back through
:func:`ra2.annotation_import.import_annotations` with the built-in ``ra2`` mapping to the same boxes.

Every box becomes a rectangle labelled by catalogue site id (``LH_pip__2``); the hand detector's carpus region
is labelled ``{limb}_carpus``. ``ra2 annotations export --shapes polygon`` writes the sites' polygons instead
(labelme ``polygon`` shapes, COCO ``segmentation``), whose bounds are their boxes; the carpus stays a rectangle
(its box is the integer crop region). Coordinates are continuous ``(x, y)`` film pixels: at full float precision in
labelme files, so importing them gives back exactly the boxes that were written; rounded to 0.01 px in COCO
files (the precision of :func:`ra2.annotations.write_annotations`; ``bbox`` widths are differences, so the
far edges come back to within 1e-9 px and are equal after that rounding). A box with a detector score and
source carries them in the labelme shape's ``description`` (``"detected 0.973"``) and in the COCO
annotation's ``score`` / ``source`` fields.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ra2 import Ra2Error
from ra2.annotations import FilmAnnotation

LABELME_VERSION = "5.2.1"
"""The labelme file version written (labelme 4.x and 5.x open it)."""
EXPORT_FORMATS = ("labelme", "coco")


@dataclass(frozen=True)
class LabelledBox:
    """One box to write: ``label`` (site id or ``{limb}_carpus``), ``box`` (y1, x1, y2, x2) film pixels, and
    for detections the ``score`` and ``source`` (detected / reassigned / layout / layout_default); ``polygon``
    ``[K, (y, x)]`` film pixels to write instead of the rectangle, or None."""

    label: str
    box: tuple[float, float, float, float]
    score: float | None = None
    source: str | None = None
    polygon: np.ndarray | None = None


def _r(v: float) -> float:
    return round(float(v), 2)


def annotation_boxes(film: FilmAnnotation, polygons: bool = False) -> list[LabelledBox]:
    """The boxes of an annotated film: one per object, labelled by site id (carpus: ``{limb}_carpus``); with
    ``polygons`` the sites carry their polygons."""
    return [LabelledBox(o.site_id, tuple(o.box), polygon=o.polygon if polygons else None) if o.site_id is not None
            else LabelledBox(f"{film.limb}_carpus", tuple(o.box)) for o in film.objects]


def _note(b: LabelledBox) -> str:
    if b.source is None:
        return ""
    return b.source if b.score is None else f"{b.source} {b.score:.3f}"


def labelme_document(boxes: list[LabelledBox], image_path: str, height: int, width: int) -> dict:
    """A labelme file of one film: rectangles ``[[x1, y1], [x2, y2]]``, ``imagePath`` as given (relative to the
    labelme file), no embedded image (``imageData`` null: labelme loads the film from ``imagePath``)."""
    shapes = []
    for b in boxes:
        if b.polygon is not None:
            points = [[float(x), float(y)] for y, x in np.asarray(b.polygon, dtype=np.float64)]
            kind = "polygon"
        else:
            y1, x1, y2, x2 = (float(v) for v in b.box)
            points, kind = [[x1, y1], [x2, y2]], "rectangle"
        shapes.append({"label": b.label, "points": points, "group_id": None, "description": _note(b),
                       "shape_type": kind, "flags": {}})
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": None, "imageHeight": int(height), "imageWidth": int(width)}


def coco_document(films: list[tuple[str, int, int, list[LabelledBox]]]) -> dict:
    """One COCO file of ``(file_name, height, width, boxes)`` films: categories by label (sorted), ``bbox``
    ``[x, y, w, h]`` and the rectangle as ``segmentation``."""
    labels = sorted({b.label for _, _, _, boxes in films for b in boxes})
    cat_id = {name: i for i, name in enumerate(labels, start=1)}
    images, anns = [], []
    for image_id, (file_name, height, width, boxes) in enumerate(films, start=1):
        images.append({"id": image_id, "file_name": file_name, "height": int(height), "width": int(width)})
        for b in boxes:
            y1, x1, y2, x2 = (_r(v) for v in b.box)
            seg = [x1, y1, x2, y1, x2, y2, x1, y2] if b.polygon is None else \
                [_r(v) for v in np.asarray(b.polygon, dtype=np.float64)[:, ::-1].reshape(-1)]
            ann = {"id": len(anns) + 1, "image_id": image_id, "category_id": cat_id[b.label],
                   "bbox": [x1, y1, _r(x2 - x1), _r(y2 - y1)], "area": _r((x2 - x1) * (y2 - y1)), "iscrowd": 0,
                   "segmentation": [seg]}
            if b.source is not None:
                ann["source"] = b.source
                ann["score"] = None if b.score is None else round(float(b.score), 4)
            anns.append(ann)
    return {"info": {"description": "ra2 boxes; bbox [x, y, w, h] in film pixels; labels are catalogue site ids"},
            "images": images, "annotations": anns,
            "categories": [{"id": i, "name": name, "supercategory": "joint"} for name, i in cat_id.items()]}


def write_labelme(path: str | Path, boxes: list[LabelledBox], film_path: str | Path, height: int, width: int) -> Path:
    """Write one labelme file at ``path`` for the film at ``film_path`` (``imagePath`` relative to ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(Path(film_path).resolve(), path.parent.resolve()).replace(os.sep, "/")
    path.write_text(json.dumps(labelme_document(boxes, rel, height, width), indent=1) + "\n")
    return path


COCO_FILE = "annotations.coco.json"


def export_annotations(films: list[FilmAnnotation], films_dir: str | Path, out_dir: str | Path,
                       fmt: str = "labelme", shapes: str = "rectangle") -> list[Path]:
    """Write annotated films for correction: ``out_dir/<film stem>.json`` per film (labelme) or
    ``out_dir/annotations.coco.json`` (coco); ``shapes``: ``rectangle`` (boxes) or ``polygon`` (the sites'
    polygons). Returns the paths written."""
    if fmt not in EXPORT_FORMATS:
        raise Ra2Error(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if shapes not in ("rectangle", "polygon"):
        raise Ra2Error(f"unknown shape kind {shapes!r}; expected rectangle or polygon")
    poly = shapes == "polygon"
    films_dir, out_dir = Path(films_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "coco":
        path = out_dir / COCO_FILE
        doc = coco_document([(f.file_name, f.height, f.width, annotation_boxes(f, poly)) for f in films])
        path.write_text(json.dumps(doc, indent=1) + "\n")
        return [path]
    return [write_labelme(out_dir / f"{Path(f.file_name).stem}.json", annotation_boxes(f, poly),
                          films_dir / f.file_name, f.height, f.width) for f in films]
