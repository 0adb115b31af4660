"""Annotations a person made (COCO, labelme, VIA 2.x) converted into the pipeline's format (:mod:`ra2.annotations`).

``ra2 annotations import --format coco|labelme|via --src PATH --films DIR --out FILE [--mapping M] [--skip-bad]``
calls :func:`import_annotations` and writes its films with :func:`ra2.annotations.write_annotations`.

Sources
-------
- ``coco``: one JSON file: ``images`` (``id``, ``file_name``, ``height``, ``width``), ``annotations``
  (``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``, optional ``segmentation`` polygons
  ``[[x0, y0, x1, y1, ...]]``; run-length masks keep the box only) and ``categories`` (``id``, ``name``).
- ``labelme``: a folder of labelme JSON files (or one file), one per film (``run.json``, the run record that
  ``ra2 detect`` writes beside its files, is not one): ``shapes`` (``label``,
  ``shape_type`` ``rectangle`` / ``polygon`` / ``point``, ``points`` ``[[x, y], ...]``), ``imagePath``
  (only its last component is used, whatever the separators), ``imageHeight`` / ``imageWidth``;
  ``imageData`` is ignored.
- ``via``: a VGG Image Annotator 2.x project (``_via_img_metadata``) or its exported annotations: per film
  ``filename``, ``size`` (bytes; checked against the film file when positive) and ``regions``, each with
  ``shape_attributes`` (``rect`` ``x, y, width, height``; ``polygon`` ``all_points_x, all_points_y``;
  ``point`` ``cx, cy``) and ``region_attributes``: the label is the ``label`` attribute, else the only
  attribute the region has.

All three use continuous pixel coordinates ``(x, y)`` of the original film, as ra2 does (a box's far edges
are exclusive), so no half-pixel shift is applied.

Labels
------
A *mapping* turns a source label into a catalogue target: a site id (``LH_pip__2``; its limb must be the
film's), a detector class name (``pip__2``, ``hands/pip__2``; the site of that class on the film's limb),
``carpus`` (``LH_carpus``: the hand detector's carpus region), or ``null`` (the label is ignored on purpose
and counted). Built-in mappings (:data:`BUILTIN_MAPPINGS`): ``ra2`` (site ids, class names,
``detector/class`` names and ``{limb}_carpus``: what ra2 itself writes), ``ra2-landmarks`` (the labelme
point landmarks published for the RA2 films: hands ``0_mcp_ip``, ``1_pip_2`` .. ``4_pip_5``,
``5_mcp_1`` .. ``9_mcp_5``, wrist points ``w1`` ``w2`` ``w3``; feet ``mtp`` (big-toe IP), ``mtp_1`` ..
``mtp_5``) and ``default`` (both). A mapping file is JSON or YAML: ``{label: target}``.

Points
------
A joint given as a point becomes a square box centred on it whose side is :data:`POINT_BOX_FACTOR` times
the film's *joint spacing*: the median, over the film's annotated joints (hand and foot sites, from points
or boxes), of the distance from a joint's centre to the nearest other joint's centre. (On the phantom's
ground truth the median ratio of box side to this spacing is 0.86 for hands and 1.13 for feet, 20 films
each.) The box is clipped to the film. Points mapped to ``carpus`` (the ``w1 w2 w3`` wrist points) seed the
carpus region: their bounding box grown by :data:`CARPUS_PAD_FACTOR` times the joint spacing on every side,
clipped to the film. A film with points needs at least two annotated joints. The points themselves are kept
(``ObjectAnnotation.points``), so ``ra2 eval-detectors`` can ask whether each marked joint centre lies in the
box detected for its site.

A hand film whose wrist areas are annotated without a carpus region gets the bounding box of its wrist
areas as carpus crop (``FilmAnnotation.carpus_box``), so the wrist detectors can train on it.

Bad input
---------
An unknown label, a box or point outside its film, an empty box, a site annotated twice, an unsupported
shape, a film that is missing or whose size disagrees with the annotation raise :class:`ra2.Ra2Error`
naming the source file and the record (``shape 3 ('1_pip_2')``, ``annotation id 17``, ``region 2 of
'UAB001-LH.jpg'``). With ``skip_bad`` the record (or, for film-level problems, the film) is skipped
instead, and the message is kept in :attr:`ImportResult.skipped`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.annotations import FilmAnnotation, ObjectAnnotation, box_polygon, film_identity

FORMATS = ("coco", "labelme", "via")
POINT_BOX_FACTOR = 1.0
"""Side of a point's box in units of the film's joint spacing."""
CARPUS_PAD_FACTOR = 1.0
"""Margin around the wrist points' bounding box (each side) in units of the film's joint spacing."""
CARPUS = "carpus"

_LANDMARK_HAND = {"0_mcp_ip": "mcp__ip", "1_pip_2": "pip__2", "2_pip_3": "pip__3", "3_pip_4": "pip__4",
                  "4_pip_5": "pip__5", "5_mcp_1": "mcp__1", "6_mcp_2": "mcp__2", "7_mcp_3": "mcp__3",
                  "8_mcp_4": "mcp__4", "9_mcp_5": "mcp__5", "w1": CARPUS, "w2": CARPUS, "w3": CARPUS}
_LANDMARK_FOOT = {"mtp": "mtp__ip", "mtp_1": "mtp__1", "mtp_2": "mtp__2", "mtp_3": "mtp__3", "mtp_4": "mtp__4",
                  "mtp_5": "mtp__5"}


def _ra2_mapping() -> dict[str, str]:
    m: dict[str, str] = {}
    for det, classes in contract.DETECTOR_CLASSES.items():
        for cls in classes:
            m[cls] = cls
            m[f"{det}/{cls}"] = cls
    for site in contract.SITES:
        m[site.id] = site.id
    for limb in contract.HAND_LIMBS:
        m[f"{limb}_{CARPUS}"] = f"{limb}_{CARPUS}"
    return m


BUILTIN_MAPPINGS: dict[str, dict[str, str | None]] = {
    "ra2": _ra2_mapping(),
    "ra2-landmarks": {**_LANDMARK_HAND, **_LANDMARK_FOOT},
}
BUILTIN_MAPPINGS["default"] = {**BUILTIN_MAPPINGS["ra2"], **BUILTIN_MAPPINGS["ra2-landmarks"]}


@dataclass
class ImportResult:
    """``films``: one :class:`FilmAnnotation` per annotated film (sorted by file name); ``skipped``: one message
    per record or film left out (``skip_bad``); ``ignored``: records whose label the mapping maps to null."""

    films: list[FilmAnnotation]
    skipped: list[str] = field(default_factory=list)
    ignored: int = 0

    @property
    def n_objects(self) -> int:
        return sum(len(f.objects) for f in self.films)


class _Bad(Exception):
    """One bad record or film (becomes a Ra2Error, or a skip with ``skip_bad``)."""


def _valid_target(target) -> bool:
    if target is None:
        return True
    if not isinstance(target, str):
        return False
    if target == CARPUS or target in BUILTIN_MAPPINGS["ra2"]:
        return True
    return False


def load_mapping(spec: str | Path | None) -> tuple[str, dict[str, str | None]]:
    """``(name, {label: target})`` of a built-in mapping name or a JSON/YAML mapping file (default: ``default``)."""
    if spec is None:
        return "default", BUILTIN_MAPPINGS["default"]
    if str(spec) in BUILTIN_MAPPINGS:
        return str(spec), BUILTIN_MAPPINGS[str(spec)]
    path = Path(spec)
    if not path.is_file():
        raise Ra2Error(f"{path}: mapping file not found (built-in mappings: {', '.join(BUILTIN_MAPPINGS)})")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error of the user's file is a user error
        raise Ra2Error(f"{path}: not a JSON/YAML mapping ({type(exc).__name__})") from exc
    if not isinstance(doc, dict):
        raise Ra2Error(f"{path}: a mapping must be an object {{label: target}}")
    for label, target in doc.items():
        if not _valid_target(target):
            raise Ra2Error(f"{path}: label {label!r}: target {target!r} is not a site id, a detector class, "
                           f"'{CARPUS}' or null")
    return str(path), {str(k): v for k, v in doc.items()}


# ------------------------------------------------------------------------------------------------ records
@dataclass
class _Record:
    """One shape of the source: ``box`` (y1, x1, y2, x2) or ``point`` (y, x), film pixels."""

    name: str
    label: str
    box: tuple[float, float, float, float] | None = None
    polygon: np.ndarray | None = None  # [K, (y, x)]
    point: tuple[float, float] | None = None


@dataclass
class _FilmSource:
    """One film as the source describes it: its records and the size the source claims (None: not given)."""

    source: str  # the source file
    name: str  # the film-level record name
    file_name: str
    height: int | None
    width: int | None
    records: list[_Record]
    byte_size: int | None = None


def _box_of_points(points: np.ndarray) -> tuple[float, float, float, float]:
    """[K, (y, x)] -> (y1, x1, y2, x2)."""
    return (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()),
            float(points[:, 1].max()))


def _xy_points(raw, what: str) -> np.ndarray:
    """``[[x, y], ...]`` -> ``[K, (y, x)]`` float64."""
    try:
        p = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _Bad(f"{what}: points are not numbers") from exc
    if p.ndim != 2 or p.shape[1] != 2 or not np.isfinite(p).all():
        raise _Bad(f"{what}: points must be [[x, y], ...]")
    return p[:, ::-1].copy()


def _shape_record(name: str, label: str, kind: str, points: np.ndarray) -> _Record:
    """A record from a shape kind (``rectangle`` / ``polygon`` / ``point``) and its ``[K, (y, x)]`` points."""
    if kind == "point":
        if len(points) != 1:
            raise _Bad(f"{name}: a point has one (x, y), got {len(points)}")
        return _Record(name, label, point=(float(points[0, 0]), float(points[0, 1])))
    if kind == "rectangle":
        if len(points) != 2:
            raise _Bad(f"{name}: a rectangle has two corners, got {len(points)}")
        box = _box_of_points(points)
        return _Record(name, label, box=box, polygon=box_polygon(box))
    if kind == "polygon":
        if len(points) < 3:
            raise _Bad(f"{name}: a polygon needs at least 3 points, got {len(points)}")
        return _Record(name, label, box=_box_of_points(points), polygon=points.astype(np.float32))
    raise _Bad(f"{name}: unsupported shape type {kind!r} (rectangle, polygon or point)")


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Ra2Error(f"{path}: not a JSON file ({type(exc).__name__})") from exc


def _film_base_name(image_path: str) -> str:
    """The file name of a path written on any system (``..\\\\UAB001-LF.jpg`` -> ``UAB001-LF.jpg``)."""
    return str(image_path).replace("\\", "/").rstrip("/").split("/")[-1]


def _labelme_sources(src: Path, report) -> list[_FilmSource]:
    from ra2.runinfo import RUN_FILE

    # A folder: every .json file but the run record that ra2 commands (ra2 detect) write beside their outputs.
    files = sorted(p for p in src.glob("*.json") if p.name != RUN_FILE) if src.is_dir() else [src]
    if not files:
        raise Ra2Error(f"{src}: no labelme .json file")
    out = []
    for path in files:
        doc = _load_json(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list) or not doc.get("imagePath"):
            raise Ra2Error(f"{path}: not a labelme file (needs 'shapes' and 'imagePath')")
        records = []
        for i, shape in enumerate(doc["shapes"]):
            label = str(shape.get("label", "")) if isinstance(shape, dict) else ""
            name = f"shape {i + 1} ({label!r})"
            try:
                if not isinstance(shape, dict):
                    raise _Bad(f"shape {i + 1}: not an object")
                kind = shape.get("shape_type") or "polygon"
                records.append(_shape_record(name, label, kind, _xy_points(shape.get("points"), name)))
            except _Bad as bad:
                report(f"{path}: {bad}")
        h, w = doc.get("imageHeight"), doc.get("imageWidth")
        out.append(_FilmSource(str(path), f"imagePath {doc['imagePath']!r}", _film_base_name(doc["imagePath"]),
                               None if h is None else int(h), None if w is None else int(w), records))
    return out


def _coco_sources(src: Path, report) -> list[_FilmSource]:
    doc = _load_json(src)
    try:
        images, anns, cats = doc["images"], doc["annotations"], doc["categories"]
        names = {c["id"]: str(c["name"]) for c in cats}
        films = {im["id"]: _FilmSource(str(src), f"image id {im['id']}", _film_base_name(im["file_name"]),
                                       im.get("height"), im.get("width"), [])
                 for im in images}
    except (KeyError, TypeError) as exc:
        raise Ra2Error(f"{src}: not a COCO file (needs images, annotations and categories with ids, "
                       f"file names and category names)") from exc
    for a in anns:
        name = f"annotation id {a.get('id')}" if isinstance(a, dict) else "annotation ?"
        try:
            if not isinstance(a, dict) or a.get("image_id") not in films:
                raise _Bad(f"{name}: unknown image_id {a.get('image_id') if isinstance(a, dict) else None!r}")
            if a.get("category_id") not in names:
                raise _Bad(f"{name}: unknown category_id {a.get('category_id')!r}")
            label = names[a["category_id"]]
            bbox = np.asarray(a.get("bbox"), dtype=np.float64).reshape(-1)
            if bbox.shape != (4,) or not np.isfinite(bbox).all():
                raise _Bad(f"{name}: bbox must be [x, y, w, h]")
            x, y, w, h = (float(v) for v in bbox)
            box = (y, x, y + h, x + w)
            polygon = box_polygon(box)
            seg = a.get("segmentation")
            if isinstance(seg, list) and seg and isinstance(seg[0], list) and len(seg[0]) >= 6:
                polygon = _xy_points(np.asarray(seg[0], dtype=np.float64).reshape(-1, 2), name).astype(np.float32)
            films[a["image_id"]].records.append(_Record(f"{name} ({label!r})", label, box=box, polygon=polygon))
        except (_Bad, TypeError, ValueError) as bad:
            report(f"{src}: {bad}" if isinstance(bad, _Bad) else f"{src}: {name}: {bad}")
    return list(films.values())


def _via_label(attrs, name: str) -> str:
    if not isinstance(attrs, dict) or not attrs:
        raise _Bad(f"{name}: no region attribute to take the label from")
    if "label" in attrs:
        value = attrs["label"]
    elif len(attrs) == 1:
        value = next(iter(attrs.values()))
    else:
        raise _Bad(f"{name}: several region attributes ({', '.join(sorted(attrs))}) and none is 'label'")
    if not isinstance(value, (str, int)):
        raise _Bad(f"{name}: the label attribute is not a text")
    return str(value)


def _via_sources(src: Path, report) -> list[_FilmSource]:
    doc = _load_json(src)
    meta = doc.get("_via_img_metadata", doc) if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or not all(isinstance(v, dict) and "regions" in v for v in meta.values()):
        raise Ra2Error(f"{src}: not a VIA 2.x project (needs _via_img_metadata with filename and regions)")
    out = []
    for key, entry in meta.items():
        file_name = _film_base_name(entry.get("filename", key))
        records = []
        for i, region in enumerate(entry["regions"]):
            name = f"region {i + 1} of {file_name!r}"
            try:
                shape = region.get("shape_attributes") or {}
                label = _via_label(region.get("region_attributes"), name)
                name = f"{name} ({label!r})"
                kind = shape.get("name")
                if kind == "rect":
                    x, y, w, h = (float(shape[k]) for k in ("x", "y", "width", "height"))
                    pts = np.array([[y, x], [y + h, x + w]])
                    records.append(_shape_record(name, label, "rectangle", pts))
                elif kind == "polygon":
                    pts = np.stack([np.asarray(shape["all_points_y"], float),
                                    np.asarray(shape["all_points_x"], float)], axis=1)
                    records.append(_shape_record(name, label, "polygon", pts))
                elif kind == "point":
                    pt = np.array([[float(shape["cy"]), float(shape["cx"])]])
                    records.append(_shape_record(name, label, "point", pt))
                else:
                    raise _Bad(f"{name}: unsupported shape {kind!r} (rect, polygon or point)")
            except (KeyError, TypeError, ValueError) as exc:
                report(f"{src}: {name}: incomplete shape attributes ({type(exc).__name__}: {exc})")
            except _Bad as bad:
                report(f"{src}: {bad}")
        size = entry.get("size")
        out.append(_FilmSource(str(src), repr(file_name), file_name, None, None, records,
                               byte_size=int(size) if isinstance(size, (int, float)) and size > 0 else None))
    return out


_READERS = {"coco": _coco_sources, "labelme": _labelme_sources, "via": _via_sources}


# ------------------------------------------------------------------------------------------------ films
def film_shape(path: Path) -> tuple[int, int]:
    """``(height, width)`` of a film file, read from its header where Pillow can (DICOM: decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.height), int(im.width)
    except (UnidentifiedImageError, OSError):
        from ra2.io import read_film

        return tuple(read_film(path).shape[:2])


def _resolve(target: str, limb: str, where: str) -> tuple[str, contract.Site | None]:
    """A mapping target on a film of ``limb`` -> (class name, site or None for the carpus)."""
    target = target.split("/")[-1]  # "hands/pip__2" -> "pip__2"
    if target == CARPUS or target.endswith(f"_{CARPUS}"):
        lim = limb if target == CARPUS else target.split("_")[0]
        if lim != limb or limb not in contract.HAND_LIMBS:
            raise _Bad(f"{where}: the carpus belongs to a hand film, this one is a {contract.LIMB_NAMES[limb]} "
                       f"({limb})" if limb not in contract.HAND_LIMBS else
                       f"{where}: names the {lim} carpus on a {contract.LIMB_NAMES[limb]} film ({limb})")
        return CARPUS, None
    if target in contract.SITE_BY_ID:
        site = contract.SITE_BY_ID[target]
        if site.limb != limb:
            raise _Bad(f"{where}: names site {target} on a {contract.LIMB_NAMES[limb]} film ({limb})")
        return site.detector_class, site
    cls = target
    site = contract.SITE_BY_ID.get(f"{limb}_{cls}")
    if site is None:
        raise _Bad(f"{where}: {cls} is not a site of a {contract.LIMB_NAMES[limb]} film ({limb})")
    return cls, site


def _inside(box, h: int, w: int) -> bool:
    y1, x1, y2, x2 = box
    return 0 <= y1 and 0 <= x1 and y2 <= h and x2 <= w


def _clip(box, h: int, w: int) -> tuple[float, float, float, float]:
    y1, x1, y2, x2 = box
    return float(max(y1, 0.0)), float(max(x1, 0.0)), float(min(y2, h)), float(min(x2, w))


def joint_spacing(centres: np.ndarray) -> float:
    """Median distance from each joint centre ``[N, (y, x)]`` (N >= 2) to its nearest other centre."""
    c = np.asarray(centres, dtype=np.float64)
    d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


def _build_film(fs: _FilmSource, shape: tuple[int, int], mapping: dict, mapping_name: str,
                report) -> tuple[FilmAnnotation, int]:
    """The FilmAnnotation of one source film (bad records reported); returns it and the count of ignored records."""
    patient_id, limb = film_identity(fs.file_name)
    h, w = shape
    ignored = 0
    joints: dict[str, tuple[_Record, contract.Site]] = {}
    carpus_box: _Record | None = None
    carpus_points: list[_Record] = []
    for rec in fs.records:
        where = f"{fs.source}: {rec.name}"
        try:
            if rec.label not in mapping:
                raise _Bad(f"{where}: unknown label {rec.label!r} (mapping {mapping_name})")
            target = mapping[rec.label]
            if target is None:
                ignored += 1
                continue
            cls, site = _resolve(target, limb, where)
            if rec.point is not None:
                py, px = rec.point
                if not (0 <= py <= h and 0 <= px <= w):
                    raise _Bad(f"{where}: point (y, x) = ({py:g}, {px:g}) lies outside the {w}x{h} film")
            else:
                if not _inside(rec.box, h, w):
                    raise _Bad(f"{where}: box (y1, x1, y2, x2) = ({', '.join(f'{v:g}' for v in rec.box)}) "
                               f"lies outside the {w}x{h} film")
                if rec.box[2] - rec.box[0] <= 0 or rec.box[3] - rec.box[1] <= 0:
                    raise _Bad(f"{where}: empty box (y1, x1, y2, x2) = ({', '.join(f'{v:g}' for v in rec.box)})")
            if site is None:
                if rec.point is not None:
                    if carpus_box is not None:
                        raise _Bad(f"{where}: the carpus is already a box ({carpus_box.name})")
                    carpus_points.append(rec)
                elif carpus_box is not None or carpus_points:
                    raise _Bad(f"{where}: the carpus is annotated twice "
                               f"(also {(carpus_box or carpus_points[0]).name})")
                else:
                    carpus_box = rec
                continue
            if site.id in joints:
                raise _Bad(f"{where}: site {site.id} is annotated twice (also {joints[site.id][0].name})")
            joints[site.id] = (rec, site)
        except _Bad as bad:
            report(str(bad))
    # Joint spacing from the hand/foot joints (points or box centres).
    centres = [rec.point if rec.point is not None else ((rec.box[0] + rec.box[2]) / 2, (rec.box[1] + rec.box[3]) / 2)
               for rec, site in joints.values() if site.detector in contract.FILM_DETECTORS]
    spacing = joint_spacing(np.array(centres)) if len(centres) >= 2 else None
    film = FilmAnnotation(patient_id=patient_id, limb=limb, file_name=fs.file_name, height=h, width=w,
                          carpus_box=None, objects=[])
    for rec, site in joints.values():
        if rec.point is not None:
            if spacing is None:
                report(f"{fs.source}: {rec.name}: a point needs at least two annotated joints on the film to "
                       f"size its box (found {len(centres)})")
                continue
            half = POINT_BOX_FACTOR * spacing / 2
            box = _clip((rec.point[0] - half, rec.point[1] - half, rec.point[0] + half, rec.point[1] + half), h, w)
            polygon = box_polygon(box)
            points = np.array([rec.point], dtype=np.float64)
        else:
            box, polygon, points = rec.box, np.asarray(rec.polygon, dtype=np.float32), None
        film.objects.append(ObjectAnnotation(detector=site.detector, class_name=site.detector_class,
                                             site_id=site.id, box=tuple(float(v) for v in box), polygon=polygon,
                                             points=points))
    carpus, carpus_marks = None, None
    if carpus_points:
        if spacing is None:
            report(f"{fs.source}: {carpus_points[0].name}: wrist points need at least two annotated joints on the "
                   f"film to size the carpus region (found {len(centres)})")
        else:
            pts = np.array([r.point for r in carpus_points], dtype=np.float64)
            carpus_marks = pts
            pad = CARPUS_PAD_FACTOR * spacing
            carpus = _clip((pts[:, 0].min() - pad, pts[:, 1].min() - pad, pts[:, 0].max() + pad,
                            pts[:, 1].max() + pad), h, w)
            carpus_poly = box_polygon(carpus)
    elif carpus_box is not None:
        carpus, carpus_poly = carpus_box.box, np.asarray(carpus_box.polygon, dtype=np.float32)
    wrist = [o for o in film.objects if o.detector in contract.CARPUS_DETECTORS]
    if carpus is not None:
        film.objects.append(ObjectAnnotation(detector=contract.HANDS, class_name=CARPUS, site_id=None,
                                             box=tuple(float(v) for v in carpus), polygon=carpus_poly,
                                             points=carpus_marks))
        region = carpus
    elif wrist:
        b = np.array([o.box for o in wrist])
        region = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    else:
        region = None
    if region is not None:
        from ra2.detection.frame import integer_region

        film.carpus_box = integer_region(region, (h, w))
        cy1, cx1 = film.carpus_box[0], film.carpus_box[1]
        for o in wrist:
            o.box_in_carpus = (o.box[0] - cy1, o.box[1] - cx1, o.box[2] - cy1, o.box[3] - cx1)
            o.polygon_in_carpus = (o.polygon - np.array([cy1, cx1], dtype=np.float32)).astype(np.float32)
    order = {s.id: i for i, s in enumerate(contract.SITES)}
    film.objects.sort(key=lambda o: (contract.DETECTORS.index(o.detector), order.get(o.site_id, len(order))))
    return film, ignored


def import_annotations(fmt: str, src: str | Path, films_dir: str | Path, mapping: str | Path | None = None,
                       skip_bad: bool = False) -> ImportResult:
    """Read ``src`` in format ``fmt`` (``coco``, ``labelme``, ``via``) for the films of ``films_dir``.

    Args:
        mapping: a built-in mapping name or a JSON/YAML mapping file (default: ``default``).
        skip_bad: skip bad records and films with a message in ``ImportResult.skipped`` instead of raising.

    Returns:
        :class:`ImportResult` whose films hold boxes ``(y1, x1, y2, x2)`` in original-film pixels.
    """
    if fmt not in FORMATS:
        raise Ra2Error(f"unknown annotation format {fmt!r}; expected one of {', '.join(FORMATS)}")
    src, films_dir = Path(src), Path(films_dir)
    if not src.exists():
        raise Ra2Error(f"{src}: not found")
    if not films_dir.is_dir():
        raise Ra2Error(f"{films_dir}: film folder not found")
    mapping_name, table = load_mapping(mapping)
    skipped: list[str] = []

    def report(message: str) -> None:
        if not skip_bad:
            raise Ra2Error(message)
        skipped.append(message)

    films: dict[str, FilmAnnotation] = {}
    seen_in: dict[str, str] = {}
    ignored = 0
    for fs in _READERS[fmt](src, report):
        where = f"{fs.source}: {fs.name}"
        try:
            try:
                film_identity(fs.file_name)
            except Ra2Error as exc:
                raise _Bad(f"{where}: {exc}") from exc
            path = films_dir / fs.file_name
            if not path.is_file():
                raise _Bad(f"{where}: film {fs.file_name} not found in {films_dir}")
            if fs.file_name in films or fs.file_name in seen_in:
                raise _Bad(f"{where}: film {fs.file_name} is annotated twice (also in {seen_in[fs.file_name]})")
            shape = film_shape(path)
            if fs.height is not None and fs.width is not None and (int(fs.height), int(fs.width)) != shape:
                raise _Bad(f"{where}: film {fs.file_name} is {shape[1]}x{shape[0]} px but the annotation says "
                           f"{int(fs.width)}x{int(fs.height)}")
            if fs.byte_size is not None and fs.byte_size != path.stat().st_size:
                raise _Bad(f"{where}: film {fs.file_name} has {path.stat().st_size} bytes but the project says "
                           f"{fs.byte_size} (another file of that name?)")
        except _Bad as bad:
            report(str(bad))
            continue
        seen_in[fs.file_name] = fs.source
        film, n_ignored = _build_film(fs, shape, table, mapping_name, report)
        ignored += n_ignored
        if film.objects:
            films[fs.file_name] = film
    return ImportResult(films=[films[k] for k in sorted(films)], skipped=skipped, ignored=ignored)
