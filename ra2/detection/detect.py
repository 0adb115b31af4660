"""Find every scored site of a film with the trained detectors, in original-film pixels.

Walk of one film (:meth:`JointDetector.detect_film`):

1. the film (mirrored for right limbs) is shrunk to the hands/feet detector's input side (:class:`Frame`);
2. the detector's instances become one box per class (:func:`ra2.detection.assign.assign_instances`: highest
   score, reassignment of misclassified duplicates, layout guess for classes still missing);
3. hands only: the carpus box is mapped to the film, cut (integer region), mirrored and shrunk for the two
   wrist detectors, whose boxes are assigned the same way;
4. every box is mapped back to original-film pixels (undo resize, crop offset and mirroring) and clipped to
   the film.

When a detector finds fewer than two classes the layout cannot be anchored on its detections; the layout's
mean placement over the training images (``layout.json`` ``placement``) is used instead and the sites are
flagged with source ``"layout_default"``.

Evaluation against ground truth: :func:`evaluate_detection`, or
``ra2 eval-detectors --models DIR --data DIR [--annotations FILE]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.detection.assign import SOURCE_LAYOUT, AssignedBox, Layout, assign_instances
from ra2.detection.frame import Frame, detector_frame, integer_region
from ra2.models_folder import CONFIG_FILE, LAYOUT_FILE, WEIGHTS_FILE
from ra2.mrcnn.utils import compute_overlaps

SOURCE_DEFAULT = "layout_default"
"""Source of a box placed by the layout's mean training placement (the detector found < 2 classes)."""

Box = tuple[float, float, float, float]


@dataclass
class Detector:
    """One loaded detector: ``model`` has ``detect(images) -> [{"rois", "class_ids", "scores"}]`` (a
    :class:`ra2.mrcnn.model.MaskRCNN` in inference mode, or a test double), ``side`` its input side."""

    name: str
    model: object
    side: int
    layout: Layout
    placement: dict  # {"origin": [y, x], "scale": s} in detector-image pixels

    @property
    def num_classes(self) -> int:
        return len(contract.DETECTOR_CLASSES[self.name])

    def default_boxes(self) -> np.ndarray:
        """Every class's box ``[C, (y1, x1, y2, x2)]`` from the mean training placement (detector-image px)."""
        origin = np.asarray(self.placement["origin"], dtype=np.float64)
        scale = float(self.placement["scale"])
        centres = origin + scale * self.layout.centres
        half = scale * self.layout.sizes / 2
        return np.concatenate([centres - half, centres + half], axis=1)

    def run(self, image: np.ndarray) -> tuple[dict[int, AssignedBox], bool]:
        """Detect and assign on one detector image ``[h, w]`` uint8.

        Returns (class id -> :class:`AssignedBox` for every class, in detector-image pixels;
        True when the default placement had to be used).
        """
        r = self.model.detect([image[:, :, None]])[0]
        shape = image.shape[:2]
        boxes = assign_instances(r["rois"], r["class_ids"], r["scores"], self.num_classes, self.layout,
                                 image_shape=shape)
        defaults = self.default_boxes()
        used_default = False
        for c in range(1, self.num_classes + 1):
            if c not in boxes:
                used_default = True
                boxes[c] = AssignedBox(c, tuple(float(v) for v in defaults[c - 1]), 0.0, SOURCE_DEFAULT)
        return dict(sorted(boxes.items())), used_default


@dataclass
class FilmDetection:
    """Sites found on one film. ``boxes``: site id -> (y1, x1, y2, x2) original-film pixels; ``sources``:
    site id -> detected | reassigned | layout | layout_default; ``scores``: site id -> confidence (0 for
    guesses); ``carpus_box``: hands only, film pixels, with its ``carpus_score`` and ``carpus_source``;
    ``fallback``: some detector found < 2 classes."""

    limb: str
    boxes: dict[str, Box] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    carpus_box: Box | None = None
    carpus_score: float | None = None
    carpus_source: str | None = None
    fallback: bool = False


def _clip_box(box, shape) -> Box:
    """Clip a film box to the film of ``shape`` (H, W), keeping at least one pixel."""
    h, w = float(shape[0]), float(shape[1])
    y1 = min(max(box[0], 0.0), h - 1)
    x1 = min(max(box[1], 0.0), w - 1)
    y2 = min(max(box[2], y1 + 1), h)
    x2 = min(max(box[3], x1 + 1), w)
    return float(y1), float(x1), float(y2), float(x2)


class JointDetector:
    """The four detectors together. Build with :meth:`load` (a trained models folder) or directly from
    :class:`Detector` objects (tests inject fakes)."""

    def __init__(self, detectors: dict[str, Detector]):
        missing = [d for d in contract.DETECTORS if d not in detectors]
        if missing:
            raise Ra2Error(f"joint detector lacks the {missing[0]} detector")
        self.detectors = detectors

    @classmethod
    def load(cls, models_dir: str | Path) -> "JointDetector":
        """Load ``models_dir/<detector>/{config.json, model.weights.h5, layout.json}`` for all four."""
        from ra2.mrcnn import Config
        from ra2.mrcnn.model import MaskRCNN

        models_dir = Path(models_dir)
        dets = {}
        for name in contract.DETECTORS:
            folder = models_dir / name
            for f in (CONFIG_FILE, WEIGHTS_FILE, LAYOUT_FILE):
                if not (folder / f).is_file():
                    raise Ra2Error(f"{folder / f}: missing detector file (train the detectors first)")
            config = Config.from_json(folder / CONFIG_FILE)
            config.IMAGES_PER_GPU = 1
            config = Config.from_dict(config.to_dict())
            model = MaskRCNN("inference", config, model_dir=str(folder))
            model.load_weights(folder / WEIGHTS_FILE)
            doc = json.loads((folder / LAYOUT_FILE).read_text())
            dets[name] = Detector(name, model, int(config.IMAGE_MAX_DIM), Layout.from_dict(doc), doc["placement"])
        return cls(dets)

    def _run(self, name: str, frame: Frame, film: np.ndarray, limb: str, out: FilmDetection) -> dict[int, Box]:
        """Run detector ``name`` on ``frame`` of ``film``; record its sites in ``out``; return class id ->
        film box of every class."""
        det = self.detectors[name]
        assigned, used_default = det.run(frame.cut(film))
        out.fallback = out.fallback or used_default
        film_boxes = {}
        for c, a in assigned.items():
            box = _clip_box(frame.box_to_film(a.box), film.shape)
            film_boxes[c] = box
            site = contract.site_for_detection(limb, name, contract.DETECTOR_CLASSES[name][c - 1])
            if site is not None:
                out.boxes[site.id] = box
                out.sources[site.id] = a.source
                out.scores[site.id] = float(a.score)
            else:
                out.carpus_score, out.carpus_source = float(a.score), a.source
        return film_boxes

    def detect_film(self, film: np.ndarray, limb: str) -> FilmDetection:
        """Boxes of every site of ``limb`` on ``film`` ([H, W] float32, original orientation)."""
        if limb not in contract.LIMBS:
            raise Ra2Error(f"unknown limb {limb!r}; expected one of {contract.LIMBS}")
        film = np.asarray(film)
        out = FilmDetection(limb=limb)
        main = contract.LIMB_DETECTORS[limb][0]
        frame = detector_frame(main, film.shape, limb, self.detectors[main].side)
        boxes = self._run(main, frame, film, limb, out)
        if main == contract.HANDS:
            carpus_id = contract.DETECTOR_CLASSES[contract.HANDS].index(contract.CARPUS_CLASS) + 1
            out.carpus_box = boxes[carpus_id]
            region = integer_region(out.carpus_box, film.shape)
            for name in contract.CARPUS_DETECTORS:
                wframe = detector_frame(name, film.shape, limb, self.detectors[name].side, region)
                self._run(name, wframe, film, limb, out)
        expected = {s.id for s in contract.sites_of_limb(limb)}
        if set(out.boxes) != expected:  # cannot happen: every class gets a box above
            raise RuntimeError(f"{limb}: sites without a box: {sorted(expected - set(out.boxes))}")
        return out


def box_iou(a, b) -> float:
    """IoU of two boxes (y1, x1, y2, x2) of the same film."""
    return float(compute_overlaps(np.asarray([a]), np.asarray([b]))[0, 0])


def point_in_box(point, box) -> bool:
    """Whether a film point ``(y, x)`` lies in a box ``(y1, x1, y2, x2)`` (near edges inclusive, far edges
    exclusive, as every ra2 box)."""
    y, x = float(point[0]), float(point[1])
    return box[0] <= y < box[2] and box[1] <= x < box[3]


def point_hits(points: dict[str, tuple[float, float]], boxes: dict[str, Box]) -> dict[str, tuple[bool, bool]]:
    """Where the marked joint centres of one film fall among the detected boxes of the same detector.

    Args:
        points: site id -> the (y, x) point a person marked for that joint.
        boxes: site id -> the detected box of every site of the detector on the film.

    Returns:
        site id -> ``(in_own, in_other)``: the point lies in its own site's box; it lies in the box of some
        other site of ``boxes`` (both can be true where boxes overlap; neither when the joint was missed).
    """
    out = {}
    for site, pt in points.items():
        own = site in boxes and point_in_box(pt, boxes[site])
        other = any(point_in_box(pt, b) for s, b in boxes.items() if s != site)
        out[site] = (bool(own), bool(other))
    return out


def _point_summary(hits: list[tuple[bool, bool]]) -> dict:
    n = len(hits)
    return {"n": n, "in_own_box": (sum(h[0] for h in hits) / n) if n else None,
            "in_other_box": (sum(h[1] for h in hits) / n) if n else None,
            "in_no_box": (sum(not h[0] and not h[1] for h in hits) / n) if n else None}


def score_detector_images(detector: Detector, dataset) -> dict:
    """One detector on the images of a :class:`ra2.detection.data.DetectorDataset` (detector images with
    annotated boxes in detector-image pixels; IoU is the same in film pixels, as the frame only scales and
    mirrors): recall of the annotated classes at IoU >= 0.5, mean IoU, the worst class and the box sources.

    Returns ``{"n", "recall_iou50", "mean_iou", "per_class": {class name: recall}, "worst_class",
    "sources": {source: count}}``.
    """
    names = contract.DETECTOR_CLASSES[dataset.detector]
    ious: dict[str, list[float]] = {n: [] for n in names}
    sources: dict[str, int] = {}
    for info in dataset.image_info:
        assigned, _ = detector.run(info["pixels"])
        for cid, box in zip(info["class_ids"], info["boxes"]):
            a = assigned[int(cid)]
            ious[names[int(cid) - 1]].append(box_iou(a.box, box))
            sources[a.source] = sources.get(a.source, 0) + 1
    every = np.concatenate([np.asarray(v, np.float64) for v in ious.values()])
    per_class = {n: float((np.asarray(v) >= 0.5).mean()) for n, v in ious.items() if v}
    return {"n": int(every.size), "recall_iou50": float((every >= 0.5).mean()) if every.size else None,
            "mean_iou": float(every.mean()) if every.size else None, "per_class": per_class,
            "worst_class": min(per_class, key=per_class.get) if per_class else None, "sources": sources}


def evaluate_detection(models_dir, data_dir, annotations=None, detector: JointDetector | None = None,
                       progress: bool = False) -> dict:
    """Every film of ``data_dir`` detected as in prediction (wrist detectors end to end, on the carpus crop
    the hand detector found) and compared with the ground truth.

    Args:
        models_dir: trained detectors (ignored when ``detector`` is given).
        data_dir: folder of the films.
        annotations: ground-truth file (default ``data_dir/annotations.json``).

    Returns, per detector: ``n_sites``, ``hit_rate_iou50`` (fraction of sites whose box has IoU >= 0.5 with
    the ground truth), ``mean_iou``, ``per_site`` (catalogue site id -> hit rate), ``worst_site``
    (``{"site", "hit_rate_iou50", "mean_iou"}``: the site with the lowest hit rate, then mean IoU),
    ``sources`` (detected / reassigned / layout / layout_default counts); ``hands`` also has ``carpus``
    (the carpus box's hit rate and mean IoU). Plus ``films`` and ``films_with_default_layout``.

    Every joint is also scored by where its centre falls among the detected boxes (:func:`point_hits`): the
    point a person marked (``ObjectAnnotation.points``, e.g. the RA2 landmark files), else the centre of the
    annotated box. Each detector with joints has ``points`` (``n``; ``in_own_box``: share of joints whose
    point lies in the box detected for the same site; ``in_other_box``: share whose point lies in the box of
    another site of the same detector; ``in_no_box``; ``from``: ``marked``, ``box centres`` or both;
    ``per_site``: site id -> the same three shares and ``n``); ``hands`` has ``carpus_points`` when wrist
    points were marked (``n`` wrist points, ``in_box``: share inside the detected carpus box).
    """
    from ra2.annotations import read_annotations
    from ra2.io import read_film

    data_dir = Path(data_dir)
    films = read_annotations(Path(annotations) if annotations else data_dir)
    det = detector or JointDetector.load(models_dir)
    ious: dict[str, dict[str, list[float]]] = {d: {} for d in contract.DETECTORS}
    sources: dict[str, dict[str, int]] = {d: {} for d in contract.DETECTORS}
    carpus: list[float] = []
    pts: dict[str, dict[str, list[tuple[bool, bool]]]] = {d: {} for d in contract.DETECTORS}
    carpus_pts: list[bool] = []
    point_sources: dict[str, set[str]] = {d: set() for d in contract.DETECTORS}
    fallbacks = 0
    it = films
    if progress:
        from tqdm import tqdm

        it = tqdm(films, desc="evaluating detectors", unit="film")
    for ann in it:
        found = det.detect_film(read_film(data_dir / ann.file_name), ann.limb)
        fallbacks += int(found.fallback)
        marked: dict[str, dict[str, tuple[float, float]]] = {}
        for obj in ann.objects:
            if obj.site_id is None:
                if found.carpus_box is not None:
                    carpus.append(box_iou(found.carpus_box, obj.box))
                    if obj.points is not None:
                        carpus_pts.extend(point_in_box(p, found.carpus_box) for p in obj.points)
                continue
            if obj.points is not None and len(obj.points):
                marked.setdefault(obj.detector, {})[obj.site_id] = tuple(obj.points[0])
                point_sources[obj.detector].add("marked")
            else:  # a box drawn by hand or the phantom's truth: its centre stands for the joint's centre
                y1, x1, y2, x2 = obj.box
                marked.setdefault(obj.detector, {})[obj.site_id] = ((y1 + y2) / 2, (x1 + x2) / 2)
                point_sources[obj.detector].add("box centres")
            ious[obj.detector].setdefault(obj.site_id, []).append(box_iou(found.boxes[obj.site_id], obj.box))
            src = found.sources[obj.site_id]
            sources[obj.detector][src] = sources[obj.detector].get(src, 0) + 1
        for d, points in marked.items():
            boxes = {s.id: found.boxes[s.id] for s in contract.sites_of_limb(ann.limb)
                     if s.detector == d and s.id in found.boxes}
            for site, hit in point_hits(points, boxes).items():
                pts[d].setdefault(site, []).append(hit)
    result = {}
    for d, by_site in ious.items():
        v = np.concatenate([np.asarray(x) for x in by_site.values()]) if by_site else np.zeros(0)
        per_site = {s: (float((np.asarray(x) >= 0.5).mean()), float(np.mean(x))) for s, x in by_site.items()}
        worst = min(per_site, key=lambda s: per_site[s]) if per_site else None
        result[d] = {"n_sites": int(v.size), "hit_rate_iou50": float((v >= 0.5).mean()) if v.size else None,
                     "mean_iou": float(v.mean()) if v.size else None,
                     "per_site": {s: hit for s, (hit, _) in sorted(per_site.items())},
                     "worst_site": ({"site": worst, "hit_rate_iou50": per_site[worst][0],
                                     "mean_iou": per_site[worst][1]} if worst else None),
                     "sources": sources[d]}
        if pts[d]:
            result[d]["points"] = {**_point_summary([h for v in pts[d].values() for h in v]),
                                   "from": " and ".join(sorted(point_sources[d])),
                                   "per_site": {s: _point_summary(v) for s, v in sorted(pts[d].items())}}
    c = np.asarray(carpus)
    result[contract.HANDS]["carpus"] = {"n": int(c.size),
                                        "hit_rate_iou50": float((c >= 0.5).mean()) if c.size else None,
                                 "mean_iou": float(c.mean()) if c.size else None}
    if carpus_pts:
        result[contract.HANDS]["carpus_points"] = {"n": len(carpus_pts), "in_box": sum(carpus_pts) / len(carpus_pts)}
    result["films"] = len(films)
    result["films_with_default_layout"] = fallbacks
    return result


__all__ = ["JointDetector", "Detector", "FilmDetection", "evaluate_detection", "score_detector_images", "box_iou",
           "point_in_box", "point_hits",
           "SOURCE_DEFAULT", "SOURCE_LAYOUT"]
