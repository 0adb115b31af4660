"""Render one phantom film (hand or foot radiograph) and its detector ground truth.

:func:`render_film` builds the left-limb skeleton (:mod:`ra2.phantom.anatomy`), applies the damage of
the limb's scores (:mod:`ra2.phantom.damage`), rasterises it (:mod:`ra2.phantom.raster`) on a working
canvas of at most ``MAX_CANVAS`` px per side, applies the acquisition (exposure, gamma, heel effect,
collimation, blur), resizes to the film size, mirrors right limbs, adds noise and lead-marker text.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ra2 import contract
from ra2.annotations import FilmAnnotation, ObjectAnnotation
from ra2.phantom import damage, raster
from ra2.phantom.acquisition import Acquisition, sample_acquisition
from ra2.phantom.anatomy import LongBone, Skeleton, build_foot, build_hand, sample_foot_view

MAX_CANVAS = 1100  # working-canvas long side (px); larger films are rendered here and resized
JOINT_BOX_HALF = 1.7  # joint box half-side, in units of the joint's bone half-width
METAL = 3.5  # attenuation of a metal ring band / screw
# Wrist erosion area -> the bone its pits go into.
WRIST_EROSION_BONE = {"wrist__mc1": "mc1", "wrist__mul": "trapezium", "wrist__nav": "scaphoid",
                      "wrist__lunate": "lunate", "wrist__radius": "radius", "wrist__ulna": "ulna"}


def limb_scores(limb: str, scores: dict[str, int]) -> dict[str, dict[str, int]]:
    """The limb's scores by detector class and kind: ``{"pip__2": {"erosion": 1, "narrowing": 0}, ...}``.

    ``scores`` maps column names (any superset of the limb's columns; missing ones count as 0).
    """
    out: dict[str, dict[str, int]] = {}
    for site in contract.sites_of_limb(limb):
        for sc in contract.scores_of_site(site.id):
            value = int(scores.get(sc.column, 0) or 0)
            if not 0 <= value <= sc.max_score:
                raise ValueError(f"{sc.column}={value} outside 0..{sc.max_score}")
            out.setdefault(site.detector_class, {})[sc.kind] = value
    return out


def _site_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index)])


def _build(limb: str, by_class: dict[str, dict[str, int]], anat_rng: np.random.Generator, damage_seed: int,
           spread: float, view_seed: int = 0) -> Skeleton:
    hand = limb in contract.HAND_LIMBS
    classes = [s.detector_class for s in contract.sites_of_limb(limb)]
    site_rngs = {c: _site_rng(damage_seed, i) for i, c in enumerate(classes)}
    gaps = {c: damage.gap_factor(by_class[c].get(contract.NARROWING, 0), site_rngs[c]) for c in classes}
    extra = {k: float(v) for k, v in zip(
        ["ip", "dip__2", "dip__3", "dip__4", "dip__5", "toe_pip__2", "toe_pip__3", "toe_pip__4", "toe_pip__5",
         "toe_dip__2", "toe_dip__3", "toe_dip__4", "toe_dip__5"], anat_rng.uniform(0.55, 1.15, size=13))}
    if hand:
        skel = build_hand(anat_rng, gaps, spread, extra)
    else:  # the foot's view comes from its own generator: hand films draw exactly what they always drew
        skel = build_foot(anat_rng, gaps, spread, extra, view=sample_foot_view(np.random.default_rng([view_seed, 19])))
    bone_density = float(anat_rng.uniform(0.82, 1.12))  # the patient's bone mineral density
    for bone in skel.bones.values():
        bone.density *= bone_density
    for c in classes:
        e = by_class[c].get(contract.EROSION, 0)
        r = site_rngs[c]
        if c in WRIST_EROSION_BONE:
            bone = skel.bones[WRIST_EROSION_BONE[c]]
            if isinstance(bone, LongBone):  # distal radius/ulna, or the base of MC1
                damage.end_pits(e, e, bone, distal_end=(bone.name != "mc1"), rng=r)
            else:
                damage.ellipse_pits(e, bone, r)
            continue
        if c.startswith("wrist__"):
            continue  # narrowing-only wrist areas: the gap is already set
        j = skel.joints[c]
        prox, dist = skel.bones[j.proximal], skel.bones[j.distal]
        assert isinstance(prox, LongBone) and isinstance(dist, LongBone)
        damage.joint_pits(e, not hand, prox, dist, r)
    return skel


def _fit_points(skel: Skeleton) -> np.ndarray:
    """[N, (y, x)] mm that must lie inside the film: everything but the proximal forearm and the bones in
    ``skel.fit_exclude`` (a forefoot film's hindfoot)."""
    pts = []
    for name, b in skel.bones.items():
        if name in ("radius", "ulna"):
            pts.append(np.array([b.point(b.length - 35.0, s * b.wm) for s in (-1, 1)]))
            pts.append(np.array([b.point(b.length, s * b.w1) for s in (-1, 1)]))
        elif name in skel.fit_exclude:
            continue
        else:
            pts.append(b.outline())
    # A hand's last capsule is the forearm, a foot's sixth the leg: they may run off the film.
    for _, p1, r in skel.tissue_capsules[:-1] if skel.limb_type == "hand" else skel.tissue_capsules[:5]:
        pts.append(p1 + r * np.array([[1, 0], [-1, 0], [0, 1], [0, -1]]))
    if skel.limb_type == "foot" and "talus" not in skel.fit_exclude:  # a whole-foot film: the heel pad too
        pts.extend(skel.tissue_polygons)
    return np.concatenate(pts)


def _placement(skel: Skeleton, acq: Acquisition) -> raster.Placement:
    """Fit the limb (rotated by ``acq.rotation``) into the collimated field of the film (film px)."""
    rot = raster.rotation(acq.rotation)
    pts = _fit_points(skel) @ rot.T
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    cy1, cx1, cy2, cx2 = acq.field
    avail = np.array([cy2 - cy1, cx2 - cx1]) * 0.94
    scale = float(min(avail / (hi - lo))) * acq.fill
    slack = avail - scale * (hi - lo)
    centre = np.array([(cy1 + cy2) / 2, (cx1 + cx2) / 2]) + (acq.shift - 0.5) * slack * 0.6
    offset = centre - scale * (lo + hi) / 2
    return raster.Placement(scale=scale, rot=rot, offset=offset)


def _metal(canvas: np.ndarray, skel: Skeleton, place: raster.Placement, acq: Acquisition) -> None:
    if acq.ring_finger is not None and skel.ring_sites:
        centre, axis, r = skel.ring_sites[acq.ring_finger % len(skel.ring_sites)]
        perp = np.array([axis[1], -axis[0]])
        raster.draw_bar(canvas, centre, perp, r * 0.95, 1.3, place, METAL, round_ends=True)
    if acq.plate:
        bone = skel.bones["radius"] if "radius" in skel.bones else skel.bones["mt1"]
        assert isinstance(bone, LongBone)
        along = bone.length * (0.62 if bone.name == "radius" else 0.45)
        centre = bone.point(along, 0.3 * bone.wm)
        half = 24.0 if bone.name == "radius" else 14.0
        raster.draw_bar(canvas, centre, bone.axis, half, bone.wm * 0.75, place, 1.4, round_ends=True)
        for k in np.linspace(-0.75, 0.75, 4 if bone.name == "radius" else 3):
            c = centre + k * half * bone.axis
            raster.draw_bar(canvas, c, bone.perp, bone.wm * 1.25, 1.1, place, METAL * 0.7)


def _circle(centre: np.ndarray, radius: float, k: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return centre + radius * np.stack([np.sin(t), np.cos(t)], axis=1)


def _clip_poly(poly: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Clip [K, (y, x)] vertices into ``box`` and round them to 0.01 px (the precision of the JSON file)."""
    y1, x1, y2, x2 = box
    clipped = np.stack([np.clip(poly[:, 0], y1, y2), np.clip(poly[:, 1], x1, x2)], axis=1)
    return np.round(clipped, 2).astype(np.float32)


def _box_of(poly: np.ndarray) -> tuple[float, float, float, float]:
    return (float(poly[:, 0].min()), float(poly[:, 1].min()), float(poly[:, 0].max()), float(poly[:, 1].max()))


def annotate(skel: Skeleton, place: raster.Placement, limb: str, height: int, width: int,
             patient_id: str) -> FilmAnnotation:
    """Detector ground truth of one film from its skeleton and film placement (film px, mirrored for R)."""
    mirror = contract.is_right(limb)

    def to_film(poly_mm: np.ndarray) -> np.ndarray:
        p = place.to_px(poly_mm)
        if mirror:
            p = np.stack([p[:, 0], width - p[:, 1]], axis=1)
        return _clip_poly(p, (0.0, 0.0, float(height), float(width)))

    film = FilmAnnotation(patient_id=patient_id, limb=limb, file_name=contract.film_name(patient_id, limb),
                          height=height, width=width, carpus_box=None, objects=[])
    site_of = {s.detector_class: s.id for s in contract.sites_of_limb(limb)}
    main_det = contract.film_detector(limb)
    for cls in contract.DETECTOR_CLASSES[main_det]:
        if cls == contract.CARPUS_CLASS:
            poly = to_film(skel.carpus)
            y1, x1, y2, x2 = _box_of(poly)
            cb = (float(np.floor(y1)), float(np.floor(x1)), float(np.ceil(y2)), float(np.ceil(x2)))
            film.carpus_box = tuple(int(v) for v in cb)
            film.objects.append(ObjectAnnotation(main_det, cls, None, cb, poly))
            continue
        j = skel.joints[cls]
        poly = to_film(_circle(j.centre, JOINT_BOX_HALF * j.half_width))
        film.objects.append(ObjectAnnotation(main_det, cls, site_of[cls], _box_of(poly), poly))
    if film.carpus_box is not None:
        cy1, cx1, cy2, cx2 = film.carpus_box
        for det in contract.CARPUS_DETECTORS:
            for cls in contract.DETECTOR_CLASSES[det]:
                poly = _clip_poly(to_film(skel.regions[cls].polygon), (cy1, cx1, cy2, cx2))
                local = np.round(poly - np.array([cy1, cx1], dtype=np.float32), 2).astype(np.float32)
                film.objects.append(ObjectAnnotation(det, cls, site_of[cls], _box_of(poly), poly,
                                                     box_in_carpus=_box_of(local), polygon_in_carpus=local))
    return film


def _markers(img: Image.Image, limb: str, acq: Acquisition, limb_box: tuple[float, float, float, float]) -> None:
    """Lead side marker ("L"/"R") and an ID text line, placed in corners away from the limb."""
    h, w = img.height, img.width
    draw = ImageDraw.Draw(img)
    size = max(8, int(acq.marker_size * min(h, w)))
    font = ImageFont.load_default(size)
    letter = limb[0]
    margin = int(0.03 * min(h, w)) + 2
    y1, x1, y2, x2 = limb_box
    corners = []
    for cy in (0, 1):
        for cx in (0, 1):
            ty = margin if cy == 0 else h - margin - int(size * 1.3)
            tx = margin if cx == 0 else w - margin - int(size * 1.0)
            overlap = max(0, min(ty + size * 1.3, y2) - max(ty, y1)) * max(0, min(tx + size, x2) - max(tx, x1))
            corners.append((overlap, (cy, cx), ty, tx))
    corners.sort(key=lambda c: (c[0], acq.marker_corner_pref.index(c[1])))
    _, _, ty, tx = corners[0]
    if acq.marker_boxed:
        pad = max(1, size // 6)
        draw.rectangle([tx - pad, ty - pad, tx + int(size * 0.8) + pad, ty + int(size * 1.15) + pad],
                       fill=int(acq.marker_bg))
    draw.text((tx, ty), letter, fill=int(acq.marker_value), font=font)
    if acq.text is not None:
        _, (_, right), ty2, _ = corners[1]
        small = ImageFont.load_default(max(6, size // 3))
        tw = int(np.ceil(draw.textlength(acq.text, font=small)))
        tx2 = max(0, w - margin - tw) if right else margin
        # Printed text is light on a dark field and dark on a bright (collimated) border.
        under = np.asarray(img)[ty2:ty2 + max(1, size // 3), tx2:tx2 + max(1, tw)]
        fill = int(acq.marker_value) if under.size == 0 or under.mean() < 128 else int(acq.marker_bg)
        draw.text((tx2, ty2), acq.text, fill=fill, font=small)


def render_film(limb: str, scores: dict[str, int], rng: np.random.Generator, size_scale: float = 1.0,
                patient_id: str = "PHA0000") -> tuple[np.ndarray, FilmAnnotation]:
    """Render one film of ``limb`` with the damage of ``scores`` (column -> score; missing columns = 0).

    Returns ``(image, annotation)``: image ``[H, W]`` uint8 (fingers/toes up; right limbs mirrored) and its
    :class:`FilmAnnotation` (boxes ``(y1, x1, y2, x2)`` in pixels of this image). ``size_scale`` scales the
    film size (1.0: about 1000-3000 px per side). The draws from ``rng`` do not depend on the scores or on
    the side, so an ``RH`` film rendered with the same generator state and mirrored ``LH`` scores is the
    mirror image of the ``LH`` film (apart from the side marker).
    """
    if limb not in contract.LIMBS:
        raise ValueError(f"unknown limb {limb!r}; expected one of {contract.LIMBS}")
    if not size_scale > 0:
        raise ValueError(f"size_scale must be > 0, got {size_scale}")
    by_class = limb_scores(limb, scores)
    anat_seed, damage_seed, acq_seed, tex_seed, noise_seed = (int(v) for v in rng.integers(0, 2**63 - 1, size=5))
    anat_rng = np.random.default_rng(anat_seed)
    acq = sample_acquisition(np.random.default_rng(acq_seed), limb, size_scale)
    skel = _build(limb, by_class, anat_rng, damage_seed, acq.spread, view_seed=acq_seed)
    place = _placement(skel, acq)
    height, width = acq.height, acq.width

    f = min(1.0, MAX_CANVAS / max(height, width))
    ch, cw = max(8, int(round(height * f))), max(8, int(round(width * f)))
    fy, fx = ch / height, cw / width  # equal up to rounding; the canvas is resized to the film at the end
    cplace = raster.Placement(place.scale * (fy + fx) / 2, place.rot, place.offset * np.array([fy, fx]))
    canvas = raster.soft_tissue((ch, cw), skel, cplace, acq.tissue_mm)
    texture = raster.trabecular_texture((ch, cw), cplace.scale, np.random.default_rng(tex_seed))
    for bone in skel.bones.values():
        if isinstance(bone, LongBone):
            raster.draw_long_bone(canvas, texture, bone, cplace, acq.trab_contrast)
        else:
            raster.draw_ellipse_bone(canvas, texture, bone, cplace, acq.trab_contrast)
    _metal(canvas, skel, cplace, acq)
    img = acq.develop(canvas)  # [ch, cw] float32 0..255, collimation and blur applied
    pil = Image.fromarray(img)
    if (ch, cw) != (height, width):
        pil = pil.resize((width, height), Image.BICUBIC)
    arr = np.asarray(pil.convert("L"))
    noise_rng = np.random.default_rng(noise_seed)
    k = acq.noise_levels
    noise = noise_rng.integers(-k, k + 1, size=arr.shape, dtype=np.int16)
    noise += noise_rng.integers(-k, k + 1, size=arr.shape, dtype=np.int16)
    out = arr.astype(np.int16) + noise
    np.clip(out, 0, 255, out=out)
    out = out.astype(np.uint8)
    if contract.is_right(limb):  # mirror the whole left-limb film (noise included); markers come after
        out = np.ascontiguousarray(out[:, ::-1])
    pil = Image.fromarray(out)
    ann = annotate(skel, place, limb, height, width, patient_id)
    all_boxes = np.array([o.box for o in ann.objects])
    limb_box = (all_boxes[:, 0].min(), all_boxes[:, 1].min(), all_boxes[:, 2].max(), all_boxes[:, 3].max())
    _markers(pil, limb, acq, limb_box)
    return np.asarray(pil, dtype=np.uint8).copy(), ann


__all__ = ["render_film", "annotate", "limb_scores"]
