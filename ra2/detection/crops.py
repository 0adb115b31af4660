"""Square crops around joint boxes: the one place where film pixels become regressor inputs.

Training cuts crops around ground-truth boxes, inference around detected boxes; both call
:func:`cut_crop` with boxes ``(y1, x1, y2, x2)`` in pixels of the *original* (unmirrored) film, so the
two roads meet here. Right limbs are mirrored after cutting, so every crop looks like a left limb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ra2 import contract

DEFAULT_MARGIN = 0.2
"""Extra context around a box: the crop side is ``max(h, w) * (1 + margin)``."""

PAD_MODES = ("zero", "edge")


def crop_window(box: Sequence[float], margin: float = DEFAULT_MARGIN) -> tuple[int, int, int]:
    """The integer square window ``(top, left, side)`` of a crop, in pixels of the same film as ``box``.

    ``box`` is ``(y1, x1, y2, x2)`` with ``y2``/``x2`` exclusive. The window is centred on the box centre;
    its side is ``ceil(max(h, w) * (1 + margin))`` (at least 1 pixel). It may extend past the film.
    """
    y1, x1, y2, x2 = (float(v) for v in box)
    h, w = y2 - y1, x2 - x1
    if not (h > 0 and w > 0):
        raise ValueError(f"box {tuple(box)} is empty: expected y1 < y2 and x1 < x2")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    side = max(1, int(np.ceil(max(h, w) * (1.0 + margin) - 1e-9)))
    top = int(np.floor((y1 + y2) / 2.0 - side / 2.0 + 0.5))
    left = int(np.floor((x1 + x2) / 2.0 - side / 2.0 + 0.5))
    return top, left, side


def _window_pixels(film: np.ndarray, top: int, left: int, side: int, pad: str) -> np.ndarray:
    """``film[top:top+side, left:left+side]`` with the parts outside the film padded."""
    h, w = film.shape
    if pad == "edge":
        rows = np.clip(np.arange(top, top + side), 0, h - 1)
        cols = np.clip(np.arange(left, left + side), 0, w - 1)
        return film[np.ix_(rows, cols)]
    out = np.zeros((side, side), dtype=np.float32)
    ya, yb = max(top, 0), min(top + side, h)
    xa, xb = max(left, 0), min(left + side, w)
    if ya < yb and xa < xb:
        out[ya - top:yb - top, xa - left:xb - left] = film[ya:yb, xa:xb]
    return out


def _resize(region: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a square ``[side, side]`` region to ``[size, size]`` (anti-aliased when shrinking)."""
    side = region.shape[0]
    if side == size:
        return region.astype(np.float32, copy=True)
    from skimage.transform import resize

    return resize(region, (size, size), order=1, mode="edge", anti_aliasing=side > size,
                  preserve_range=True).astype(np.float32)


def cut_crop(film: np.ndarray, box: Sequence[float], size: int, mirror: bool,
             margin: float = DEFAULT_MARGIN, pad: str = "zero") -> np.ndarray:
    """Cut one square crop around a box.

    Args:
        film: ``[H, W]`` float32 grayscale film (values usually in [0, 1]), original orientation.
        box: ``(y1, x1, y2, x2)`` in pixels of ``film`` (``y2``, ``x2`` exclusive).
        size: output side in pixels.
        mirror: flip the crop left-right (right limbs) so it looks like a left limb.
        margin: the square side is ``max(h, w) * (1 + margin)``, centred on the box (see :func:`crop_window`).
        pad: ``"zero"`` fills the parts outside the film with 0, ``"edge"`` repeats the border pixels.

    Returns:
        ``[size, size]`` float32 crop.
    """
    film = np.asarray(film)
    if film.ndim != 2:
        raise ValueError(f"film must be [H, W], got shape {film.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    top, left, side = crop_window(box, margin)
    crop = _resize(_window_pixels(film.astype(np.float32, copy=False), top, left, side, pad), size)
    if mirror:
        crop = crop[:, ::-1].copy()
    return crop


def site_crops(film: np.ndarray, boxes: Mapping[str, Sequence[float]], limb: str,
               sizes: Mapping[str, int], margin: float = DEFAULT_MARGIN,
               pad: str = "zero") -> dict[str, dict[str, np.ndarray]]:
    """Crops of every scored site on one film, one per regressor data set the site feeds.

    Args:
        film: ``[H, W]`` float32 film of ``limb`` in its original orientation.
        boxes: site id (catalogue id, e.g. ``"LH_pip__2"``) -> ``(y1, x1, y2, x2)`` in pixels of ``film``.
            Sites of other limbs raise ``KeyError``; the carpus region is not a site and must not appear.
        limb: ``LH``, ``RH``, ``LF`` or ``RF``; right limbs are mirrored.
        sizes: data set name (``foot_erosion``, ``hand_erosion``, ``narrowing``) -> crop side in pixels.
            Data sets missing from ``sizes`` are skipped.

    Returns:
        site id -> {data set name -> ``[size, size]`` float32 crop}. A site feeding two data sets of the
        same size gets the same crop (cut once).
    """
    mirror = contract.is_right(limb)
    out: dict[str, dict[str, np.ndarray]] = {}
    for site_id, box in boxes.items():
        site = contract.SITE_BY_ID.get(site_id)
        if site is None or site.limb != limb:
            raise KeyError(f"{site_id!r} is not a scored site of limb {limb}")
        by_size: dict[int, np.ndarray] = {}
        per_dataset: dict[str, np.ndarray] = {}
        for score in contract.scores_of_site(site_id):
            if score.dataset not in sizes or score.dataset in per_dataset:
                continue
            size = int(sizes[score.dataset])
            if size not in by_size:
                by_size[size] = cut_crop(film, box, size, mirror, margin=margin, pad=pad)
            per_dataset[score.dataset] = by_size[size]
        if per_dataset:
            out[site_id] = per_dataset
    return out
