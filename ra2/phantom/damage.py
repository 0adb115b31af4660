"""Joint damage driven by the Sharp/van der Heijde scores: gap narrowing and erosion pits.

Each function takes a per-joint ``numpy.random.Generator`` and draws the same number of values whatever
the score, so a film rendered twice with one score changed differs only at that joint.

- Narrowing 0-4 multiplies the joint's normal gap by about 1, 0.7, 0.46, 0.24, 0 (4 = ankylosis), each
  with a per-joint jitter so that neighbouring scores overlap (reader disagreement).
- Erosion 0-5 (hand, wrist) or 0-10 (foot: the two sides of the joint summed) bites pits of growing
  number and size (each a disc with a smaller overlapping satellite: irregular) into the cortex of the
  bone ends next to the joint (or into the named wrist bone).
"""

from __future__ import annotations

import numpy as np

from ra2.phantom.anatomy import EllipseBone, LongBone, Pit

NARROWING_FACTOR = (1.0, 0.70, 0.46, 0.24, 0.0)
MAX_PITS = 8


def gap_factor(score: int, rng: np.random.Generator) -> float:
    """Multiplier of a joint's normal gap for narrowing ``score`` 0-4 (0.0 exactly for 4 = ankylosis)."""
    scale, shift = rng.uniform(0.85, 1.15), rng.normal(0.0, 0.05)
    if score >= 4:
        return 0.0
    if score <= 0:
        return float(np.clip(scale + shift, 0.8, 1.25))
    return float(np.clip(NARROWING_FACTOR[score] * scale + shift, 0.06, 1.0))


def _draws(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A fixed block of random numbers for the pits of one bone end."""
    return {"count": rng.normal(0.0, 0.6, size=1), "size": rng.uniform(0.75, 1.3, size=MAX_PITS),
            "side": rng.choice((-1.0, 1.0), size=MAX_PITS), "margin": rng.uniform(0, 1, size=MAX_PITS),
            "pos": rng.uniform(0, 1, size=(MAX_PITS, 2)), "depth": rng.uniform(0.55, 0.95, size=MAX_PITS),
            "big": rng.uniform(0.8, 1.2, size=2), "sat_angle": rng.uniform(0, 2 * np.pi, size=MAX_PITS),
            "sat_size": rng.uniform(0.35, 0.7, size=MAX_PITS)}


def _pit(d: dict[str, np.ndarray], i: int, a: float, b: float, r: float) -> list[Pit]:
    """Pit ``i`` at local (a, b) with radius r, plus a smaller overlapping satellite: irregular outline."""
    depth = float(d["depth"][i])
    ang, k = d["sat_angle"][i], d["sat_size"][i]
    return [Pit(a=float(a), b=float(b), radius=float(r), depth=depth),
            Pit(a=float(a + 0.7 * r * np.cos(ang)), b=float(b + 0.7 * r * np.sin(ang)), radius=float(k * r),
                depth=0.9 * depth)]


def _count(score: float, d: dict[str, np.ndarray]) -> int:
    if score <= 0:
        return 0
    return int(np.clip(np.round(score + d["count"][0]), 1, MAX_PITS))


def end_pits(score: float, size_score: float, bone: LongBone, distal_end: bool, rng: np.random.Generator) -> None:
    """Add about ``score`` pits (0-5 scale) to one end of a long bone; pit radius grows with ``size_score``."""
    d = _draws(rng)
    n = _count(score, d)
    w = bone.w1 if distal_end else bone.w0
    radius = w * (0.16 + 0.04 * size_score)
    for i in range(n):
        r = radius * d["size"][i]
        if d["margin"][i] < 0.72:  # marginal ("bare area") erosion at the side of the joint
            v = d["side"][i] * w * (0.72 + 0.28 * d["pos"][i, 0])
            off = w * (-0.15 + 0.75 * d["pos"][i, 1])
        else:  # on the articular surface
            v = w * (d["pos"][i, 0] - 0.5) * 1.2
            off = 0.15 * r
        if distal_end:
            u = bone.length + max(bone.k1, 0.0) * np.sqrt(max(0.0, 1 - (v / bone.w1) ** 2)) - off
        else:
            u = -max(bone.k0, 0.0) * np.sqrt(max(0.0, 1 - (v / bone.w0) ** 2)) + max(-bone.k0, 0.0) + off
        bone.pits.extend(_pit(d, i, float(u), float(v), r))
    if score >= 4:  # severe: a large bite out of the end (collapse of the bone end)
        r = w * (0.35 + 0.07 * (score - 4)) * d["big"][0]
        u = bone.length + 0.3 * w if distal_end else -0.3 * w
        bone.pits.append(Pit(a=float(u), b=float(d["side"][0] * 0.4 * w), radius=float(r), depth=0.85))


def ellipse_pits(score: float, bone: EllipseBone, rng: np.random.Generator) -> None:
    """Add about ``score`` pits (0-5) on the outline of a carpal bone, growing with the score."""
    d = _draws(rng)
    n = _count(score, d)
    m = min(bone.a, bone.b)
    for i in range(n):
        ang = 2 * np.pi * d["pos"][i, 0]
        f = 0.8 + 0.25 * d["pos"][i, 1]
        bone.pits.extend(_pit(d, i, float(bone.a * f * np.cos(ang)), float(bone.b * f * np.sin(ang)),
                              float(m * (0.18 + 0.05 * score) * d["size"][i])))
    if score >= 4:
        ang = 2 * np.pi * d["margin"][0]
        bone.pits.append(Pit(a=float(0.6 * bone.a * np.cos(ang)), b=float(0.6 * bone.b * np.sin(ang)),
                             radius=float(0.45 * m * d["big"][0]), depth=0.8))


def joint_pits(score: int, foot: bool, proximal: LongBone, distal: LongBone, rng: np.random.Generator) -> None:
    """Erosion of a finger/toe joint: hand ``score`` 0-5 spread over both bone ends (mostly the head of the
    proximal bone); foot ``score`` 0-10 split into two sides of 0-5, one per bone."""
    split_noise = rng.normal(0.0, 0.8)
    r_prox, r_dist = rng.spawn(2)
    if foot:
        a = int(np.clip(np.round(score / 2 + split_noise), max(0, score - 5), min(5, score)))
        b = score - a
        end_pits(a, a, proximal, True, r_prox)
        end_pits(b, b, distal, False, r_dist)
    else:
        a = int(np.clip(np.round(score * 0.6 + split_noise), 0, score))
        end_pits(a, score, proximal, True, r_prox)
        end_pits(score - a, score, distal, False, r_dist)
