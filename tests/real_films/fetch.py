"""Build the real-film check set's films from their public sources (``sources.csv``) into ``films/``.

    python tests/real_films/fetch.py                 # download from GitHub (raw.githubusercontent.com)
    python tests/real_films/fetch.py --raw DIR       # or take the source files from DIR/<owner>+<name>/<path>
    python tests/real_films/fetch.py --check         # only say which films are missing or differ

Every source file is pinned by repository, commit and git blob id (checked after download: the same bytes or
nothing). Each film is made the same way: decoded, turned to 8-bit grey, rotated by ``rotate`` degrees
(counter-clockwise, so fingers and toes point up), cropped to ``crop`` (``x1 y1 x2 y2`` after the rotation, when
given), shrunk so that its long side is at most 1024 px (Lanczos; smaller films keep their size) and written as
JPEG quality 85 to ``films/<film>.jpg``. The labels in ``labels/`` are in the pixels of these films; their
``imageWidth`` / ``imageHeight`` are checked against the films made here.

The films are not in the repository (``films/`` is ignored): see README.md for why and for each source's licence.
Standard library, numpy and Pillow only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources.csv"
FILMS = HERE / "films"
LABELS = HERE / "labels"
MAX_SIDE = 1024
JPEG_QUALITY = 85
RAW_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{path}"


def read_sources(path: Path = SOURCES) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def git_blob_id(data: bytes) -> str:
    """The git object id of a file's bytes (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def source_bytes(row: dict, raw_dir: Path | None) -> bytes:
    """The source file's bytes, from ``raw_dir`` or downloaded; checked against the recorded git blob id."""
    if raw_dir is not None:
        data = (raw_dir / row["repository"].replace("/", "+") / row["path"]).read_bytes()
    else:
        url = RAW_URL.format(repository=row["repository"], commit=row["commit"],
                             path=urllib.request.quote(row["path"]))
        with urllib.request.urlopen(url, timeout=60) as resp:
            data = resp.read()
    if git_blob_id(data) != row["git_blob"]:
        raise SystemExit(f"{row['film']}: {row['path']} is not the recorded file (git blob {row['git_blob']})")
    return data


def make_film(data: bytes, rotate: int, crop: str = ""):
    """Source bytes -> the film (a Pillow 'L' image), as the module docstring describes."""
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.load()
    im = im.convert("L")
    if rotate % 360:
        im = im.rotate(rotate % 360, expand=True)
    if crop.strip():
        x1, y1, x2, y2 = (int(v) for v in crop.split())
        im = im.crop((x1, y1, x2, y2))
    scale = MAX_SIDE / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
    return im


def label_size(film: str) -> tuple[int, int] | None:
    """(width, height) the film's label file states, or None without a label file."""
    path = LABELS / f"{film}.json"
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return int(doc["imageWidth"]), int(doc["imageHeight"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw", type=Path, help="folder with the source files as <owner>+<name>/<path> (no download)")
    p.add_argument("--out", type=Path, default=FILMS)
    p.add_argument("--check", action="store_true", help="report missing films and size mismatches only")
    args = p.parse_args(argv)
    from PIL import Image

    rows = read_sources()
    args.out.mkdir(parents=True, exist_ok=True)
    problems = 0
    for row in rows:
        target = args.out / f"{row['film']}.jpg"
        if not args.check:
            film = make_film(source_bytes(row, args.raw), int(row["rotate"] or 0), row.get("crop", ""))
            film.save(target, quality=JPEG_QUALITY, optimize=True)
        if not target.is_file():
            print(f"{row['film']}: missing")
            problems += 1
            continue
        with Image.open(target) as im:
            size = im.size
        want = label_size(row["film"])
        if want is not None and want != size:
            print(f"{row['film']}: film is {size[0]}x{size[1]} px, its labels say {want[0]}x{want[1]}")
            problems += 1
    print(f"{len(rows) - problems} of {len(rows)} films ready in {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
