"""Joint positions on a drawn hand and foot: the digits' bone proportions that the phantom builds its skeletons
on (:mod:`ra2.phantom.anatomy`) and the schematics that ``ra2 evaluate`` draws its joint maps on
(:func:`limb_schematic`). Neither the report nor anything else here imports the phantom.

Coordinates: millimetres in the frame of a LEFT limb seen dorso-palmar (dorso-plantar), ``(y, x)`` with ``y``
along the limb (distal positive, the radiocarpal line / the tarsometatarsal line at ``y = 0``) and ``x`` across
it (the thumb / big-toe side positive). Right limbs are the mirror images (``x -> -x``). Image positions are
``(y, x)`` pixels, ``y`` down (fingers and toes up).
"""

from __future__ import annotations

import numpy as np

from ra2 import contract

# Hand digits: (metacarpal length, metacarpal half-widths base/shaft/head, phalanx P1, P2, P3 lengths, phalanx
# half-widths base/shaft/head), millimetres; digit 1 = the thumb (no middle phalanx).
FINGERS = {
    1: dict(mc=44.0, mcw=(7.0, 4.4, 6.6), ph=(31.0, 0.0, 23.0), phw=(6.8, 4.4, 5.3)),
    2: dict(mc=66.0, mcw=(6.2, 3.9, 6.4), ph=(40.0, 23.0, 17.0), phw=(6.8, 4.3, 5.2)),
    3: dict(mc=64.0, mcw=(6.6, 4.0, 6.7), ph=(45.0, 28.0, 18.0), phw=(7.2, 4.5, 5.5)),
    4: dict(mc=57.0, mcw=(5.6, 3.5, 6.0), ph=(42.0, 26.0, 18.0), phw=(6.6, 4.1, 5.0)),
    5: dict(mc=52.0, mcw=(5.4, 3.3, 5.5), ph=(33.0, 18.0, 15.0), phw=(5.9, 3.7, 4.5)),
}

# Foot digits: (metatarsal length, metatarsal half-widths base/shaft/head, phalanx lengths, phalanx half-widths);
# digit 1 = the big toe. Toe phalanges are short against their metatarsals (proximal phalanx of toes 2-5 about
# 0.3 of the metatarsal, middle and distal phalanges a few mm; hallux: proximal phalanx about half of MT1), MT1
# is short and thick, MT5 has a broad base.
TOES = {
    1: dict(mt=62.0, mtw=(10.5, 6.2, 9.2), ph=(29.0, 0.0, 22.0), phw=(8.0, 5.2, 6.8)),
    2: dict(mt=73.0, mtw=(6.5, 3.9, 5.6), ph=(24.0, 8.5, 7.0), phw=(5.0, 3.0, 4.0)),
    3: dict(mt=68.0, mtw=(6.2, 3.8, 5.4), ph=(21.5, 7.5, 6.5), phw=(4.8, 2.9, 3.8)),
    4: dict(mt=65.0, mtw=(6.0, 3.7, 5.2), ph=(19.5, 6.5, 6.0), phw=(4.6, 2.8, 3.7)),
    5: dict(mt=63.0, mtw=(8.5, 3.9, 5.2), ph=(17.0, 5.5, 5.5), phw=(4.4, 2.7, 3.6)),
}

# The schematic's rays: where each digit's long bone starts (y, x) and its angle from the limb's axis (degrees,
# toward the thumb / big toe positive): a hand with its fingers half spread, a foot with its toes straight.
HAND_RAYS = {1: ((24.0, 17.0), 31.0), 2: ((27.0, 9.0), 6.5), 3: ((27.0, 0.0), 0.0), 4: ((25.0, -9.0), -5.5),
             5: ((23.0, -16.0), -12.0)}
FOOT_RAYS = {1: ((0.0, 20.0), 4.0), 2: ((2.0, 6.0), 1.0), 3: ((1.0, -3.0), -2.0), 4: ((0.0, -11.0), -5.0),
             5: ((-2.0, -19.0), -9.0)}

# The wrist areas (left hand, millimetres): the scored carpal joints and bones between the forearm and the
# metacarpal bases.
WRIST_SITES = {
    "wrist__radius": (-4.0, 9.0), "wrist__ulna": (-4.0, -14.0), "wrist__radcar": (1.0, 1.0),
    "wrist__nav": (8.0, 9.0), "wrist__lunate": (8.0, -5.0), "wrist__capnlun": (14.0, -2.0),
    "wrist__mna": (15.0, 12.0), "wrist__mul": (19.0, 15.0), "wrist__mc1": (23.0, 17.0),
    "wrist__cmc3": (25.0, 0.0), "wrist__cmc4": (23.0, -9.0), "wrist__cmc5": (21.0, -16.0),
}
FOREARM = {"radius": ((-60.0, 9.0), (-2.0, 9.0)), "ulna": ((-60.0, -14.0), (-3.0, -14.0))}
HINDFOOT = ((-2.0, 0.0), (-80.0, -2.0))

PIXELS_PER_MM = 1.5
MARGIN_MM = 8.0


def _ray(origin, angle: float, lengths) -> list[np.ndarray]:
    """The points ``[origin, end of bone 1, end of bone 2, ...]`` (``(y, x)`` mm) of a straight digit."""
    d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    points = [np.asarray(origin, dtype=float)]
    for length in lengths:
        if length > 0:
            points.append(points[-1] + length * d)
    return points


def limb_layout(limb: str) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """``(site id -> (y, x) mm, bones [(start (y, x), end (y, x)) mm])`` of ``limb``'s schematic (see the module
    docstring for the frame; right limbs mirrored)."""
    if limb not in contract.LIMBS:
        raise ValueError(f"unknown limb {limb!r}; expected one of {contract.LIMBS}")
    sites: dict[str, np.ndarray] = {}
    bones: list[tuple[np.ndarray, np.ndarray]] = []
    if limb in contract.HAND_LIMBS:
        for k, (origin, angle) in HAND_RAYS.items():
            f = FINGERS[k]
            pts = _ray(origin, angle, (f["mc"],) + tuple(f["ph"]))
            bones += list(zip(pts[:-1], pts[1:]))
            sites[f"mcp__{k}"] = pts[1]
            sites["mcp__ip" if k == 1 else f"pip__{k}"] = pts[2]
        bones += [(np.array(a), np.array(b)) for a, b in FOREARM.values()]
        sites.update({name: np.array(yx) for name, yx in WRIST_SITES.items()})
    else:
        for k, (origin, angle) in FOOT_RAYS.items():
            t = TOES[k]
            pts = _ray(origin, angle, (t["mt"],) + tuple(t["ph"]))
            bones += list(zip(pts[:-1], pts[1:]))
            sites[f"mtp__{k}"] = pts[1]
            if k == 1:
                sites["mtp__ip"] = pts[2]
        bones.append((np.array(HINDFOOT[0]), np.array(HINDFOOT[1])))
    mirror = np.array([1.0, -1.0 if contract.is_right(limb) else 1.0])
    out = {f"{limb}_{name}": yx * mirror for name, yx in sites.items()}
    return out, [(a * mirror, b * mirror) for a, b in bones]


def limb_schematic(limb: str, pixels_per_mm: float = PIXELS_PER_MM
                   ) -> tuple[np.ndarray, dict[str, tuple[float, float]]]:
    """A drawn ``limb``: ``(image [H, W] float32 in [0, 1], site id -> centre (y, x) in its pixels)`` with a
    centre for every site of :func:`ra2.contract.sites_of_limb`. The bones are light strokes on a dark ground,
    fingers / toes up; the same limb always gives the same drawing."""
    from PIL import Image, ImageDraw

    sites, bones = limb_layout(limb)
    points = np.array([p for b in bones for p in b] + list(sites.values()))
    low = points.min(axis=0) - MARGIN_MM
    high = points.max(axis=0) + MARGIN_MM
    height = int(np.ceil((high[0] - low[0]) * pixels_per_mm))
    width = int(np.ceil((high[1] - low[1]) * pixels_per_mm))

    def to_pixels(yx: np.ndarray) -> tuple[float, float]:
        return float((high[0] - yx[0]) * pixels_per_mm), float((yx[1] - low[1]) * pixels_per_mm)

    canvas = Image.new("L", (width, height), 25)
    draw = ImageDraw.Draw(canvas)
    stroke = max(2, int(round(4.0 * pixels_per_mm)))
    for a, b in bones:
        (ya, xa), (yb, xb) = to_pixels(a), to_pixels(b)
        draw.line([(xa, ya), (xb, yb)], fill=170, width=stroke)
    centres = {site: to_pixels(yx) for site, yx in sites.items()}
    r = 1.5 * pixels_per_mm
    for y, x in centres.values():
        draw.ellipse([x - r, y - r, x + r, y + r], fill=230)
    return np.asarray(canvas, dtype=np.float32) / 255.0, centres
