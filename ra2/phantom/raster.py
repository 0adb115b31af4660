"""Rasterise a skeleton into an attenuation map (projected density), vectorised per bone bounding box.

Every function writes into ``canvas``: a [H, W] float32 map of line-integrated attenuation (unitless,
0 = nothing in the beam) in canvas pixels. A :class:`Placement` maps anatomy millimetres ``(y, x)`` to
canvas pixels ``(y, x)``: ``px = offset + scale * R @ mm``.

Bone model: a tubular bone is a hollow cylinder (dense cortex around trabecular bone) whose projected
path length gives the bright cortical lines along the shaft; the ends are ellipsoidal caps (convex heads)
or recessed (concave bases) with a thin bright subchondral plate; a trabecular texture modulates the
marrow. Carpal/tarsal bones are hollow ellipsoids. Erosion pits multiply the density by a soft-edged hole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ra2.phantom.anatomy import EllipseBone, LongBone, Pit, Skeleton

# Attenuation per mm of path (arbitrary units tuned by eye for a plausible radiograph).
MU_CORTEX = 0.115
MU_TRABECULAR = 0.038
MU_PLATE = 0.06
MU_SOFT = 0.013


@dataclass
class Placement:
    """Anatomy mm -> canvas px: ``px = offset + scale * rot @ mm`` (both ``(y, x)``)."""

    scale: float  # canvas px per mm
    rot: np.ndarray  # [2, 2]
    offset: np.ndarray  # [2] (y, x) px

    def to_px(self, mm: np.ndarray) -> np.ndarray:
        """[..., (y, x)] mm -> [..., (y, x)] canvas px."""
        return self.offset + self.scale * (np.asarray(mm) @ self.rot.T)

    def to_mm(self, py: np.ndarray, px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canvas pixel centres (arrays of y, x) -> mm coordinates (y, x)."""
        dy, dx = (py - self.offset[0]) / self.scale, (px - self.offset[1]) / self.scale
        r = self.rot
        return r[0, 0] * dy + r[1, 0] * dx, r[0, 1] * dy + r[1, 1] * dx

    def scaled(self, f: float) -> "Placement":
        """The same placement on a canvas resized by factor ``f``."""
        return Placement(self.scale * f, self.rot, self.offset * f)


def rotation(deg: float) -> np.ndarray:
    """[2, 2] matrix turning (y, x) vectors by ``deg`` degrees (clockwise on screen for deg > 0)."""
    r = np.deg2rad(deg)
    c, s = np.cos(r), np.sin(r)
    return np.array([[c, -s], [s, c]])


def _grid(canvas: np.ndarray, pts_px: np.ndarray, pad: float):
    """Bounding-box slices of points in the canvas and the pixel-centre grids inside; None if outside."""
    h, w = canvas.shape
    y0 = max(int(np.floor(pts_px[:, 0].min() - pad)), 0)
    y1 = min(int(np.ceil(pts_px[:, 0].max() + pad)) + 1, h)
    x0 = max(int(np.floor(pts_px[:, 1].min() - pad)), 0)
    x1 = min(int(np.ceil(pts_px[:, 1].max() + pad)) + 1, w)
    if y1 <= y0 or x1 <= x0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    return (slice(y0, y1), slice(x0, x1)), yy + 0.5, xx + 0.5


def _pit_factor(a: np.ndarray, b: np.ndarray, pits: list[Pit], px_mm: float) -> np.ndarray | float:
    """Product of soft-edged holes: 1 away from pits, 1 - depth inside (a, b: local mm grids)."""
    if not pits:
        return 1.0
    f = np.ones_like(a)
    for p in pits:
        d = np.sqrt((a - p.a) ** 2 + (b - p.b) ** 2)
        soft = max(0.2 * p.radius, px_mm)
        f *= 1.0 - p.depth * np.clip((p.radius - d) / soft + 0.5, 0.0, 1.0)
    return f


def _sqrt0(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(x, 0.0))


def draw_long_bone(canvas: np.ndarray, texture: np.ndarray, bone: LongBone, place: Placement,
                   trab_contrast: float) -> None:
    """Add one tubular bone's projected attenuation to ``canvas`` [H, W] (texture: same shape, ~N(0, 1))."""
    g = _grid(canvas, place.to_px(bone.outline()), pad=3.0 + 0.5 * place.scale)
    if g is None:
        return
    sl, yy, xx = g
    my, mx = place.to_mm(yy, xx)
    dy, dx = my - bone.p0[0], mx - bone.p0[1]
    u = dy * bone.axis[0] + dx * bone.axis[1]
    pv = bone.perp
    v = dy * pv[0] + dx * pv[1]
    length = bone.length
    s = np.clip(u / length, 0.0, 1.0)
    flare = lambda t: np.clip(1.0 - t / 0.32, 0.0, 1.0) ** 2  # noqa: E731
    w = bone.wm + (bone.w0 - bone.wm) * flare(s) + (bone.w1 - bone.wm) * flare(1.0 - s)
    # Ends: convex caps shrink the radius beyond the end; concave ends move the end surface.
    if bone.k1 > 0:
        w = np.where(u > length, bone.w1 * _sqrt0(1.0 - ((u - length) / bone.k1) ** 2), w)
        end1 = length + bone.k1 * _sqrt0(1.0 - (v / bone.w1) ** 2)
    else:
        end1 = length + bone.k1 * (1.0 - np.clip(v / bone.w1, -1, 1) ** 2)
    if bone.k0 > 0:
        w = np.where(u < 0, bone.w0 * _sqrt0(1.0 - (u / bone.k0) ** 2), w)
        end0 = -bone.k0 * _sqrt0(1.0 - (v / bone.w0) ** 2)
    else:
        end0 = -bone.k0 * (1.0 - np.clip(v / bone.w0, -1, 1) ** 2)
    inside = (np.abs(v) < w) & (u <= end1) & (u >= end0)
    if not inside.any():
        return
    mid = np.clip(np.minimum(u, length - u) / (0.28 * length), 0.0, 1.0)
    cortex = bone.cortex * bone.wm * (0.3 + 0.7 * mid)
    total = 2.0 * _sqrt0(w * w - v * v)
    inner = 2.0 * _sqrt0((w - cortex) ** 2 - v * v)
    dens = MU_CORTEX * (total - inner) + MU_TRABECULAR * inner * (1.0 + trab_contrast * texture[sl])
    plate_t = 0.35 + 0.05 * bone.w1
    if bone.plate1:
        dens += MU_PLATE * total * np.exp(-(((end1 - u) / plate_t) ** 2)) * 0.5
    if bone.plate0:
        dens += MU_PLATE * total * np.exp(-(((u - end0) / plate_t) ** 2)) * 0.5
    dens *= _pit_factor(u, v, bone.pits, 1.0 / place.scale)
    canvas[sl] += np.where(inside, dens * bone.density, 0.0).astype(np.float32)


def draw_ellipse_bone(canvas: np.ndarray, texture: np.ndarray, bone: EllipseBone, place: Placement,
                      trab_contrast: float) -> None:
    """Add one compact bone (projected hollow ellipsoid) to ``canvas`` [H, W]."""
    g = _grid(canvas, place.to_px(bone.outline(12, grow=0.5)), pad=2.0)
    if g is None:
        return
    sl, yy, xx = g
    my, mx = place.to_mm(yy, xx)
    dy, dx = my - bone.centre[0], mx - bone.centre[1]
    e1, e2 = bone.e1, bone.e2
    s = dy * e1[0] + dx * e1[1]
    t = dy * e2[0] + dx * e2[1]
    q = bone.p
    r2 = (np.abs(s / bone.a) ** q + np.abs(t / bone.b) ** q) ** (2.0 / q)
    inside = r2 < 1.0
    if not inside.any():
        return
    c = 0.5 + 0.04 * min(bone.a, bone.b)
    ai, bi = max(bone.a - c, 0.5), max(bone.b - c, 0.5)
    r2i = (np.abs(s / ai) ** q + np.abs(t / bi) ** q) ** (2.0 / q)
    depth_i = bone.depth * min(ai / bone.a, bi / bone.b)
    total = bone.depth * _sqrt0(1.0 - r2)
    inner = depth_i * _sqrt0(1.0 - r2i)
    dens = MU_CORTEX * (total - inner) + MU_TRABECULAR * inner * (1.0 + trab_contrast * texture[sl])
    dens *= _pit_factor(s, t, bone.pits, 1.0 / place.scale)
    canvas[sl] += np.where(inside, dens * bone.density, 0.0).astype(np.float32)


def draw_bar(canvas: np.ndarray, centre_mm: np.ndarray, axis: np.ndarray, half_len: float, half_wid: float,
             place: Placement, attenuation: float, round_ends: bool = False) -> None:
    """Add a uniform slab (metal ring band, plate, screw) of ``attenuation`` to ``canvas`` [H, W]:
    a rectangle ``2 half_len`` mm along unit ``axis`` by ``2 half_wid`` mm, soft 1-px edges."""
    perp = np.array([axis[1], -axis[0]])
    corners = np.array([centre_mm + sa * half_len * axis + sb * half_wid * perp for sa in (-1, 1) for sb in (-1, 1)])
    g = _grid(canvas, place.to_px(corners), pad=2.0)
    if g is None:
        return
    sl, yy, xx = g
    my, mx = place.to_mm(yy, xx)
    dy, dx = my - centre_mm[0], mx - centre_mm[1]
    a = np.abs(dy * axis[0] + dx * axis[1])
    b = np.abs(dy * perp[0] + dx * perp[1])
    px = 1.0 / place.scale
    if round_ends:
        r = np.sqrt((np.maximum(a - (half_len - half_wid), 0.0)) ** 2 + b ** 2)
        cover = np.clip((half_wid - r) / px + 0.5, 0, 1)
    else:
        cover = np.clip((half_len - a) / px + 0.5, 0, 1) * np.clip((half_wid - b) / px + 0.5, 0, 1)
    canvas[sl] += (attenuation * cover).astype(np.float32)


def trabecular_texture(shape: tuple[int, int], px_per_mm: float, rng: np.random.Generator) -> np.ndarray:
    """[H, W] float32 band-pass noise (~zero mean, unit sd) with a grain of about 0.5 mm, half of it
    streaked along y (trabeculae follow the long axes of digits, which point up). Box filters: cheap."""
    from scipy import ndimage

    noise = rng.standard_normal(shape, dtype=np.float32)
    k = max(2, int(round(0.45 * px_per_mm)))
    iso = ndimage.uniform_filter(noise, size=k, mode="nearest")
    streak = ndimage.uniform_filter(noise, size=(3 * k, max(1, k // 2)), mode="nearest")
    fine = iso / np.float32(iso[::7, ::7].std() or 1.0) + 0.6 * streak / np.float32(streak[::7, ::7].std() or 1.0)
    band = fine - ndimage.uniform_filter(fine, size=4 * k, mode="nearest")
    sd = float(band[::7, ::7].std()) or 1.0
    return band * np.float32(1.0 / sd)


def soft_tissue(shape: tuple[int, int], skel: Skeleton, place: Placement, thickness_mm: float) -> np.ndarray:
    """[H, W] float32 attenuation of the soft tissue: the palm/foot polygons (blurred 5 mm: fleshy,
    rounded outlines) and the digit capsules (blurred 2 mm) drawn at half resolution, combined by maximum,
    scaled so the thickest part is ``thickness_mm`` of tissue."""
    f = 0.5
    h, w = max(1, int(round(shape[0] * f))), max(1, int(round(shape[1] * f)))
    sp = place.scaled(f)
    body = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(body)
    for poly in skel.tissue_polygons:
        pts = sp.to_px(poly)
        draw.polygon([(float(x), float(y)) for y, x in pts], fill=235)
    digits = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(digits)
    for p0, p1, r in skel.tissue_capsules:
        a, b = sp.to_px(p0), sp.to_px(p1)
        rp = r * sp.scale
        draw.line([(float(a[1]), float(a[0])), (float(b[1]), float(b[0]))], fill=200, width=max(1, int(2 * rp)))
        for c in (a, b):
            draw.ellipse([float(c[1] - rp), float(c[0] - rp), float(c[1] + rp), float(c[0] + rp)], fill=200)
    body = body.filter(ImageFilter.GaussianBlur(float(max(1.0, 5.0 * sp.scale))))
    digits = digits.filter(ImageFilter.GaussianBlur(float(max(1.0, 2.0 * sp.scale))))
    img = Image.fromarray(np.maximum(np.asarray(body), np.asarray(digits)))
    img = img.resize((shape[1], shape[0]), Image.BILINEAR)
    t = np.asarray(img, dtype=np.float32) / 235.0
    # A rounded profile: thickness grows like sqrt near the skin edge.
    return (MU_SOFT * thickness_mm * np.sqrt(t)).astype(np.float32)
