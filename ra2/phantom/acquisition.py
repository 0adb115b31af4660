"""Acquisition of a phantom film: size, pose, exposure, contrast, blur, noise, collimation, markers, metal.

:func:`sample_acquisition` draws every film-level parameter from one generator with a fixed number of
draws; :meth:`Acquisition.develop` turns an attenuation canvas into display intensities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ra2 import contract

# Film size range at size_scale 1.0 (px per side).
FILM_MIN, FILM_MAX = 1000, 3000


@dataclass
class Acquisition:
    """Film-level parameters. ``field``: collimated region ``(y1, x1, y2, x2)`` in film px."""

    height: int
    width: int
    rotation: float  # degrees, limb rotation in the film plane
    spread: float  # 0..1 finger/toe spread
    field: tuple[float, float, float, float]
    collimated: bool
    fill: float  # fraction of the collimated field the limb fills (along its tighter side)
    shift: np.ndarray  # [2] 0..1 position of the limb within the slack of the field
    tissue_mm: float  # soft-tissue thickness at the palm/midfoot
    trab_contrast: float
    exposure: float  # multiplies the attenuation before the film curve
    base: float  # display level of direct exposure (no object)
    gamma: float
    contrast_hi: float  # display level mapped to the densest bone
    heel: float  # heel-effect amplitude (relative brightness change across the film)
    heel_angle: float
    collimation_value: float  # display level (0..1) outside the collimated field
    blur_sigma: float  # Gaussian blur, film px
    noise_levels: int  # half-range of each of two uniform integer noises (grey levels)
    ring_finger: int | None
    plate: bool
    marker_size: float  # fraction of the film's short side
    marker_corner_pref: tuple[tuple[int, int], ...]
    marker_boxed: bool
    marker_value: float  # grey level of marker text
    marker_bg: float  # grey level of the marker box
    text: str | None

    def develop(self, canvas: np.ndarray) -> np.ndarray:
        """Attenuation [h, w] (canvas of this film, any scale) -> display intensity [h, w] float32 0..255."""
        from scipy import ndimage

        h, w = canvas.shape
        f = h / self.height
        f32 = np.float32
        v = 1.0 - np.exp(f32(-self.exposure) * canvas)
        curve = np.clip(v * f32(1 / 0.93), 0.0, 1.0) ** f32(self.gamma)
        v = f32(self.base) + f32(self.contrast_hi - self.base) * curve
        yy = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
        xx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
        ramp = f32(np.cos(self.heel_angle)) * yy + f32(np.sin(self.heel_angle)) * xx
        v = v * (1.0 + f32(self.heel) * ramp)
        if self.collimated:
            y1, x1, y2, x2 = (c * f for c in self.field)
            edge = max(1.0, 2.0 * f)
            iy = np.arange(h, dtype=np.float32) + 0.5
            ix = np.arange(w, dtype=np.float32) + 0.5
            my = np.clip((iy - y1) / edge, 0, 1) * np.clip((y2 - iy) / edge, 0, 1)
            mx = np.clip((ix - x1) / edge, 0, 1) * np.clip((x2 - ix) / edge, 0, 1)
            m = my[:, None] * mx[None, :]
            v = v * m + f32(self.collimation_value) * (1.0 - m)
        sigma = self.blur_sigma * f
        if sigma > 0.3:
            v = ndimage.gaussian_filter(v, sigma=sigma, mode="nearest")
        return np.clip(v * f32(255.0), 0.0, 255.0).astype(np.float32)


def sample_acquisition(rng: np.random.Generator, limb: str, size_scale: float) -> Acquisition:
    """Draw one film's acquisition parameters (fixed number of draws whatever the limb)."""
    hand = limb in contract.HAND_LIMBS
    u = rng.uniform(0, 1, size=24)
    # Film size: height 1200-3000 px, aspect width/height 0.65-1.05 (portrait films), scaled.
    height0 = 1200 + 1800 * u[0]
    aspect = 0.65 + 0.4 * u[1]
    width0 = float(np.clip(height0 * aspect, FILM_MIN, FILM_MAX))
    height = max(32, int(round(height0 * size_scale)))
    width = max(32, int(round(width0 * size_scale)))
    collimated = bool(u[2] < 0.65)
    if collimated:
        m = 0.02 + 0.12 * rng.uniform(0, 1, size=4)
        field = (m[0] * height, m[1] * width, (1 - m[2]) * height, (1 - m[3]) * width)
    else:
        rng.uniform(0, 1, size=4)
        field = (0.0, 0.0, float(height), float(width))
    rotation = float(np.clip(rng.normal(0.0, 6.5), -15.0, 15.0))
    ring = int(rng.integers(0, 5))
    corners = ((0, 0), (0, 1), (1, 0), (1, 1))
    order = rng.permutation(4)
    digits = int(rng.integers(100000, 999999))
    year, month, day = int(rng.integers(1998, 2012)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    text = f"{digits}  {year:04d}-{month:02d}-{day:02d}" if u[3] < 0.6 else None
    marker_value = 215 + 40 * u[4]
    return Acquisition(
        height=height, width=width, rotation=rotation, spread=float(u[5]), field=field, collimated=collimated,
        fill=0.86 + 0.13 * u[6], shift=u[7:9].copy(), tissue_mm=(24.0 if hand else 27.0) * (0.85 + 0.3 * u[9]),
        trab_contrast=0.2 + 0.25 * u[10], exposure=1.0 + 0.5 * u[11], base=0.02 + 0.14 * u[12],
        gamma=0.75 + 0.7 * u[13], contrast_hi=0.82 + 0.18 * u[14], heel=-0.12 + 0.24 * u[15],
        heel_angle=float(2 * np.pi * u[16]), collimation_value=0.78 + 0.2 * u[17],
        blur_sigma=(0.4 + 2.2 * u[18] ** 1.5) * max(height, width) / 2000.0,
        noise_levels=int(1 + 4 * u[19]),
        ring_finger=(ring if hand and u[20] < 0.1 else None), plate=bool(u[21] < (0.04 if hand else 0.025)),
        marker_size=0.035 + 0.03 * u[22], marker_corner_pref=tuple(corners[i] for i in order),
        marker_boxed=bool(collimated or u[23] < 0.5), marker_value=marker_value, marker_bg=20 + 40 * u[4], text=text)
