"""Contact sheets for looking at the phantom: films with their ground-truth boxes, and a damage scale.

Both functions draw with Pillow and save a PNG; nothing is shown on screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ra2 import Ra2Error, contract
from ra2.annotations import ANNOTATIONS_FILE, FilmAnnotation, read_annotations

DETECTOR_COLOURS = {contract.HANDS: (255, 80, 60), contract.FEET: (255, 160, 0),
                    contract.WRIST_EROSION: (60, 200, 255), contract.WRIST_NARROWING: (120, 255, 120)}


def _load_dir(folder: Path, n: int) -> list[tuple[np.ndarray, FilmAnnotation]]:
    ann_path = folder / ANNOTATIONS_FILE
    if not ann_path.is_file():
        raise Ra2Error(f"{folder}: no {ANNOTATIONS_FILE} (contact sheets need a phantom train/ folder)")
    films = read_annotations(ann_path)[:n]
    out = []
    for f in films:
        path = folder / f.file_name
        if not path.is_file():
            raise Ra2Error(f"{path}: film listed in {ann_path} not found")
        out.append((np.asarray(Image.open(path).convert("L")), f))
    return out


def draw_film(image: np.ndarray, film: FilmAnnotation, height: int, labels: bool = True) -> Image.Image:
    """The film [H, W] uint8 resized to ``height`` px as RGB with every object's box (and class label)."""
    s = height / image.shape[0]
    width = max(1, int(round(image.shape[1] * s)))
    rgb = Image.fromarray(image).resize((width, height), Image.BILINEAR).convert("RGB")
    draw = ImageDraw.Draw(rgb)
    font = ImageFont.load_default(max(8, height // 60))
    for obj in film.objects:
        colour = DETECTOR_COLOURS[obj.detector]
        y1, x1, y2, x2 = (v * s for v in obj.box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=1)
        if labels and obj.detector in contract.FILM_DETECTORS:
            draw.text((x1 + 1, y1 + 1), obj.class_name.split("__")[-1], fill=colour, font=font)
    draw.text((4, height - height // 40 - 6), film.file_name, fill=(255, 255, 0), font=font)
    return rgb


def contact_sheet(dir_or_films, out_png: Path, n: int = 12, cols: int = 4, tile_height: int = 420,
                  colors: int | None = None) -> Path:
    """Save a grid of ``n`` films with their ground-truth boxes as a PNG.

    ``dir_or_films``: a phantom folder holding ``annotations.json`` and the films, or a list of
    ``(image [H, W] uint8, FilmAnnotation)`` pairs. ``colors``: quantise to that many palette colours
    (smaller files, e.g. for docs/). Returns ``out_png``.
    """
    if isinstance(dir_or_films, (str, Path)):
        films = _load_dir(Path(dir_or_films), n)
    else:
        films = list(dir_or_films)[:n]
    if not films:
        raise Ra2Error("contact sheet: no films to draw")
    tiles = [draw_film(img, ann, tile_height) for img, ann in films]
    tile_w = max(t.width for t in tiles)
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tile_w, rows * tile_height), (30, 30, 30))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * tile_w, (i // cols) * tile_height))
    if colors is not None:
        sheet = sheet.quantize(colors=colors, dither=Image.Dither.NONE)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png, optimize=True)
    return out_png


def crop_box(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The pixels of ``image`` [H, W] inside ``box`` (y1, x1, y2, x2) of that image, clipped to it."""
    h, w = image.shape[:2]
    y1, x1, y2, x2 = box
    y1, x1 = max(int(np.floor(y1)), 0), max(int(np.floor(x1)), 0)
    y2, x2 = min(int(np.ceil(y2)), h), min(int(np.ceil(x2)), w)
    return image[y1:y2, x1:x2]


DAMAGE_SCALE_COLUMNS = ("LH_mcp_J__2", "LH_pip_J__3", "LF_mtp_J__2", "LH_wrist_J__capnlun", "LH_mcp_E__2",
                        "LH_pip_E__3", "LH_wrist_E__nav", "LF_mtp_E__1", "LF_mtp_E__5")


def damage_scale(out_png: Path, seed: int = 0, size_scale: float = 0.6, tile: int = 120,
                 columns: tuple[str, ...] = DAMAGE_SCALE_COLUMNS) -> Path:
    """Save a sheet of joint crops at every score: one row per score column, columns = score 0..max.

    Each row renders one film repeatedly with the same generator seed, only that joint's score changed.
    """
    from ra2.phantom.render import render_film

    titles = {"narrowing": "narrowing", "hand_erosion": "hand erosion", "foot_erosion": "foot erosion"}
    rows = [(titles[contract.SCORE_BY_COLUMN[c].dataset], c) for c in columns]
    max_cols = 1 + max(contract.MAX_SCORE[c] for _, c in rows)
    label_w = 170
    font = ImageFont.load_default(13)
    sheet = Image.new("L", (label_w + max_cols * tile, len(rows) * (tile + 16) + 16), 25)
    draw = ImageDraw.Draw(sheet)
    for c in range(max_cols):
        draw.text((label_w + c * tile + tile // 2 - 4, 2), str(c), fill=255, font=font)
    for r, (title, column) in enumerate(rows):
        sc = contract.SCORE_BY_COLUMN[column]
        y = 16 + r * (tile + 16)
        draw.text((4, y + tile // 2 - 14), title, fill=255, font=font)
        draw.text((4, y + tile // 2 + 2), column, fill=200, font=font)
        for score in range(sc.max_score + 1):
            image, ann = render_film(sc.limb, {column: score}, np.random.default_rng(seed), size_scale)
            obj = next(o for o in ann.objects if o.site_id == sc.site.id)
            box = obj.box
            if obj.box_in_carpus is not None:  # wrist areas: a wider view around the area
                cy, cx = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                half = 0.9 * max(box[2] - box[0], box[3] - box[1])
                box = (cy - half, cx - half, cy + half, cx + half)
            crop = Image.fromarray(crop_box(image, box)).resize((tile, tile), Image.BILINEAR)
            sheet.paste(crop, (label_w + score * tile, y))
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png, optimize=True)
    return out_png
