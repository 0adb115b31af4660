"""Skeleton geometry of a left hand or left foot, in millimetres, fingers/toes pointing up.

Coordinates are ``(y, x)`` millimetres with y growing downwards (image convention), so "distal" is
towards smaller y. The left hand is drawn as on a postero-anterior film: thumb on the right (+x), the
little finger on the left; the left foot likewise has the big toe on the right. Right limbs are rendered
as the mirror image of this anatomy (see :mod:`ra2.phantom.render`).

A skeleton is a list of bones (:class:`LongBone` for the tubular bones, :class:`EllipseBone` for carpal
and tarsal bones and sesamoids), the joints between them (:class:`Joint`) and the soft-tissue outline.
Joint gaps are set from per-joint *gap factors* (1 = normal width, 0 = ankylosis) so that narrowing
moves the distal bones, exactly as a collapsing joint shortens a real digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ra2.schematic import FINGERS, TOES


def direction(deg: float) -> np.ndarray:
    """Unit vector (dy, dx) pointing ``deg`` degrees from straight up (-y) towards +x."""
    r = np.deg2rad(deg)
    return np.array([-np.cos(r), np.sin(r)])


def perpendicular(axis: np.ndarray) -> np.ndarray:
    """The axis turned by 90 degrees: for "up" (-1, 0) this is +x (0, 1)."""
    return np.array([axis[1], -axis[0]])


@dataclass
class Pit:
    """An erosion: a soft-edged disc of lost bone in the bone's local frame (mm).

    For a :class:`LongBone` ``(a, b)`` = (u along the axis from the base, v across it); for an
    :class:`EllipseBone` (s along ``e1``, t along ``e2``) relative to its centre.
    """

    a: float
    b: float
    radius: float
    depth: float  # fraction of the bone density removed at the pit centre, 0..1


@dataclass
class LongBone:
    """A tubular bone: base at ``p0`` (mm), shaft along unit ``axis``, shoulder of the head at u = length.

    Half-widths ``w0`` (base), ``wm`` (mid-shaft), ``w1`` (head). End shapes: ``k0``/``k1`` > 0 is a
    convex cap bulging that far beyond the end, < 0 a concave end recessed that far at its centre.
    ``plate0``/``plate1``: draw a bright subchondral plate at that end (articular surfaces).
    """

    name: str
    p0: np.ndarray
    axis: np.ndarray
    length: float
    w0: float
    wm: float
    w1: float
    k0: float
    k1: float
    cortex: float = 0.22  # cortical thickness at mid-shaft, fraction of wm
    plate0: bool = True
    plate1: bool = True
    density: float = 1.0
    pits: list[Pit] = field(default_factory=list)

    @property
    def perp(self) -> np.ndarray:
        return perpendicular(self.axis)

    def point(self, u: float, v: float = 0.0) -> np.ndarray:
        """Local (u, v) mm -> (y, x) mm."""
        return self.p0 + u * self.axis + v * self.perp

    @property
    def tip(self) -> np.ndarray:
        """Centre of the distal articular surface."""
        return self.point(self.length + self.k1)

    @property
    def base(self) -> np.ndarray:
        """Centre of the proximal articular surface."""
        return self.point(-self.k0)

    def outline(self) -> np.ndarray:
        """[8, (y, x)] mm points bounding the bone (for boxes and soft tissue)."""
        u0, u1 = -max(self.k0, 0.0), self.length + max(self.k1, 0.0)
        pts = [self.point(u0, 0), self.point(0, -self.w0), self.point(0, self.w0),
               self.point(self.length / 2, -self.wm), self.point(self.length / 2, self.wm),
               self.point(self.length, -self.w1), self.point(self.length, self.w1), self.point(u1, 0)]
        return np.array(pts)


@dataclass
class EllipseBone:
    """A compact bone drawn as a projected super-ellipsoid: centre (mm), semi-axes ``a`` along unit ``e1``,
    ``b`` across it, exponent ``p`` (2 = ellipse, larger = boxier, so carpal bones pack like real ones);
    ``depth`` = its thickness through the film (mm) at the centre."""

    name: str
    centre: np.ndarray
    a: float
    b: float
    e1: np.ndarray
    depth: float
    p: float = 2.0
    density: float = 1.0
    pits: list[Pit] = field(default_factory=list)

    @property
    def e2(self) -> np.ndarray:
        return perpendicular(self.e1)

    def outline(self, k: int = 24, grow: float = 0.0) -> np.ndarray:
        """[k, (y, x)] mm points on the boundary grown by ``grow`` mm."""
        t = np.linspace(0, 2 * np.pi, k, endpoint=False)
        c, s = np.cos(t), np.sin(t)
        e = 2.0 / self.p
        cs = np.sign(c) * np.abs(c) ** e
        ss = np.sign(s) * np.abs(s) ** e
        return (self.centre + np.outer((self.a + grow) * cs, self.e1) + np.outer((self.b + grow) * ss, self.e2))

    def support(self, d: np.ndarray) -> np.ndarray:
        """The boundary point farthest along unit direction ``d`` (y, x) mm (sampled, 1 degree)."""
        pts = self.outline(360)
        return pts[int(np.argmax(pts @ d))]


Bone = LongBone | EllipseBone


@dataclass
class Joint:
    """A joint between two bones: ``centre`` of the gap (mm), unit ``axis`` (proximal -> distal),
    ``half_width`` (mm, the wider bone end), ``gap`` (mm at the centre; 0 = ankylosis)."""

    key: str
    centre: np.ndarray
    axis: np.ndarray
    half_width: float
    gap: float
    proximal: str
    distal: str
    ankylosed: bool = False


@dataclass
class Region:
    """A wrist area (erosion bone or narrowing gap) as a polygon [K, (y, x)] mm."""

    key: str
    polygon: np.ndarray


@dataclass
class Skeleton:
    """Bones, joints, wrist areas and soft-tissue shapes of one limb (mm, left-limb anatomy)."""

    limb_type: str  # "hand" | "foot"
    bones: dict[str, Bone]
    joints: dict[str, Joint]
    regions: dict[str, Region]
    carpus: np.ndarray | None  # [K, (y, x)] mm outline points of the carpus region (hands)
    tissue_capsules: list[tuple[np.ndarray, np.ndarray, float]]  # (p0, p1, radius) mm
    tissue_polygons: list[np.ndarray]  # [K, (y, x)] mm
    ring_sites: list[tuple[np.ndarray, np.ndarray, float]]  # (centre, axis, soft-tissue radius) mm
    fit_exclude: tuple[str, ...] = ()  # bones that may run off the film (a forefoot film's hindfoot)
    view: str = "dp"  # how the film was taken: hands "dp"; feet "whole", "forefoot" or "oblique"


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull [K, (y, x)] of [N, (y, x)] points (monotone chain, counter-clockwise in (x, y))."""
    pts = sorted({(float(p[1]), float(p[0])) for p in points})
    if len(pts) < 3:
        return np.array([(y, x) for x, y in pts])

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    return np.array([(y, x) for x, y in hull])


def _chain(bones: dict, joints: dict, first: LongBone, specs: list[dict],
           joint_keys: list[str], gaps: list[float], angles: list[float], ankylosed: list[bool]) -> list[LongBone]:
    """Append a chain of long bones distal to ``first``: each spec gives name/length/widths/shape; the
    joint before bone i has key ``joint_keys[i]``, gap ``gaps[i]`` mm and the axis turned ``angles[i]``."""
    prev = first
    out = []
    for spec, jkey, gap, turn, ank in zip(specs, joint_keys, gaps, angles, ankylosed):
        axis_deg = np.rad2deg(np.arctan2(prev.axis[1], -prev.axis[0])) + turn
        axis = direction(axis_deg)
        centre = prev.tip + 0.5 * gap * prev.axis
        p0 = centre + (0.5 * gap + spec["k0"]) * axis
        bone = LongBone(name=spec["name"], p0=p0, axis=axis, length=spec["length"], w0=spec["w0"],
                        wm=spec["wm"], w1=spec["w1"], k0=spec["k0"], k1=spec["k1"],
                        cortex=spec.get("cortex", 0.24), plate1=spec.get("plate1", True))
        bones[bone.name] = bone
        if ank:  # ankylosis: no articular plates, a bridge of bone across the former gap
            prev.plate1 = False
            bone.plate0 = False
            half = max(prev.k1, 0.5) + max(-bone.k0, 0.0)
            wb = 0.85 * min(prev.w1, bone.w0)
            bones[f"{jkey}_fusion"] = EllipseBone(f"{jkey}_fusion", centre=centre.copy(), a=wb, b=half,
                                                  e1=perpendicular(axis), depth=wb, p=2.4, density=0.4)
        joints[jkey] = Joint(key=jkey, centre=centre, axis=(prev.axis + axis) / np.linalg.norm(prev.axis + axis),
                             half_width=max(prev.w1, bone.w0), gap=gap, proximal=prev.name, distal=bone.name,
                             ankylosed=ank)
        out.append(bone)
        prev = bone
    return out


def stack_shift(moving: np.ndarray, fixed: np.ndarray, d: np.ndarray, gap: float, bin_mm: float = 0.5) -> float:
    """Distance to move points ``moving`` [N, (y, x)] along unit ``d`` so that, over the lateral range where
    they face ``fixed`` [M, (y, x)], the smallest clearance along ``d`` is ``gap`` mm."""
    perp = perpendicular(d)
    pm, dm = moving @ perp, moving @ d
    pf, df = fixed @ perp, fixed @ d
    lo, hi = max(pm.min(), pf.min()), min(pm.max(), pf.max())
    if hi <= lo:  # not facing: fall back to the extreme points
        return float(gap - (dm.min() - df.max()))
    edges = np.arange(lo, hi + bin_mm, bin_mm)
    im, jf = np.digitize(pm, edges), np.digitize(pf, edges)
    clear = np.inf
    for k in range(1, len(edges)):
        a, b = dm[im == k], df[jf == k]
        if a.size and b.size:
            clear = min(clear, float(a.min() - b.max()))
    if not np.isfinite(clear):
        clear = float(dm.min() - df.max())
    return float(gap - clear)


# Normal joint-gap widths (mm) before narrowing; chosen slightly wide so gaps stay visible on small films.
NORMAL_GAP = {"mcp": 2.2, "pip": 1.7, "dip": 1.3, "ip": 1.5, "mtp": 2.2, "toe": 1.3,
              "cmc": 1.6, "mna": 1.8, "capnlun": 1.9, "radcar": 2.2}

def build_hand(rng: np.random.Generator, gap_factor: dict[str, float], spread: float,
               extra_gap_factor: dict[str, float]) -> Skeleton:
    """A left hand: radius/ulna, 8 carpal bones, 5 metacarpals, 14 phalanges.

    ``gap_factor``: class name (``pip__2``, ``mcp__1``, ``wrist__cmc3``, ...) -> multiplier of the normal
    gap (0 = ankylosis); missing keys mean 1. ``extra_gap_factor``: the same for unscored joints
    (``dip__2``..``dip__5``, ``ip``). ``spread``: finger spread, 0 (closed) .. 1 (wide). ``rng`` draws the
    individual anatomy (bone sizes, finger angles); its number of draws never depends on the gap factors.
    """
    size = rng.uniform(0.9, 1.1)
    jit = lambda n, s=0.05: 1.0 + rng.uniform(-s, s, size=n)  # noqa: E731
    len_j = jit(20)
    wid_j = jit(20, 0.06)
    turns = rng.normal(0.0, 3.0, size=(6, 4))
    carp_j = jit(16, 0.07)
    bones: dict[str, Bone] = {}
    joints: dict[str, Joint] = {}
    regions: dict[str, Region] = {}

    def g(key: str, kind: str) -> float:
        return NORMAL_GAP[kind] * size * max(0.0, gap_factor.get(key, 1.0))

    up = direction(0.0)
    # Forearm: radius on the thumb side, ulna on the little-finger side; radiocarpal line at y = 0.
    radius = LongBone("radius", p0=np.array([95.0, 9.0]) * size, axis=up, length=95.0 * size,
                      w0=8.0 * size, wm=7.0 * size, w1=13.5 * size * wid_j[0], k0=0.0, k1=-2.2 * size,
                      cortex=0.26, plate0=False)
    ulna = LongBone("ulna", p0=np.array([95.0, -14.0]) * size, axis=direction(-2.0), length=92.0 * size,
                    w0=6.5 * size, wm=5.6 * size, w1=7.6 * size * wid_j[1], k0=0.0, k1=3.0 * size,
                    cortex=0.26, plate0=False)
    bones["radius"], bones["ulna"] = radius, ulna
    # Styloid processes: the radial one at the thumb-side corner of the radius, the ulnar one beyond the
    # ulnar head (drawn as small compact bones overlapping the ends).
    bones["radial_styloid"] = EllipseBone("radial_styloid", centre=radius.point(radius.length - 1.0 * size,
                                                                                 radius.w1 - 2.8 * size),
                                          a=5.5 * size, b=2.8 * size, e1=radius.axis, depth=5.0 * size, p=2.2,
                                          density=0.6)
    bones["ulnar_styloid"] = EllipseBone("ulnar_styloid", centre=ulna.point(ulna.length + 0.2 * ulna.k1,
                                                                            -0.62 * ulna.w1),
                                         a=4.0 * size, b=1.9 * size, e1=ulna.axis, depth=3.5 * size, p=2.2,
                                         density=0.6)
    rad_surface = radius.tip  # centre of the concave distal articular surface

    def carpal(name, a, b, angle, depth_k, j):
        return EllipseBone(name, centre=np.zeros(2), a=a * size * carp_j[j], b=b * size * carp_j[j + 8],
                           e1=direction(angle), depth=0.6 * depth_k * size * min(a, b) * 2.0, p=2.7)

    scaph = carpal("scaphoid", 12.0, 6.6, 50.0, 1.2, 0)
    lunate = carpal("lunate", 8.2, 8.0, 0.0, 1.2, 1)
    triq = carpal("triquetrum", 7.6, 6.4, -35.0, 1.2, 2)
    pisi = carpal("pisiform", 5.0, 4.4, 20.0, 1.0, 3)
    trapm = carpal("trapezium", 8.2, 7.0, 35.0, 1.2, 4)
    trapd = carpal("trapezoid", 6.6, 5.6, 10.0, 1.2, 5)
    capit = carpal("capitate", 11.5, 7.4, 2.0, 1.2, 6)
    hamat = carpal("hamate", 10.0, 7.6, -12.0, 1.2, 7)
    rad_pts = np.array([radius.point(radius.length + radius.k1 * (1 - (v / radius.w1) ** 2), v)
                        for v in np.linspace(-radius.w1, radius.w1, 60)])
    ulna_pts = ulna.outline()

    def put(bone: EllipseBone, lateral: float, below: list[np.ndarray], d: np.ndarray, gap: float) -> None:
        """Centre ``bone`` at ``lateral`` mm (x, relative to the radius surface) and slide it along ``d``
        until it clears the points ``below`` by ``gap`` mm."""
        bone.centre = np.array([rad_surface[0], rad_surface[1] + lateral * size]) + 60.0 * size * d
        pts = bone.outline(180)
        bone.centre = bone.centre + stack_shift(pts, np.concatenate(below), d, gap) * d

    # Proximal row on the radius (radiocarpal gap), triquetrum over the ulna (TFCC space, unscored).
    g_rc = g("wrist__radcar", "radcar")
    put(scaph, 9.0, [rad_pts], up, g_rc)
    put(lunate, -5.5, [rad_pts], up, g_rc)
    put(triq, -14.5, [ulna_pts, lunate.outline(180)], direction(-30.0), 1.2 * size)
    pisi.centre = triq.centre + np.array([2.0, -3.0]) * size
    # Distal row: capitate/hamate on the lunate/scaphoid (capnlun), trapezium/trapezoid on the scaphoid (mna).
    g_cl = g("wrist__capnlun", "capnlun")
    g_mna = g("wrist__mna", "mna")
    stt_dir = direction(25.0)
    put(capit, -1.0, [scaph.outline(180), lunate.outline(180)], up, g_cl)
    put(hamat, -14.5, [lunate.outline(180), triq.outline(180)], up, g_cl)
    put(trapd, 10.5, [scaph.outline(180)], up, g_mna)
    put(trapm, 14.5, [scaph.outline(180)], stt_dir, g_mna)
    for b in (scaph, lunate, triq, pisi, trapm, trapd, capit, hamat):
        bones[b.name] = b
    joints["wrist__radcar"] = Joint("wrist__radcar", rad_surface + 0.5 * g_rc * up, up, 13.0 * size, g_rc,
                                    "radius", "lunate", ankylosed=gap_factor.get("wrist__radcar", 1) <= 0)
    cl_centre = capit.support(-up) - 0.5 * g_cl * up
    joints["wrist__capnlun"] = Joint("wrist__capnlun", cl_centre, up, 9.0 * size, g_cl, "lunate", "capitate",
                                     ankylosed=gap_factor.get("wrist__capnlun", 1) <= 0)
    mna_centre = trapm.support(-stt_dir) - 0.5 * g_mna * stt_dir
    joints["wrist__mna"] = Joint("wrist__mna", mna_centre, stt_dir, 7.0 * size, g_mna, "scaphoid", "trapezium",
                                 ankylosed=gap_factor.get("wrist__mna", 1) <= 0)

    # Metacarpals: bases on the distal carpal row; fan angles widen with the spread.
    fan = {1: 24.0 + 14.0 * spread, 2: 5.0 + 3.0 * spread, 3: 0.0, 4: -4.0 - 3.0 * spread, 5: -9.0 - 6.0 * spread}
    seat = {1: (trapm, [trapm], 3.0, NORMAL_GAP["cmc"] * size),
            2: (trapd, [trapd, trapm, capit], 0.5, NORMAL_GAP["cmc"] * size),
            3: (capit, [capit, trapd], 0.0, g("wrist__cmc3", "cmc")),
            4: (hamat, [hamat, capit], 3.0, g("wrist__cmc4", "cmc")),
            5: (hamat, [hamat], -4.5, g("wrist__cmc5", "cmc"))}
    capsules = []
    ring_sites = []
    for f in range(1, 6):
        spec = FINGERS[f]
        carp, below, lateral, gap = seat[f]
        angle = fan[f] + turns[f, 0]
        axis = direction(angle)
        mcl = spec["mc"] * size * len_j[f]
        w0, wm, w1 = (w * size * wid_j[f] for w in spec["mcw"])
        k0 = -0.8 * size
        start = carp.centre + lateral * size * perpendicular(axis) - 40.0 * size * axis
        mc = LongBone(f"mc{f}", p0=start, axis=axis, length=mcl, w0=w0, wm=wm, w1=w1, k0=k0, k1=0.62 * w1,
                      cortex=0.26)
        base_pts = np.array([mc.point(-k0 * (1 - (v / w0) ** 2), v) for v in np.linspace(-w0, w0, 40)])
        mc.p0 = mc.p0 + stack_shift(base_pts, np.concatenate([b.outline(180) for b in below]), axis, gap) * axis
        seat_pt = mc.base - gap * axis
        bones[mc.name] = mc
        key = {1: None, 2: None, 3: "wrist__cmc3", 4: "wrist__cmc4", 5: "wrist__cmc5"}[f]
        if key is not None:
            joints[key] = Joint(key, seat_pt + 0.5 * gap * axis, axis, w0, gap, carp.name, mc.name,
                                ankylosed=gap_factor.get(key, 1) <= 0)
        else:
            joints[f"cmc{f}"] = Joint(f"cmc{f}", seat_pt + 0.5 * gap * axis, axis, w0, gap, carp.name, mc.name)
        pl = [v * size * len_j[5 + f] for v in spec["ph"]]
        pw0, pwm, pw1 = (v * size * wid_j[5 + f] for v in spec["phw"])
        if f == 1:
            specs = [dict(name="pp1", length=pl[0], w0=pw0, wm=pwm, w1=pw1, k0=-1.6 * size, k1=0.5 * pw1),
                     dict(name="dp1", length=pl[2], w0=pw1 * 0.95, wm=pwm * 0.7, w1=pwm * 0.85,
                          k0=-0.9 * size, k1=1.5 * size, plate1=False)]
            keys = ["mcp__1", "mcp__ip"]
            gaps = [g("mcp__1", "mcp"), NORMAL_GAP["ip"] * size * extra_gap_factor.get("ip", 1.0)]
            anks = [gap_factor.get("mcp__1", 1) <= 0, False]
        else:
            specs = [dict(name=f"pp{f}", length=pl[0], w0=pw0, wm=pwm, w1=pw1 * 0.92, k0=-1.8 * size, k1=0.45 * pw1),
                     dict(name=f"mp{f}", length=pl[1], w0=pw1 * 0.95, wm=pwm * 0.8, w1=pw1 * 0.8,
                          k0=-1.3 * size, k1=0.4 * pw1),
                     dict(name=f"dp{f}", length=pl[2], w0=pw1 * 0.75, wm=pwm * 0.5, w1=pwm * 0.62,
                          k0=-0.7 * size, k1=1.4 * size, plate1=False)]
            keys = [f"mcp__{f}", f"pip__{f}", f"dip__{f}"]
            gaps = [g(f"mcp__{f}", "mcp"), g(f"pip__{f}", "pip"),
                    NORMAL_GAP["dip"] * size * extra_gap_factor.get(f"dip__{f}", 1.0)]
            anks = [gap_factor.get(keys[0], 1) <= 0, gap_factor.get(keys[1], 1) <= 0, False]
        angles = [float(turns[f, 1 + i]) * 0.6 for i in range(len(specs))]
        chain = _chain(bones, joints, mc, specs, keys, gaps, angles, anks)
        tissue_r = 1.75 * pwm + 2.0 * size
        last = chain[-1]
        capsules.append((mc.point(mcl * 0.55), last.tip - (tissue_r - 3.5 * size) * last.axis, tissue_r))
        pp = chain[0]
        ring_sites.append((pp.point(pp.length * 0.45), pp.axis, tissue_r))
    mc1 = bones["mc1"]  # the thumb's sesamoid bones over the MC1 head
    for side, name in ((1, "sesamoid_thumb_radial"), (-1, "sesamoid_thumb_ulnar")):
        c = mc1.point(mc1.length - 2.5 * size, side * 3.6 * size)
        bones[name] = EllipseBone(name, centre=c, a=2.6 * size, b=2.1 * size, e1=mc1.axis, depth=3.5 * size)
    # Wrist areas (erosion: the named bone; narrowing: the gap) as polygons.
    regions["wrist__mc1"] = Region("wrist__mc1", _end_box(bones["mc1"], base=True, size=size))
    regions["wrist__mul"] = Region("wrist__mul", trapm.outline(grow=1.5 * size))
    regions["wrist__nav"] = Region("wrist__nav", scaph.outline(grow=1.5 * size))
    regions["wrist__lunate"] = Region("wrist__lunate", lunate.outline(grow=1.5 * size))
    regions["wrist__radius"] = Region("wrist__radius", _end_box(radius, base=False, size=size))
    regions["wrist__ulna"] = Region("wrist__ulna", _end_box(ulna, base=False, size=size))
    for key in ("wrist__cmc3", "wrist__cmc4", "wrist__cmc5", "wrist__mna", "wrist__capnlun", "wrist__radcar"):
        j = joints[key]
        along = {"wrist__radcar": 15.0, "wrist__capnlun": 10.0, "wrist__mna": 8.0}.get(key, 6.5) * size
        regions[key] = Region(key, _gap_ellipse(j.centre, j.axis, along, 5.0 * size))
    carpus_pts = [b.outline(grow=1.0 * size) for b in (scaph, lunate, triq, pisi, trapm, trapd, capit, hamat)]
    carpus_pts.append(np.array([radius.point(radius.length - 12.0 * size, s * radius.w1) for s in (-1, 1)]))
    carpus_pts.append(np.array([ulna.point(ulna.length - 10.0 * size, s * ulna.w1) for s in (-1, 1)]))
    for f in range(1, 6):
        mc = bones[f"mc{f}"]
        carpus_pts.append(np.array([mc.point(7.0 * size, s * mc.w0) for s in (-1, 1)]))
    carpus = convex_hull(np.concatenate(carpus_pts))
    # Soft tissue: forearm band, palm polygon, one capsule per digit.
    palm = convex_hull(np.concatenate([
        np.array([bones[f"mc{f}"].point(bones[f"mc{f}"].length, 0) for f in range(2, 6)]),
        carpus, np.array([bones["mc5"].point(10 * size, -bones["mc5"].w0 - 7 * size),
                          bones["mc1"].point(12 * size, bones["mc1"].w0 + 6 * size),
                          bones["mc1"].point(bones["mc1"].length * 0.5, bones["mc1"].wm + 5 * size),
                          bones["mc1"].point(bones["mc1"].length * 0.75, -bones["mc1"].wm - 4 * size),
                          bones["mc2"].point(bones["mc2"].length * 0.9, 6 * size),
                          bones["mc5"].point(bones["mc5"].length * 0.9, -7 * size)])]))
    capsules.append((radius.point(-20.0), ulna.point(ulna.length - 5.0 * size), 0.0))
    forearm_r = 0.5 * abs(radius.p0[1] - ulna.p0[1]) + 12.0 * size
    forearm_mid0 = 0.5 * (radius.point(-30.0) + ulna.point(-30.0))
    forearm_mid1 = 0.5 * (radius.point(radius.length - 6 * size) + ulna.point(ulna.length - 6 * size))
    capsules[-1] = (forearm_mid0, forearm_mid1, forearm_r)
    return Skeleton("hand", bones, joints, regions, carpus, capsules, [palm], ring_sites)


def _end_box(bone: LongBone, base: bool, size: float) -> np.ndarray:
    """Polygon [8, (y, x)] mm around one end of a long bone (the base if ``base``), ~1.3 bone widths long."""
    w = (bone.w0 if base else bone.w1) + 1.5 * size
    if base:
        u0, u1 = -max(bone.k0, 0) - 2.0 * size, min(bone.length, 1.4 * w)
    else:
        u0, u1 = bone.length - 1.4 * w, bone.length + max(bone.k1, 0) + 2.0 * size
    corners = [(u0, -w), (u0, w), (u1, w), (u1, -w)]
    pts = []
    for (ua, va), (ub, vb) in zip(corners, corners[1:] + corners[:1]):
        for t in (0.0, 0.5):
            pts.append(bone.point(ua + t * (ub - ua), va + t * (vb - va)))
    return np.array(pts)


def _gap_ellipse(centre: np.ndarray, axis: np.ndarray, along: float, across: float, k: int = 20) -> np.ndarray:
    """Polygon [k, (y, x)] mm: an ellipse centred on a joint gap, ``along`` mm half-length along the gap
    line (perpendicular to ``axis``) and ``across`` mm half-width across it."""
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return centre + np.outer(along * np.cos(t), perpendicular(axis)) + np.outer(across * np.sin(t), axis)


# Views of a foot film (probabilities): dorso-plantar whole foot (heel to toes, the ankle on some), a
# forefoot film (tarsometatarsal joints to toes, the hindfoot off the film) and an oblique whole foot.
FOOT_VIEWS = {"whole": 0.55, "forefoot": 0.25, "oblique": 0.20}
# Bones left out of the film fit of a forefoot view (they may run off the film).
HINDFOOT = ("talus", "calcaneus", "tibia", "fibula")


@dataclass
class FootView:
    """How a foot film is taken. ``kind``: ``"whole"``, ``"forefoot"`` or ``"oblique"``; ``ankle``: the
    distal tibia and fibula are drawn (projected over the talus, as on a dorso-plantar film that includes
    the ankle); ``squeeze``: factor (<= 1) on the medio-lateral (x) positions of the bones, 1 = straight
    dorso-plantar, about 0.6-0.8 for an oblique film (positions close up, bone widths stay: the metatarsals
    overlap); ``toe_flex``: 0..1 flexion of the lesser toes (middle/distal phalanges foreshortened);
    ``leg_angle`` (degrees from straight up, 180 = straight towards the heel) and ``leg_length`` (mm) of the
    projected tibia and fibula when ``ankle`` (they usually run off the film, as on trauma foot/ankle films)."""

    kind: str = "whole"
    ankle: bool = False
    squeeze: float = 1.0
    toe_flex: float = 0.0
    leg_angle: float = 180.0
    leg_length: float = 150.0


def sample_foot_view(rng: np.random.Generator) -> FootView:
    """Draw a :class:`FootView` (a fixed number of draws from ``rng``)."""
    u = rng.uniform(0, 1, size=6)
    p = np.cumsum(list(FOOT_VIEWS.values()))
    kind = list(FOOT_VIEWS)[int(np.searchsorted(p, u[0] * p[-1], side="right"))]
    return FootView(kind=kind, ankle=bool(kind == "whole" and u[1] < 0.5),
                    squeeze=float(0.6 + 0.2 * u[2]) if kind == "oblique" else 1.0, toe_flex=float(u[3]),
                    leg_angle=float(180.0 + 70.0 * (u[4] - 0.5)), leg_length=float(90.0 + 130.0 * u[5]))


def _squeeze_x(skel_parts: tuple, factor: float, x0: float) -> None:
    """Move every bone, joint and soft-tissue shape of a foot towards the line x = ``x0`` (mm) by ``factor``
    on the x coordinate of positions (widths stay: bones seen obliquely overlap, as cylinders do)."""
    bones, joints, capsules, polygons, rings = skel_parts
    m = np.array([1.0, factor])

    def pt(p):
        return np.array([p[0], x0 + factor * (p[1] - x0)])

    def unit(v):
        w = v * m
        return w / np.linalg.norm(w)

    for b in bones.values():
        if isinstance(b, LongBone):
            b.length *= float(np.linalg.norm(b.axis * m))
            b.p0, b.axis = pt(b.p0), unit(b.axis)
        else:
            b.centre, b.e1 = pt(b.centre), unit(b.e1)
    for j in joints.values():
        j.centre, j.axis = pt(j.centre), unit(j.axis)
    capsules[:] = [(pt(p0), pt(p1), r) for p0, p1, r in capsules]
    polygons[:] = [np.array([pt(p) for p in poly]) for poly in polygons]
    rings[:] = [(pt(c), unit(a), r) for c, a, r in rings]


def build_foot(rng: np.random.Generator, gap_factor: dict[str, float], spread: float,
               extra_gap_factor: dict[str, float], view: FootView | None = None) -> Skeleton:
    """A left foot (dorso-plantar, toes up, big toe on +x): calcaneus and talus (overlapping, as in the
    DP view), navicular, cuboid, three cuneiforms, five metatarsals (MT5 with its lateral tuberosity),
    toe phalanges, two hallux sesamoids under the MT1 head, and with ``view.ankle`` the distal tibia and
    fibula projected over the talus. All coordinates ``(y, x)`` mm; the heel is at large y.

    ``gap_factor`` keys: ``mtp__1``..``mtp__5``, ``mtp__ip`` (hallux IP); ``extra_gap_factor``: unscored
    ``toe_pip__2..5`` / ``toe_dip__2..5``. ``view`` (default: a straight whole-foot view) never changes the
    draws from ``rng``, which are the same contract as :func:`build_hand`.
    """
    view = view or FootView()
    size = rng.uniform(0.9, 1.1)
    len_j = 1.0 + rng.uniform(-0.05, 0.05, size=12)
    wid_j = 1.0 + rng.uniform(-0.06, 0.06, size=12)
    turns = rng.normal(0.0, 2.5, size=(6, 4))
    tars_j = 1.0 + rng.uniform(-0.06, 0.06, size=10)
    bones: dict[str, Bone] = {}
    joints: dict[str, Joint] = {}
    up = direction(0.0)

    def tarsal(name, centre, a, b, angle, j, p=2.6, depth=None):
        d = 0.9 * size * min(a, b) * 2.0 if depth is None else depth * size
        return EllipseBone(name, centre=np.array(centre) * size, a=a * size * tars_j[j], b=b * size * tars_j[j],
                           e1=direction(angle), depth=d, p=p)

    # Hindfoot first (drawn under the midfoot): the calcaneus from the cuboid back to the heel (about
    # 85 mm), the talus medial to it and overlapping it, its head in the navicular's concavity.
    tars = [tarsal("calcaneus", (62.0, -10.0), 41.0, 16.0, -10.0, 6, p=2.2, depth=15.0),
            tarsal("talus", (49.0, 10.0), 24.0, 12.5, 18.0, 5, p=2.2, depth=16.0),
            tarsal("navicular", (16.5, 12.5), 7.5, 17.0, -6.0, 4),
            tarsal("cuboid", (8.0, -12.5), 12.5, 10.5, -22.0, 3),
            tarsal("cuneiform1", (-4.0, 25.5), 12.5, 8.5, 8.0, 0),
            tarsal("cuneiform2", (-1.0, 13.0), 8.5, 6.3, 2.0, 1),
            tarsal("cuneiform3", (-2.0, 1.5), 9.5, 6.3, -4.0, 2)]
    for t in tars:
        bones[t.name] = t
    cun1, cun2, cun3, cuboid = (bones[n] for n in ("cuneiform1", "cuneiform2", "cuneiform3", "cuboid"))
    fan = {1: 7.0 + 4.0 * spread, 2: 2.0 + 2.0 * spread, 3: -1.0, 4: -4.0 - 2.0 * spread, 5: -9.0 - 4.0 * spread}
    seat = {1: (cun1, up, 0.0), 2: (cun2, up, 0.0), 3: (cun3, up, 0.0),
            4: (cuboid, direction(-8.0), 3.5), 5: (cuboid, direction(-30.0), -4.0)}
    capsules, ring_sites = [], []
    mt_heads = []
    flex = 1.0 - 0.35 * view.toe_flex  # flexed toes: middle/distal phalanges foreshortened
    for f in range(1, 6):
        spec = TOES[f]
        carp, sdir, shift = seat[f]
        axis = direction(fan[f] + turns[f, 0])
        w0, wm, w1 = (w * size * wid_j[f] for w in spec["mtw"])
        seat_pt = carp.support(sdir) + shift * size * perpendicular(up)
        k0 = -1.0 * size
        mt = LongBone(f"mt{f}", p0=seat_pt + (1.5 * size + k0) * axis, axis=axis, length=spec["mt"] * size * len_j[f],
                      w0=w0, wm=wm, w1=w1, k0=k0, k1=0.6 * w1, cortex=0.28)
        bones[mt.name] = mt
        mt_heads.append(mt.point(mt.length))
        pl = [v * size * len_j[5 + f] for v in spec["ph"]]
        pw0, pwm, pw1 = (v * size * wid_j[5 + f] for v in spec["phw"])
        if f == 1:
            specs = [dict(name="tp1_1", length=pl[0], w0=pw0, wm=pwm, w1=pw1, k0=-2.0 * size, k1=0.45 * pw1),
                     dict(name="tp1_3", length=pl[2], w0=pw1 * 0.95, wm=pwm * 0.8, w1=pwm * 0.95,
                          k0=-1.0 * size, k1=1.8 * size, plate1=False)]
            keys = ["mtp__1", "mtp__ip"]
            gaps = [NORMAL_GAP["mtp"] * size * gap_factor.get("mtp__1", 1.0),
                    NORMAL_GAP["ip"] * size * gap_factor.get("mtp__ip", 1.0)]
            anks = [gap_factor.get("mtp__1", 1) <= 0, gap_factor.get("mtp__ip", 1) <= 0]
        else:
            specs = [dict(name=f"tp{f}_1", length=pl[0], w0=pw0, wm=pwm, w1=pw1, k0=-1.6 * size, k1=0.45 * pw1),
                     dict(name=f"tp{f}_2", length=pl[1] * flex, w0=pw1 * 0.95, wm=pwm * 0.9, w1=pw1 * 0.85,
                          k0=-0.6 * size, k1=1.0 * size),
                     dict(name=f"tp{f}_3", length=pl[2] * flex, w0=pw1 * 0.8, wm=pwm * 0.65, w1=pwm * 0.75,
                          k0=-0.5 * size, k1=1.0 * size, plate1=False)]
            keys = [f"mtp__{f}", f"toe_pip__{f}", f"toe_dip__{f}"]
            gaps = [NORMAL_GAP["mtp"] * size * gap_factor.get(f"mtp__{f}", 1.0),
                    NORMAL_GAP["toe"] * size * extra_gap_factor.get(f"toe_pip__{f}", 1.0),
                    NORMAL_GAP["toe"] * size * 0.8 * extra_gap_factor.get(f"toe_dip__{f}", 1.0)]
            anks = [gap_factor.get(f"mtp__{f}", 1) <= 0, False, False]
        chain = _chain(bones, joints, mt, specs, keys, gaps,
                       list(turns[f, 1:1 + len(specs)] + (3.0 if f == 1 else -2.0)), anks)
        r = 1.05 * pw0 + 2.0 * size
        last = chain[-1]
        capsules.append((mt.point(mt.length * 0.8), last.tip - (r - 3.5 * size) * last.axis, r))
        ring_sites.append((chain[0].point(chain[0].length * 0.5), chain[0].axis, r))
    mt1, mt5 = bones["mt1"], bones["mt5"]
    # Two sesamoids under the MT1 head (medial larger), overlapping the head on a DP film.
    for side, name, a, b in ((1, "sesamoid_medial", 5.5, 4.0), (-1, "sesamoid_lateral", 4.8, 3.5)):
        c = mt1.point(mt1.length - 5.5 * size, side * 4.4 * size)
        bones[name] = EllipseBone(name, centre=c, a=a * size, b=b * size, e1=mt1.axis, depth=5.0 * size)
    # The MT5 tuberosity: the base flares laterally (-x) and proximally towards the cuboid/calcaneus.
    tub_c = mt5.point(3.0 * size, -mt5.w0 + 2.0 * size)
    bones["mt5_tuberosity"] = EllipseBone("mt5_tuberosity", centre=tub_c, a=7.5 * size * tars_j[7],
                                          b=4.5 * size * tars_j[7], e1=direction(-50.0), depth=7.0 * size, p=2.0)
    tal = bones["talus"]
    leg_capsule = []
    if view.ankle:  # tibia and fibula from the talus dome along the leg (projected: towards the heel, tilted)
        tib_base = tal.centre + np.array([4.0, -2.0]) * size
        leg = direction(view.leg_angle)
        tibia = LongBone("tibia", p0=tib_base, axis=leg, length=view.leg_length * size * tars_j[8],
                         w0=15.5 * size, wm=11.5 * size, w1=12.0 * size, k0=2.5 * size, k1=0.0,
                         cortex=0.22, plate0=True, plate1=False, density=0.6)
        bones["tibia"] = tibia
        bones["fibula"] = LongBone("fibula", p0=tib_base + 19.0 * size * tibia.perp - 8.0 * size * leg,
                                   axis=direction(view.leg_angle + 3.0), length=tibia.length + 8.0 * size,
                                   w0=7.0 * size, wm=4.5 * size, w1=5.0 * size, k0=3.0 * size, k1=0.0,
                                   cortex=0.3, plate0=False, plate1=False, density=0.65 * tars_j[9])
        leg_capsule = [(tib_base, tibia.point(tibia.length + 40.0 * size), 32.0 * size)]
    # Soft tissue: the sole outline from the heel pad to the metatarsal heads; toe capsules.
    calc = bones["calcaneus"]
    heel = calc.centre + calc.a * (-calc.e1)
    foot_poly = convex_hull(np.concatenate(
        [t.outline(grow=7.0 * size) for t in tars]
        + [np.array([h + np.array([0.0, s * 9.0 * size]) for s in (-1, 1)]) for h in mt_heads]
        + [np.array([heel + np.array([9.0, s * 14.0]) * size for s in (-1, 1)]),
           bones["mt5_tuberosity"].outline(grow=6.0 * size)]))
    tissue = [foot_poly]
    if view.squeeze != 1.0:
        x0 = float(bones["mt2"].point(0.0)[1])
        _squeeze_x((bones, joints, capsules, tissue, ring_sites), view.squeeze, x0)
    # The toes' capsules come first (the film fit uses them), the leg's last.
    return Skeleton("foot", bones, joints, {}, None, capsules + leg_capsule, tissue, ring_sites,
                    fit_exclude=HINDFOOT if view.kind == "forefoot" else ("tibia", "fibula"), view=view.kind)
