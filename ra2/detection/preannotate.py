"""Pre-annotations for correction: the trained detectors' boxes of a folder of films, written for labelme.

``ra2 detect --films DIR --models DIR --out DIR [--format labelme|coco] [--overlays]`` runs
:func:`preannotate_folder`: every film named ``{Patient_ID}-{LH|RH|LF|RF}.<ext>`` in ``--films`` is detected
as in prediction (:meth:`ra2.detection.detect.JointDetector.detect_film`) and its boxes are written with
:mod:`ra2.annotation_export`: ``OUT/<film stem>.json`` (labelme: rectangles labelled by site id, the carpus
as ``{limb}_carpus``, ``imagePath`` relative to OUT) or ``OUT/annotations.coco.json``. With ``--overlays``,
``OUT/overlays/<film stem>.png`` shows the film with every box, its label, score and source, coloured by
source (:data:`SOURCE_COLOURS`). After correction in labelme, ``ra2 annotations import --format labelme
--src OUT --films DIR --out FILE`` reads the files back (the same boxes when nothing was changed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.annotation_export import COCO_FILE, EXPORT_FORMATS, LabelledBox, coco_document, write_labelme
from ra2.annotations import FILM_NAME

SOURCE_COLOURS = {"detected": (0, 220, 0), "reassigned": (255, 160, 0), "layout": (255, 40, 40),
                  "layout_default": (255, 0, 255)}
"""Overlay colour (RGB) of each box source: green detected, orange reassigned, red layout guess, magenta
the layout's mean placement."""
CARPUS_COLOUR = (0, 200, 255)
OVERLAY_MAX_SIDE = 1600
"""Overlays are shrunk so that their long side is at most this many pixels."""
FILM_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm", ".dicom")


def detection_boxes(found) -> list[LabelledBox]:
    """The boxes of a :class:`ra2.detection.detect.FilmDetection`: sites in catalogue order, each with its
    score and source, then the carpus region (hands) with the hand detector's score and source for it."""
    out = [LabelledBox(s.id, tuple(found.boxes[s.id]), float(found.scores[s.id]), found.sources[s.id])
           for s in contract.sites_of_limb(found.limb) if s.id in found.boxes]
    if found.carpus_box is not None:
        out.append(LabelledBox(f"{found.limb}_carpus", tuple(found.carpus_box), found.carpus_score,
                               found.carpus_source))
    return out


def film_paths(films_dir: str | Path) -> list[Path]:
    """Films of a folder named ``{Patient_ID}-{limb}.<ext>`` (image or DICOM suffix), sorted by name."""
    films_dir = Path(films_dir)
    if not films_dir.is_dir():
        raise Ra2Error(f"{films_dir}: film folder not found")
    paths = sorted(p for p in films_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in FILM_SUFFIXES and FILM_NAME.match(p.stem))
    if not paths:
        raise Ra2Error(f"{films_dir}: no film named {{Patient_ID}}-{{LH|RH|LF|RF}}.<ext>")
    return paths


def draw_overlay(film: np.ndarray, boxes: list[LabelledBox], path: str | Path,
                 max_side: int = OVERLAY_MAX_SIDE) -> np.ndarray:
    """Write a PNG of ``film`` ([H, W] float in [0, 1]) with its boxes (film pixels), shrunk to ``max_side``.

    Each box is a rectangle in its source's colour with the caption ``"<site> <score> <source>"``.
    Returns the picture ``[h, w, 3]`` uint8.
    """
    from PIL import Image

    from ra2.mrcnn.visualize import draw_boxes

    film = np.asarray(film)
    scale = min(1.0, max_side / max(film.shape[:2]))
    pixels = np.clip(np.rint(film * 255.0), 0, 255).astype(np.uint8)
    if scale < 1.0:
        size = (max(1, int(round(film.shape[1] * scale))), max(1, int(round(film.shape[0] * scale))))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))
    rects = np.array([b.box for b in boxes], dtype=np.float64).reshape(-1, 4) * scale
    colours = [SOURCE_COLOURS.get(b.source, CARPUS_COLOUR) if not b.label.endswith("_carpus") else CARPUS_COLOUR
               for b in boxes]
    captions = [" ".join(p for p in (b.label.split("_", 1)[1] if "_" in b.label else b.label,
                                     "" if b.score is None else f"{b.score:.2f}", b.source or "") if p)
                for b in boxes]
    if not len(rects):
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return draw_boxes(pixels, refined_boxes=rects, captions=captions, colors=colours, save_path=path)


def preannotate_folder(films_dir: str | Path, out_dir: str | Path, detector=None, models_dir: str | Path | None = None,
                       fmt: str = "labelme", overlays: bool = False, progress: bool = False) -> dict:
    """Detect every film of ``films_dir`` and write its pre-annotation (see the module docstring).

    Args:
        detector: a :class:`ra2.detection.detect.JointDetector` (else loaded from ``models_dir``).
        fmt: ``labelme`` (one file per film) or ``coco`` (one file).

    Returns:
        ``{"films": n, "files": [paths written], "overlays": [png paths], "sources": {source: count},
        "films_with_default_layout": n}``.
    """
    from ra2.detection.detect import JointDetector
    from ra2.io import read_film

    if fmt not in EXPORT_FORMATS:
        raise Ra2Error(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    paths = film_paths(films_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if detector is None:
        if models_dir is None:
            raise Ra2Error("preannotate_folder needs a detector or models_dir")
        detector = JointDetector.load(models_dir)
    written, pngs, coco_films = [], [], []
    sources: dict[str, int] = {}
    fallbacks = 0
    it = paths
    if progress:
        from tqdm import tqdm

        it = tqdm(paths, desc="detecting", unit="film")
    for path in it:
        limb = FILM_NAME.match(path.stem)["limb"]
        film = read_film(path)
        found = detector.detect_film(film, limb)
        fallbacks += int(found.fallback)
        boxes = detection_boxes(found)
        for src in found.sources.values():
            sources[src] = sources.get(src, 0) + 1
        if fmt == "labelme":
            written.append(write_labelme(out_dir / f"{path.stem}.json", boxes, path, film.shape[0], film.shape[1]))
        else:
            coco_films.append((path.name, film.shape[0], film.shape[1], boxes))
        if overlays:
            png = out_dir / "overlays" / f"{path.stem}.png"
            draw_overlay(film, boxes, png)
            pngs.append(png)
    if fmt == "coco":
        coco = out_dir / COCO_FILE
        coco.write_text(json.dumps(coco_document(coco_films), indent=1) + "\n")
        written.append(coco)
    return {"films": len(paths), "files": [str(p) for p in written], "overlays": [str(p) for p in pngs],
            "sources": dict(sorted(sources.items())), "films_with_default_layout": fallbacks}
