"""Pictures for labelling the real films by eye and for checking the labels (see README.md, "Labelling").

    python tests/real_films/draw.py FILM.jpg --grid 50 --out grid.png                # labelled pixel grid
    python tests/real_films/draw.py FILM.jpg --grid 20 --crop 100 200 400 500 --zoom 3 --out crop.png
    python tests/real_films/draw.py FILM.jpg --labels labels/FILM.json --out check.png   # points and names
    python tests/real_films/draw.py --sheet OUT.png FILM.jpg ...    # films (or their overlays) side by side, with
                                                                    # the marked points of labels/<film>.json

Coordinates printed on the grid are film pixels (x to the right, y down), as labelme stores them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"0": (255, 80, 80), "1": (255, 160, 0), "2": (255, 230, 0), "3": (80, 220, 80), "4": (0, 200, 255),
           "5": (255, 80, 80), "6": (255, 160, 0), "7": (255, 230, 0), "8": (80, 220, 80), "9": (0, 200, 255),
           "w": (220, 120, 255), "m": (255, 80, 255)}


def load(path: Path, crop=None, zoom: float = 1.0) -> Image.Image:
    im = Image.open(path).convert("RGB")
    if crop:
        im = im.crop(tuple(crop))
    if zoom != 1.0:
        im = im.resize((round(im.width * zoom), round(im.height * zoom)), Image.LANCZOS)
    return im


def draw_grid(im: Image.Image, step: int, origin=(0, 0), zoom: float = 1.0) -> Image.Image:
    """Lines every ``step`` film pixels, each labelled with its film coordinate."""
    d = ImageDraw.Draw(im)
    ox, oy = origin
    x0 = (ox // step + 1) * step if ox % step else ox
    for x in range(x0, ox + int(im.width / zoom) + 1, step):
        px = (x - ox) * zoom
        d.line([(px, 0), (px, im.height)], fill=(0, 255, 255) if x % (5 * step) == 0 else (0, 140, 140), width=1)
        d.text((px + 2, 2), str(x), fill=(255, 255, 0))
    y0 = (oy // step + 1) * step if oy % step else oy
    for y in range(y0, oy + int(im.height / zoom) + 1, step):
        py = (y - oy) * zoom
        d.line([(0, py), (im.width, py)], fill=(0, 255, 255) if y % (5 * step) == 0 else (0, 140, 140), width=1)
        d.text((2, py + 2), str(y), fill=(255, 255, 0))
    return im


def draw_labels(im: Image.Image, labels: Path, origin=(0, 0), zoom: float = 1.0, names: bool = True,
                arm: int = 5) -> Image.Image:
    """Every point of a labelme file as a small cross (half-width ``arm`` px), with its label when ``names``."""
    d = ImageDraw.Draw(im)
    for shape in json.loads(labels.read_text())["shapes"]:
        x, y = shape["points"][0]
        px, py = (x - origin[0]) * zoom, (y - origin[1]) * zoom
        c = COLOURS.get(shape["label"][0], (255, 255, 255))
        d.line([(px - arm, py), (px + arm, py)], fill=c, width=2 if arm > 3 else 1)
        d.line([(px, py - arm), (px, py + arm)], fill=c, width=2 if arm > 3 else 1)
        if names:
            d.text((px + arm + 1, py - 12), shape["label"], fill=c)
    return im


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("films", nargs="*", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--grid", type=int, help="grid step in film pixels")
    p.add_argument("--crop", type=int, nargs=4, metavar=("X1", "Y1", "X2", "Y2"))
    p.add_argument("--zoom", type=float, default=1.0)
    p.add_argument("--labels", type=Path, help="labelme file whose points to draw")
    p.add_argument("--sheet", type=Path, help="contact sheet of the films with their labels (labels/<film>.json)")
    p.add_argument("--cell", type=int, default=360)
    args = p.parse_args(argv)
    if args.sheet:
        cols = min(6, len(args.films))
        rows = (len(args.films) + cols - 1) // cols
        sheet = Image.new("RGB", (cols * args.cell, rows * (args.cell + 16)), "white")
        d = ImageDraw.Draw(sheet)
        for i, film in enumerate(args.films):
            im = load(film)
            lab = Path(__file__).parent / "labels" / f"{film.stem}.json"
            z = min(1.0, args.cell / max(im.size))
            im = im.resize((round(im.width * z), round(im.height * z)), Image.LANCZOS)
            if lab.is_file():  # the marked joint centres as small crosses, without names
                draw_labels(im, lab, zoom=z, names=False, arm=3)
            x, y = (i % cols) * args.cell, (i // cols) * (args.cell + 16)
            sheet.paste(im, (x, y + 16))
            d.text((x + 2, y + 2), film.stem, fill="black")
        sheet.quantize(colors=128).save(args.sheet, optimize=True)
        return 0
    origin = tuple(args.crop[:2]) if args.crop else (0, 0)
    im = load(args.films[0], args.crop, args.zoom)
    if args.grid:
        draw_grid(im, args.grid, origin, args.zoom)
    if args.labels:
        draw_labels(im, args.labels, origin, args.zoom)
    im.save(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
