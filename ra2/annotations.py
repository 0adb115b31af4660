"""The pipeline's joint annotation format: one record per film, one object per detector class, as JSON.

The phantom writes its ground truth in this format (``annotations.json``), ``ra2 annotations import``
converts COCO, labelme and VIA files into it (:mod:`ra2.annotation_import`), and the detectors
(:mod:`ra2.detection`) and the scoring stage (:mod:`ra2.scoring.data`) read it.

Coordinates: every box is ``(y1, x1, y2, x2)`` and every polygon ``[K, (y, x)]`` float32, in pixels of
the original (unmirrored) film, or, for the ``*_in_carpus`` fields, of the carpus crop
``film[y1:y2, x1:x2]`` cut with the film's integer ``carpus_box``. Sites are named by catalogue id
(:data:`ra2.contract.SITE_BY_ID`, e.g. ``LH_pip__2``); the hands detector's ``carpus`` region has no site
id. In the JSON file the COCO fields ``bbox`` (``[x, y, w, h]``) and ``segmentation``
(``[[x0, y0, x1, y1, ...]]``) are written as COCO expects; the ra2 fields ``box_yxyx`` /
``box_in_carpus`` / ``polygon_in_carpus`` keep the (y, x) order. Values are rounded to 0.01 px. An object
annotated as points (a person marking joint centres, e.g. the RA2 landmark files) keeps them in ``points_yx``
(``[[y, x], ...]``: the joint's centre, or the wrist points that seeded the carpus region); files without that
key read as ``points = None``.

A film may carry any subset of its limb's objects (a partial annotation): the detectors train on the films
that carry their objects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ra2 import Ra2Error, contract

ANNOTATIONS_FILE = "annotations.json"
FILM_NAME = re.compile(r"^(?P<patient>.+)-(?P<limb>LH|RH|LF|RF)$")
"""Film file stem of the challenge layout, ``{Patient_ID}-{LH|RH|LF|RF}`` (e.g. ``UAB001-LH``)."""

Box = tuple[float, float, float, float]


@dataclass
class ObjectAnnotation:
    """One detector object of one film.

    ``box``: (y1, x1, y2, x2) pixels of the original film; ``polygon``: [K, 2] float32 (y, x) pixels of
    the original film. ``box_in_carpus`` / ``polygon_in_carpus``: the same in carpus-crop pixels (wrist
    detectors only, else None). ``site_id`` is the contract site id, None for the ``carpus`` region.
    ``points``: [K, 2] float (y, x) film pixels a person marked for the object (a joint's centre, K = 1; the
    wrist points that seeded the carpus region), None when it was drawn as a box or polygon. ``box`` is
    then the box made around them (:mod:`ra2.annotation_import`).
    """

    detector: str
    class_name: str
    site_id: str | None
    box: Box
    polygon: np.ndarray
    box_in_carpus: Box | None = None
    polygon_in_carpus: np.ndarray | None = None
    points: np.ndarray | None = None


@dataclass
class FilmAnnotation:
    """All ground-truth objects of one film. ``carpus_box``: integer (y1, x1, y2, x2) film pixels (hands)."""

    patient_id: str
    limb: str
    file_name: str
    height: int
    width: int
    carpus_box: Box | None
    objects: list[ObjectAnnotation] = field(default_factory=list)

    def objects_of(self, detector: str) -> list[ObjectAnnotation]:
        """The objects of one detector, in the order of ``contract.DETECTOR_CLASSES[detector]``."""
        if detector not in contract.DETECTOR_CLASSES:
            raise KeyError(f"unknown detector {detector!r}; expected one of {contract.DETECTORS}")
        order = {c: i for i, c in enumerate(contract.DETECTOR_CLASSES[detector])}
        found = [o for o in self.objects if o.detector == detector]
        return sorted(found, key=lambda o: order[o.class_name])


def film_identity(file_name: str) -> tuple[str, str]:
    """``(patient_id, limb)`` of a film named ``{Patient_ID}-{limb}.{ext}``; Ra2Error otherwise."""
    stem = Path(file_name).stem
    m = FILM_NAME.match(stem)
    if m is None:
        raise Ra2Error(f"{file_name}: film name is not {{Patient_ID}}-{{LH|RH|LF|RF}}.<ext>")
    return m["patient"], m["limb"]


def box_polygon(box: Box) -> np.ndarray:
    """The rectangle of a box ``(y1, x1, y2, x2)`` as a polygon ``[4, (y, x)]`` float32 (clockwise from
    the top-left corner): the mask of an object annotated by its box only."""
    y1, x1, y2, x2 = (float(v) for v in box)
    return np.array([[y1, x1], [y1, x2], [y2, x2], [y2, x1]], dtype=np.float32)


def _categories() -> list[dict]:
    cats = []
    for det in contract.DETECTORS:
        for cls in contract.DETECTOR_CLASSES[det]:
            cats.append({"id": len(cats) + 1, "name": f"{det}/{cls}", "detector": det, "class_name": cls,
                         "class_id": contract.DETECTOR_CLASSES[det].index(cls) + 1})
    return cats


def _poly_to_coco(polygon: np.ndarray) -> list[float]:
    """[K, (y, x)] -> flat [x0, y0, x1, y1, ...] rounded to 0.01 px."""
    p = np.asarray(polygon, dtype=np.float64)
    return [round(float(v), 2) for v in p[:, ::-1].reshape(-1)]


def _poly_from_coco(flat: list[float]) -> np.ndarray:
    return np.asarray(flat, dtype=np.float32).reshape(-1, 2)[:, ::-1].copy()


def _box_list(box: Box | None) -> list[float] | None:
    return None if box is None else [round(float(v), 2) for v in box]


def _polygon_area(polygon: np.ndarray) -> float:
    y, x = polygon[:, 0].astype(np.float64), polygon[:, 1].astype(np.float64)
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def write_annotations(path: Path, films: list[FilmAnnotation]) -> None:
    """Write films' objects as one COCO-style JSON file (keys sorted, so equal input gives equal bytes)."""
    path = Path(path)
    cats = _categories()
    cat_id = {(c["detector"], c["class_name"]): c["id"] for c in cats}
    images, anns = [], []
    for image_id, film in enumerate(films, start=1):
        images.append({"id": image_id, "file_name": film.file_name, "height": int(film.height),
                       "width": int(film.width), "patient_id": film.patient_id, "limb": film.limb,
                       "carpus_box": None if film.carpus_box is None else [int(v) for v in film.carpus_box]})
        for obj in film.objects:
            y1, x1, y2, x2 = obj.box
            anns.append({
                "id": len(anns) + 1, "image_id": image_id, "category_id": cat_id[(obj.detector, obj.class_name)],
                "detector": obj.detector, "class_name": obj.class_name, "site_id": obj.site_id,
                "bbox": [round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2),
                         round(float(y2 - y1), 2)],
                "box_yxyx": _box_list(obj.box),
                "segmentation": [_poly_to_coco(obj.polygon)],
                "area": round(_polygon_area(obj.polygon), 2), "iscrowd": 0,
                "box_in_carpus": _box_list(obj.box_in_carpus),
                "polygon_in_carpus": None if obj.polygon_in_carpus is None
                else [_poly_to_coco(obj.polygon_in_carpus)],
            })
            if obj.points is not None:
                anns[-1]["points_yx"] = [[round(float(v), 2) for v in p]
                                         for p in np.asarray(obj.points, dtype=np.float64).reshape(-1, 2)]
    doc = {"info": {"description": "ra2 phantom ground truth; boxes (y1, x1, y2, x2) in box_yxyx, "
                                   "COCO bbox [x, y, w, h]; polygons [x0, y0, ...] film pixels"},
           "images": images, "annotations": anns, "categories": cats}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n")


def read_annotations(path: Path) -> list[FilmAnnotation]:
    """Read a file written by :func:`write_annotations` (``path``: the JSON file or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / ANNOTATIONS_FILE
    if not path.is_file():
        raise Ra2Error(f"{path}: annotation file not found")
    try:
        doc = json.loads(path.read_text())
        films: dict[int, FilmAnnotation] = {}
        for im in doc["images"]:
            cb = im.get("carpus_box")
            films[im["id"]] = FilmAnnotation(
                patient_id=im["patient_id"], limb=im["limb"], file_name=im["file_name"],
                height=int(im["height"]), width=int(im["width"]),
                carpus_box=None if cb is None else tuple(int(v) for v in cb), objects=[])
        for a in doc["annotations"]:
            pic = a.get("polygon_in_carpus")
            bic = a.get("box_in_carpus")
            pts = a.get("points_yx")
            films[a["image_id"]].objects.append(ObjectAnnotation(
                detector=a["detector"], class_name=a["class_name"], site_id=a["site_id"],
                box=tuple(float(v) for v in a["box_yxyx"]),
                polygon=_poly_from_coco(a["segmentation"][0]),
                box_in_carpus=None if bic is None else tuple(float(v) for v in bic),
                polygon_in_carpus=None if pic is None else _poly_from_coco(pic[0]),
                points=None if pts is None else np.asarray(pts, dtype=np.float64).reshape(-1, 2)))
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise Ra2Error(f"{path}: not a ra2 annotation file ({type(exc).__name__}: {exc})") from exc
    return list(films.values())


def polygon_to_mask(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a [K, (y, x)] polygon into a [H, W] bool mask of ``shape`` (pixel centres inside)."""
    h, w = int(shape[0]), int(shape[1])
    img = Image.new("1", (w, h), 0)
    pts = [(float(x), float(y)) for y, x in np.asarray(polygon, dtype=np.float64)]
    if len(pts) >= 3:
        ImageDraw.Draw(img).polygon(pts, fill=1, outline=1)
    return np.array(img, dtype=bool)
