"""Domain randomisation of the film detectors' training images: what real films show and the phantom's
rendering may not (albumentations 2.0.8 transforms plus two of ours).

:func:`film_augmentation` is the pipeline of the hand and feet detectors (whole films shrunk to a square
detector image, ``[S, S, 1]`` uint8); :func:`basic_augmentation` the earlier, milder one (the wrist
detectors' carpus crops keep it). Both keep the image size (the Mask R-CNN data code requires it); an
instance whose mask leaves the image is dropped by the data code (``ra2.mrcnn.data.load_image_gt``).

Ours, both image-only and placed clear of the annotated joints (the union box of the masks):

- :class:`FilmBorders`: collimation edges and scanner/film borders, a band along one to four sides, bright
  (collimated, unexposed film) or dark (beyond a scanned film's edge), sharp or soft-edged, sometimes
  slightly tilted;
- :class:`FilmMarkers`: lead side letters ("L", "R", boxed or not), lines of text (ID, date, labels) and a
  ruler with ticks, bright or dark, in the free space around the limb.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _free_box(data: dict, shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """``(y1, x1, y2, x2)`` px: the union box of the non-empty masks in ``data`` grown by ``margin`` of the
    image side, or an empty box in the image centre when there are no masks."""
    h, w = shape
    masks = data.get("masks")
    boxes = []
    if masks is not None:
        for m in masks:
            m = np.asarray(m)
            if m.ndim == 3:
                m = m[..., 0]
            ys, xs = np.nonzero(m)
            if ys.size:
                boxes.append((ys.min(), xs.min(), ys.max() + 1, xs.max() + 1))
    if not boxes:
        return h // 2, w // 2, h // 2, w // 2
    b = np.array(boxes)
    g = margin * max(h, w)
    return (int(max(0, b[:, 0].min() - g)), int(max(0, b[:, 1].min() - g)),
            int(min(h, b[:, 2].max() + g)), int(min(w, b[:, 3].max() + g)))


def _image_only_base():
    import albumentations as A

    return A.ImageOnlyTransform


class FilmBorders(_image_only_base()):
    """Bands along the image sides (collimation / film edge), never over the annotated joints.

    Each of the four sides gets a band with probability ``side_p``, as deep as ``depth`` (fraction of the
    side) allows but stopping short of the joints' union box. A band is bright (levels 170-255:
    collimated field, unexposed film) or dark (0-40: beyond a scanned film); its inner edge is sharp or
    blurred over a few pixels and tilted up to ``max_tilt`` of the side.
    Image ``[H, W]`` or ``[H, W, C]`` uint8.
    """

    def __init__(self, side_p: float = 0.45, depth: tuple[float, float] = (0.02, 0.2), max_tilt: float = 0.04,
                 p: float = 0.5):
        super().__init__(p=p)
        self.side_p, self.depth, self.max_tilt = side_p, tuple(depth), max_tilt

    def get_params_dependent_on_data(self, params, data):
        img = data["image"]
        h, w = img.shape[:2]
        y1, x1, y2, x2 = _free_box(data, (h, w), 0.02)
        r = self.random_generator
        bands = []
        room = {"top": y1, "bottom": h - y2, "left": x1, "right": w - x2}
        for side in ("top", "bottom", "left", "right"):
            u = r.uniform(0, 1, size=6)
            if u[0] >= self.side_p:
                continue
            full = h if side in ("top", "bottom") else w
            d = min(room[side], (self.depth[0] + (self.depth[1] - self.depth[0]) * u[1]) * full)
            if d < 1:
                continue
            bright = u[2] < 0.7
            level = 170 + 85 * u[3] if bright else 40 * u[3]
            tilt = (u[4] - 0.5) * 2 * self.max_tilt * full
            soft = float(0.5 + 3.0 * u[5] ** 2)
            d = d - abs(tilt) - 0.5 * soft - 1.0
            if d < 1:
                continue
            bands.append((side, float(d), float(level), float(tilt), soft))
        return {"bands": bands}

    def apply(self, img, bands=(), **params):
        if not bands:
            return img
        h, w = img.shape[:2]
        yy = np.arange(h, dtype=np.float32)[:, None] + 0.5
        xx = np.arange(w, dtype=np.float32)[None, :] + 0.5
        out = img.astype(np.float32)
        for side, d, level, tilt, soft in bands:
            if side == "top":
                edge = d + tilt * (xx / w - 0.5)
                inside = (edge - yy) / soft
            elif side == "bottom":
                edge = h - d + tilt * (xx / w - 0.5)
                inside = (yy - edge) / soft
            elif side == "left":
                edge = d + tilt * (yy / h - 0.5)
                inside = (edge - xx) / soft
            else:
                edge = w - d + tilt * (yy / h - 0.5)
                inside = (xx - edge) / soft
            a = np.clip(inside + 0.5, 0.0, 1.0)
            if out.ndim == 3:
                a = a[..., None]
            out = out * (1 - a) + level * a
        return np.clip(out, 0, 255).astype(np.uint8)

    def get_transform_init_args_names(self):
        return ("side_p", "depth", "max_tilt")


_WORDS = ("L", "R", "LEFT", "RIGHT", "DP", "OBL", "AP", "PA", "STANDING", "FOOT", "HAND", "WT")


class FilmMarkers(_image_only_base()):
    """Lead side letters, text lines and a ruler drawn in the free space of the image (outside the
    joints' union box grown by 2% of the side); 1-4 items, each bright or dark, a letter boxed or not.
    Image ``[H, W]`` or ``[H, W, C]`` uint8."""

    def __init__(self, max_items: int = 4, p: float = 0.5):
        super().__init__(p=p)
        self.max_items = max_items

    def get_params_dependent_on_data(self, params, data):
        img = data["image"]
        h, w = img.shape[:2]
        free = _free_box(data, (h, w), 0.02)
        r = self.random_generator
        n = int(r.integers(1, self.max_items + 1))
        items = []
        for _ in range(n):
            u = r.uniform(0, 1, size=8)
            kind = "letter" if u[0] < 0.45 else ("text" if u[0] < 0.8 else "ruler")
            size = int(max(6, (0.04 + 0.08 * u[1]) * min(h, w))) if kind == "letter" else int(
                max(5, (0.02 + 0.03 * u[1]) * min(h, w)))
            if kind == "letter":
                word = _WORDS[int(u[2] * 2)] if u[2] < 0.7 else _WORDS[int(u[3] * len(_WORDS))]
            elif kind == "text":
                word = f"{int(u[2] * 1e6):06d} {1995 + int(u[3] * 25)}-{1 + int(u[4] * 12):02d}" if u[5] < 0.6 \
                    else " ".join(_WORDS[int(v * len(_WORDS))] for v in u[2:4])
            else:
                word = ""
            items.append({"kind": kind, "size": size, "word": word, "bright": bool(u[5] < 0.7 or kind == "ruler"),
                          "boxed": bool(u[6] < 0.4 and kind == "letter"), "pos": (float(u[6]), float(u[7])),
                          "vertical": bool(u[4] < 0.5)})
        return {"items": items, "free": free}

    def apply(self, img, items=(), free=(0, 0, 0, 0), **params):
        if not items:
            return img
        squeeze = img.ndim == 3
        pil = Image.fromarray(img[..., 0] if squeeze else img)
        h, w = pil.height, pil.width
        draw = ImageDraw.Draw(pil)
        fy1, fx1, fy2, fx2 = free
        for it in items:
            size = it["size"]
            fill = 230 if it["bright"] else 15
            if it["kind"] == "ruler":
                length = int(0.3 * max(h, w) + 0.3 * max(h, w) * it["pos"][0])
                thick = max(2, size // 3)
                ext = (thick + size // 2, length) if it["vertical"] else (length, thick + size // 2)
            else:
                font = ImageFont.load_default(size)
                tw = int(np.ceil(draw.textlength(it["word"], font=font))) + 2
                ext = (tw, int(size * 1.25))
            spot = self._spot(ext, (h, w), (fy1, fx1, fy2, fx2), it["pos"])
            if spot is None:
                continue
            x, y = spot
            if it["kind"] == "ruler":
                ew, eh = ext
                draw.rectangle([x, y, x + ew - 1, y + eh - 1], fill=40)
                if it["vertical"]:
                    for k, ty in enumerate(range(y, y + eh, max(2, size // 3))):
                        draw.line([x, ty, x + (ew - 1 if k % 5 == 0 else ew // 2), ty], fill=fill)
                else:
                    for k, tx in enumerate(range(x, x + ew, max(2, size // 3))):
                        draw.line([tx, y, tx, y + (eh - 1 if k % 5 == 0 else eh // 2)], fill=fill)
                continue
            if it["boxed"]:
                draw.rectangle([x - 1, y - 1, x + ext[0], y + ext[1]], fill=40 if it["bright"] else 200)
            draw.text((x, y), it["word"], fill=fill, font=ImageFont.load_default(size))
        out = np.asarray(pil, dtype=np.uint8)
        return out[..., None].copy() if squeeze else out.copy()

    def _spot(self, ext, shape, free, pos):
        """Top-left ``(x, y)`` of a ``(width, height)`` item in the image outside the ``free`` box, chosen by
        ``pos`` (two uniforms) among the four bands around it; None when nothing fits."""
        (ew, eh), (h, w) = ext, shape
        fy1, fx1, fy2, fx2 = free
        cands = []
        if fy1 >= eh:
            cands.append((0, 0, w - ew, fy1 - eh))
        if h - fy2 >= eh:
            cands.append((0, fy2, w - ew, h - eh))
        if fx1 >= ew:
            cands.append((0, 0, fx1 - ew, h - eh))
        if w - fx2 >= ew:
            cands.append((fx2, 0, w - ew, h - eh))
        cands = [c for c in cands if c[2] >= c[0] and c[3] >= c[1]]
        if not cands:
            return None
        x0, y0, x1, y1 = cands[int(pos[0] * len(cands)) % len(cands)]
        t = (pos[1] * 7.31) % 1.0
        s = (pos[0] * 3.17) % 1.0
        return int(x0 + s * (x1 - x0)), int(y0 + t * (y1 - y0))

    def get_transform_init_args_names(self):
        return ("max_items",)


def basic_augmentation():
    """The earlier, mild pipeline (thesis-like): rotation +-15 deg, scale 0.85-1.15, shift +-6 %,
    brightness/contrast +-20 %, gamma 0.7-1.5, blur on a fifth of the images. The wrist detectors' carpus
    crops use it (their framing comes from the hand detector's carpus box, not from a film)."""
    import albumentations as A

    return A.Compose([
        A.Affine(rotate=(-15, 15), scale=(0.85, 1.15), translate_percent=(-0.06, 0.06), p=0.9),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.7),
        A.RandomGamma(gamma_limit=(70, 150), p=0.5),
        A.GaussianBlur(blur_limit=(3, 5), p=0.2),
    ])


def film_augmentation():
    """Domain randomisation of the film detectors (hands, feet), ``[S, S, 1]`` uint8 images with masks.

    - framing: rotation +-20 deg, limb scale 0.7-1.3 of the rendered one, shift +-15 % (a limb small in a
      large film, off-centre, or partly off the image: a partial view; joints leaving it are dropped);
    - film borders and collimation edges (:class:`FilmBorders`, half of the images), then markers, text,
      rulers (:class:`FilmMarkers`, half);
    - tone: one of a random tone curve, gamma 0.5-2.0 or CLAHE (local contrast of processed digital films),
      then brightness/contrast +-25 %;
    - sharpness and noise: one of Gaussian blur, downscaling to 45-90 % and back, JPEG quality 25-90; then
      Gaussian noise (sd 1-6 % of the range) on 40 %.

    No flips: right limbs are mirrored before detection, so the classes are side-specific.
    """
    import albumentations as A

    return A.Compose([
        A.Affine(rotate=(-20, 20), scale=(0.7, 1.3), translate_percent=(-0.15, 0.15), p=0.9),
        FilmBorders(p=0.5),
        FilmMarkers(p=0.5),
        A.OneOf([A.RandomToneCurve(scale=0.25), A.RandomGamma(gamma_limit=(50, 200)),
                 A.CLAHE(clip_limit=(1, 3), tile_grid_size=(8, 8))], p=0.8),
        A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.7),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 7)), A.Downscale(scale_range=(0.45, 0.9)),
                 A.ImageCompression(quality_range=(25, 90))], p=0.5),
        A.GaussNoise(std_range=(0.01, 0.06), p=0.4),
    ])
