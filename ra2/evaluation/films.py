"""What the evaluation figures need from films: the joint layout schematics (:mod:`ra2.schematic`), the
detections file, and the crops of the worst-scored joints.

Boxes are ``(y1, x1, y2, x2)`` in pixels of the original film; site centres are ``(y, x)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract


def limb_layouts() -> dict[str, tuple[np.ndarray, dict[str, tuple[float, float]]]]:
    """The joint maps' drawings: limb -> (schematic ``[H, W]`` float32 in [0, 1], site id -> centre ``(y, x)`` in
    its pixels), from :func:`ra2.schematic.limb_schematic` (right limbs are the mirror images of the left)."""
    from ra2.schematic import limb_schematic

    return {limb: limb_schematic(limb) for limb in contract.LIMBS}


def read_detections(path: str | Path) -> dict:
    """A ``detections.json`` (:meth:`ra2.pipeline.films.DetectionRecord.to_dict`): ``{"films": {"{patient}-{limb}":
    {site id: box}}, "box_sources": {...: {site id: source}}, "carpus": {hand film key: box} (files written before
    2026-12-05 have none: an empty object), ...}``. Raises :class:`Ra2Error` naming the file
    when it is missing, not JSON or has no ``films``."""
    path = Path(path)
    if not path.is_file():
        raise Ra2Error(f"{path}: no such file")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Ra2Error(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("films"), dict):
        raise Ra2Error(f"{path}: no 'films' object (expected the detections.json written by `ra2 predict`)")
    for key, boxes in doc["films"].items():
        if "-" not in key or key.rsplit("-", 1)[1] not in contract.LIMBS:
            raise Ra2Error(f"{path}: film key {key!r} is not '<patient>-<LH|RH|LF|RF>'")
        for site_id, box in boxes.items():
            if site_id not in contract.SITE_BY_ID or len(box) != 4:
                raise Ra2Error(f"{path}: film {key!r}: bad site {site_id!r} or box {box!r}")
    doc.setdefault("box_sources", {})
    carpus = doc.setdefault("carpus", {})
    if not isinstance(carpus, dict):
        raise Ra2Error(f"{path}: 'carpus' must be an object of hand film key -> [y1, x1, y2, x2]")
    for key, box in carpus.items():
        if key.rsplit("-", 1)[-1] not in contract.HAND_LIMBS or not _four_numbers(box):
            raise Ra2Error(f"{path}: carpus of {key!r}: expected a hand film key and [y1, x1, y2, x2], got {box!r}")
    return doc


def _four_numbers(box) -> bool:
    return isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)


def _film(films_dir: Path, key: str) -> np.ndarray | None:
    from ra2.io import find_film, read_film

    pid, limb = key.rsplit("-", 1)
    try:
        return read_film(find_film(films_dir, pid, limb))
    except Ra2Error:
        return None


def overlay_films(films_dir: str | Path, detections: Mapping, n: int = 4
                  ) -> list[tuple[str, np.ndarray, dict, dict]]:
    """Up to ``n`` films for :func:`ra2.evaluation.figures.detection_overlays`: the first patient's four limbs
    (in ``detections`` order), then further patients' films; films absent from ``films_dir`` are skipped.
    Each entry: ``(key, film [H, W] float32, {site id: box}, {site id: source})``."""
    out = []
    for key, boxes in detections["films"].items():
        if len(out) >= n:
            break
        film = _film(Path(films_dir), key)
        if film is not None:
            out.append((key, film, boxes, detections["box_sources"].get(key, {})))
    return out


def worst_crops(films_dir: str | Path, detections: Mapping, cells: Sequence[Mapping], size: int = 64,
                margin: float = 0.2) -> list[tuple[np.ndarray, str]]:
    """Crops of the given cells (:func:`ra2.evaluation.stats.worst_cells`: patient, column, gold, prediction),
    cut around the detected box of the cell's site as the regressors saw it (right limbs mirrored), each
    with the caption ``"<patient> <joint>\\ntrue <g> pred <p>"``. Cells whose film or box is absent are skipped."""
    from ra2.detection.crops import cut_crop

    cache: dict[str, np.ndarray | None] = {}
    out = []
    for cell in cells:
        score = contract.SCORE_BY_COLUMN[cell["column"]]
        key = f"{cell['patient']}-{score.limb}"
        box = detections["films"].get(key, {}).get(score.site.id)
        if box is None:
            continue
        if key not in cache:
            cache[key] = _film(Path(films_dir), key)
        if cache[key] is None:
            continue
        crop = cut_crop(cache[key], box, size, mirror=contract.is_right(score.limb), margin=margin)
        out.append((crop, f"{cell['patient']} {cell['column']}\ntrue {cell['gold']:.0f} pred {cell['prediction']:.1f}"))
    return out
