"""The geometry between a film and a detector's input image, shared by training and inference.

A detector image is a rectangular region of the original film (the whole film, or the carpus crop),
mirrored left-right for right limbs, then resized so that its long side is the detector's input side.
:class:`Frame` records that chain and maps boxes and points both ways, so the training data
(:mod:`ra2.detection.data`) and the detections (:mod:`ra2.detection.detect`) use the same arithmetic.

Conventions: boxes are ``(y1, x1, y2, x2)`` with ``y2``/``x2`` exclusive edges, points ``(y, x)``, both in
continuous pixel coordinates (pixel ``c`` covers ``[c, c + 1)``), so mirroring a region of width ``w`` maps
an edge ``x`` to ``w - x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ra2 import contract


@dataclass(frozen=True)
class Frame:
    """Region ``film[top:top + height, left:left + width]``, mirrored when ``mirror``, resized to
    ``out_height x out_width`` pixels (the detector image)."""

    top: int
    left: int
    height: int
    width: int
    mirror: bool
    out_height: int
    out_width: int

    @classmethod
    def fit(cls, region: Sequence[int], mirror: bool, side: int) -> "Frame":
        """The frame of an integer film region ``(y1, x1, y2, x2)`` whose long side becomes ``side`` pixels."""
        y1, x1, y2, x2 = (int(v) for v in region)
        h, w = y2 - y1, x2 - x1
        if h < 1 or w < 1:
            raise ValueError(f"empty region {tuple(region)}")
        s = side / max(h, w)
        return cls(y1, x1, h, w, bool(mirror), max(1, int(round(h * s))), max(1, int(round(w * s))))

    @property
    def scale_y(self) -> float:
        return self.out_height / self.height

    @property
    def scale_x(self) -> float:
        return self.out_width / self.width

    @property
    def out_shape(self) -> tuple[int, int]:
        return self.out_height, self.out_width

    # ---------------------------------------------------------------- points [K, (y, x)]
    def points_to_image(self, points: np.ndarray) -> np.ndarray:
        """Film points ``[K, (y, x)]`` -> detector-image points."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        y = (p[:, 0] - self.top) * self.scale_y
        x = p[:, 1] - self.left
        if self.mirror:
            x = self.width - x
        return np.stack([y, x * self.scale_x], axis=1)

    def points_to_film(self, points: np.ndarray) -> np.ndarray:
        """Detector-image points ``[K, (y, x)]`` -> film points."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        y = p[:, 0] / self.scale_y + self.top
        x = p[:, 1] / self.scale_x
        if self.mirror:
            x = self.width - x
        return np.stack([y, x + self.left], axis=1)

    # ---------------------------------------------------------------- boxes (y1, x1, y2, x2)
    def box_to_image(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """Film box -> detector-image box (corners mapped, then re-ordered after mirroring)."""
        (ya, xa), (yb, xb) = self.points_to_image(np.array([[box[0], box[1]], [box[2], box[3]]]))
        return float(min(ya, yb)), float(min(xa, xb)), float(max(ya, yb)), float(max(xa, xb))

    def box_to_film(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """Detector-image box -> film box."""
        (ya, xa), (yb, xb) = self.points_to_film(np.array([[box[0], box[1]], [box[2], box[3]]]))
        return float(min(ya, yb)), float(min(xa, xb)), float(max(ya, yb)), float(max(xa, xb))

    # ---------------------------------------------------------------- pixels
    def cut(self, film: np.ndarray) -> np.ndarray:
        """The detector image of ``film`` ([H, W] float in [0, 1]): ``[out_height, out_width]`` uint8.

        Parts of the region outside the film are black. Resizing is Pillow's bilinear filter, which
        averages over the footprint when shrinking (anti-aliased).
        """
        from PIL import Image

        film = np.asarray(film)
        region = np.zeros((self.height, self.width), dtype=np.float32)
        ya, yb = max(self.top, 0), min(self.top + self.height, film.shape[0])
        xa, xb = max(self.left, 0), min(self.left + self.width, film.shape[1])
        if ya < yb and xa < xb:
            region[ya - self.top:yb - self.top, xa - self.left:xb - self.left] = film[ya:yb, xa:xb]
        if self.mirror:
            region = region[:, ::-1]
        pixels = np.clip(np.rint(region * 255.0), 0, 255).astype(np.uint8)
        if pixels.shape != self.out_shape:
            pixels = np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize(
                (self.out_width, self.out_height), Image.BILINEAR))
        return pixels

    def to_dict(self) -> dict:
        return {"top": self.top, "left": self.left, "height": self.height, "width": self.width,
                "mirror": self.mirror, "out_height": self.out_height, "out_width": self.out_width}


def integer_region(box: Sequence[float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The smallest integer region ``(y1, x1, y2, x2)`` holding a float box, clipped to a film of ``shape``
    (at least one pixel)."""
    h, w = int(shape[0]), int(shape[1])
    y1 = int(np.clip(np.floor(box[0]), 0, h - 1))
    x1 = int(np.clip(np.floor(box[1]), 0, w - 1))
    y2 = int(np.clip(np.ceil(box[2]), y1 + 1, h))
    x2 = int(np.clip(np.ceil(box[3]), x1 + 1, w))
    return y1, x1, y2, x2


def detector_frame(detector: str, film_shape: tuple[int, int], limb: str, side: int,
                   carpus_region: tuple[int, int, int, int] | None = None) -> Frame:
    """The frame a detector sees of a film of ``film_shape`` (H, W): the whole film, or for the wrist
    detectors the integer ``carpus_region`` (y1, x1, y2, x2) of the film; mirrored for right limbs."""
    if detector in contract.CARPUS_DETECTORS:
        if carpus_region is None:
            raise ValueError(f"detector {detector} runs on the carpus crop: carpus_region is required")
        region = carpus_region
    else:
        region = (0, 0, int(film_shape[0]), int(film_shape[1]))
    return Frame.fit(region, contract.is_right(limb), side)
