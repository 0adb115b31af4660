"""From a detector's raw instances to exactly one box per class.

A Mask R-CNN detector returns any number of instances per class. The scoring stage needs exactly one crop
per scored site, so:

1. each class keeps its highest-scoring instance (its *primary*);
2. the thesis's repair: when a class is missing, a lower-confidence duplicate of another class is usually
   the misclassified joint. Redundant instances (not primaries, and not overlapping a primary by IoU
   >= ``duplicate_iou``) are matched to the missing classes by distance to where the :class:`Layout`
   expects each missing class, given the primaries found;
3. a class still missing gets the layout's expected box, flagged ``"layout"`` so that callers can tell a
   guess from a detection.

All boxes are ``(y1, x1, y2, x2)`` in pixels of the image the detector saw (e.g. the mirrored film or the
carpus crop). Classes are 1-based ids as in Mask R-CNN (0 = background).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from ra2.mrcnn.utils import compute_overlaps

SOURCE_DETECTED = "detected"
SOURCE_REASSIGNED = "reassigned"
SOURCE_LAYOUT = "layout"


@dataclass(frozen=True)
class AssignedBox:
    """One class's box after assignment."""

    class_id: int
    box: tuple[float, float, float, float]  # (y1, x1, y2, x2), pixels of the detector's image
    score: float  # detector confidence; 0.0 for a layout guess
    source: str  # "detected" | "reassigned" | "layout"


def _centres(boxes: np.ndarray) -> np.ndarray:
    """boxes [N, (y1, x1, y2, x2)] -> centres [N, (y, x)]."""
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


class Layout:
    """Where each class sits relative to the others: mean centre and size per class, in a normalised frame.

    The frame of one image is a similarity: ``normalised = (point - origin) / scale`` with ``origin`` the mean
    centre of the classes present and ``scale`` their RMS distance from it. Fitted on ground-truth boxes
    (:meth:`fit`); at inference the frame is estimated from the primaries found (at least two), using the
    layout's mean positions of exactly those classes, so missing classes do not bias it.
    """

    def __init__(self, num_classes: int, centres: np.ndarray, sizes: np.ndarray):
        self.num_classes = int(num_classes)
        self.centres = np.asarray(centres, dtype=np.float64)  # [C, (y, x)] normalised, row c-1 = class c
        self.sizes = np.asarray(sizes, dtype=np.float64)  # [C, (h, w)] in units of the frame scale
        if self.centres.shape != (num_classes, 2) or self.sizes.shape != (num_classes, 2):
            raise ValueError(f"layout arrays must be [{num_classes}, 2]")

    @classmethod
    def fit(cls, examples: list[dict[int, tuple[float, float, float, float]]], num_classes: int) -> Layout:
        """Fit from images' ground truth: each example maps class id -> box (y1, x1, y2, x2)."""
        sums_c = np.zeros((num_classes, 2))
        sums_s = np.zeros((num_classes, 2))
        counts = np.zeros(num_classes)
        for example in examples:
            ids = np.array(sorted(example), dtype=int)
            if len(ids) < 2:
                continue
            boxes = np.array([example[i] for i in ids], dtype=np.float64)
            cen = _centres(boxes)
            origin = cen.mean(axis=0)
            scale = np.sqrt(((cen - origin) ** 2).sum(axis=1).mean())
            if scale <= 0:
                continue
            sums_c[ids - 1] += (cen - origin) / scale
            sums_s[ids - 1] += np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1) / scale
            counts[ids - 1] += 1
        if np.any(counts == 0):
            missing = [int(i) + 1 for i in np.flatnonzero(counts == 0)]
            raise ValueError(f"cannot fit a layout: classes {missing} never appear with another class")
        return cls(num_classes, sums_c / counts[:, None], sums_s / counts[:, None])

    def expected_boxes(self, found: dict[int, tuple[float, float, float, float]]) -> np.ndarray:
        """Expected boxes [C, (y1, x1, y2, x2)] of every class, given at least two found class boxes.

        The frame (origin, scale) maps the layout's mean centres of the found classes onto their found
        centres in the least-squares sense (translation + isotropic scale, no rotation).
        """
        ids = np.array(sorted(found), dtype=int)
        if len(ids) < 2:
            raise ValueError("need at least two found classes to place the layout")
        cen = _centres(np.array([found[i] for i in ids], dtype=np.float64))
        ref = self.centres[ids - 1]
        ref_c, cen_c = ref - ref.mean(axis=0), cen - cen.mean(axis=0)
        scale = float((ref_c * cen_c).sum() / max((ref_c ** 2).sum(), 1e-12))
        if scale <= 0:  # degenerate (found boxes in reverse order): keep the size of the found spread
            scale = float(np.sqrt((cen_c ** 2).sum() / max((ref_c ** 2).sum(), 1e-12)))
        origin = cen.mean(axis=0) - scale * ref.mean(axis=0)
        centres = origin + scale * self.centres
        half = scale * self.sizes / 2
        return np.concatenate([centres - half, centres + half], axis=1)

    def to_dict(self) -> dict:
        return {"num_classes": self.num_classes, "centres": self.centres.tolist(),
                "sizes": self.sizes.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Layout:
        return cls(d["num_classes"], np.array(d["centres"]), np.array(d["sizes"]))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Layout:
        return cls.from_dict(json.loads(Path(path).read_text()))


def assign_instances(rois: np.ndarray, class_ids: np.ndarray, scores: np.ndarray, num_classes: int,
                     layout: Layout | None = None, duplicate_iou: float = 0.5,
                     image_shape: tuple[int, int] | None = None) -> dict[int, AssignedBox]:
    """One box per class from a detector's instances.

    rois: [N, (y1, x1, y2, x2)]; class_ids: [N] int in 1..num_classes; scores: [N].
    With ``layout``, missing classes are filled by reassignment, then by the layout's expected box
    (clipped to ``image_shape`` (H, W) when given); without it, missing classes stay missing.
    Returns class id -> :class:`AssignedBox`.
    """
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    class_ids = np.asarray(class_ids, dtype=int).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not (len(rois) == len(class_ids) == len(scores)):
        raise ValueError("rois, class_ids and scores must have the same length")
    order = np.argsort(-scores, kind="stable")
    result: dict[int, AssignedBox] = {}
    primary_idx: list[int] = []
    for i in order:
        c = int(class_ids[i])
        if 1 <= c <= num_classes and c not in result:
            result[c] = AssignedBox(c, tuple(rois[i]), float(scores[i]), SOURCE_DETECTED)
            primary_idx.append(int(i))
    missing = [c for c in range(1, num_classes + 1) if c not in result]
    if not missing or layout is None or len(result) < 2:
        return result

    expected = layout.expected_boxes({c: b.box for c, b in result.items()})
    primaries = rois[primary_idx]
    redundant = [int(i) for i in order if int(i) not in primary_idx
                 and (len(primaries) == 0 or compute_overlaps(rois[i:i + 1], primaries).max() < duplicate_iou)]
    if redundant:
        exp_c = _centres(expected[np.array(missing) - 1])
        red_c = _centres(rois[redundant])
        # Distance in units of the expected box size, so a candidate far from where the class belongs
        # (more than 1.5 box sizes away) is not taken.
        size = np.maximum(expected[np.array(missing) - 1, 2:] - expected[np.array(missing) - 1, :2], 1e-6)
        cost = np.sqrt((((exp_c[:, None, :] - red_c[None, :, :]) / size.mean(axis=1)[:, None, None]) ** 2)
                       .sum(axis=2))
        rows, cols = linear_sum_assignment(cost)
        for r, k in zip(rows, cols):
            if cost[r, k] <= 1.5:
                i = redundant[k]
                c = missing[r]
                result[c] = AssignedBox(c, tuple(rois[i]), float(scores[i]), SOURCE_REASSIGNED)
    for c in range(1, num_classes + 1):
        if c not in result:
            box = expected[c - 1].copy()
            if image_shape is not None:
                box[[0, 2]] = np.clip(box[[0, 2]], 0, image_shape[0])
                box[[1, 3]] = np.clip(box[[1, 3]], 0, image_shape[1])
            if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                result[c] = AssignedBox(c, tuple(float(v) for v in box), 0.0, SOURCE_LAYOUT)
    return dict(sorted(result.items()))
