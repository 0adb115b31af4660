"""The real-film check set (``tests/real_films/``): its labels import, and the shipped detectors still reach on it
the figures ``weights/MODEL_CARD.md`` states, so the set and the card cannot drift apart silently.

The label checks run in the default suite. The detector run is in the slow tier (``make test-slow``) and needs
the films, which are not in the repository: ``python tests/real_films/fetch.py`` makes them (network), else it
skips. Tolerance: 0.02 on every share, about one joint of the 66 foot or 97 hand joints (TensorFlow's CPU
kernels may move a box by a pixel from one machine to another).
"""

import csv
import json
import re
from pathlib import Path

import pytest

from ra2 import contract
from ra2.annotation_import import BUILTIN_MAPPINGS
from ra2.annotations import film_identity

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "tests" / "real_films"
CARD = ROOT / "weights" / "MODEL_CARD.md"
TOLERANCE = 0.02
CARD_ROWS = {"feet": ("feet", "points"), "hands (10 joints)": ("hands", "points")}
WRIST_ROW = "hands: wrist points in the carpus box"


def _sources():
    with open(SET / "sources.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _films_present() -> bool:
    return all((SET / "films" / f"{row['film']}.jpg").is_file() for row in _sources())


def test_every_film_has_a_label_file_with_ra2_landmark_points_on_its_limb():
    rows = _sources()
    labels = sorted(p.stem for p in (SET / "labels").glob("*.json"))
    assert labels == sorted(r["film"] for r in rows)
    mapping = BUILTIN_MAPPINGS["ra2-landmarks"]
    for name in labels:
        _, limb = film_identity(f"{name}.jpg")
        doc = json.loads((SET / "labels" / f"{name}.json").read_text())
        assert doc["imagePath"].endswith(f"{name}.jpg")
        names = [s["label"] for s in doc["shapes"]]
        assert all(s["shape_type"] == "point" for s in doc["shapes"]) and len(set(names)) == len(names)
        for label in names:
            target = mapping[label]
            site_limb_ok = target == "carpus" or f"{limb}_{target}" in contract.SITE_BY_ID
            assert site_limb_ok, f"{name}: {label} is not a joint of a {limb} film"
        for s in doc["shapes"]:
            x, y = s["points"][0]
            assert 0 <= x <= doc["imageWidth"] and 0 <= y <= doc["imageHeight"]


def test_sources_record_repository_commit_blob_and_licence():
    for row in _sources():
        assert re.fullmatch(r"[0-9a-f]{40}", row["commit"]) and re.fullmatch(r"[0-9a-f]{40}", row["git_blob"])
        assert row["licence"] and row["keep"] in ("yes", "no") and row["credit"]
        assert row["keep"] == "no" or row["licence"].startswith(("CC BY 4.0", "CC0", "public domain"))


def _card_figures() -> dict[str, list[float]]:
    """The real-film table of the model card: first cell -> the numbers of the row."""
    text = CARD.read_text()
    section = text.split("## Measured on real films", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in (*CARD_ROWS, WRIST_ROW):
            rows[cells[0]] = [float(c) for c in cells[1:] if re.fullmatch(r"\d+(\.\d+)?", c)]
    return rows


@pytest.mark.slow
@pytest.mark.skipif(not _films_present(), reason="real films not made: python tests/real_films/fetch.py")
def test_shipped_detectors_reach_the_model_cards_real_film_figures(tmp_path):
    from ra2.cli import main

    ann = tmp_path / "real.json"
    assert main(["annotations", "import", "--format", "labelme", "--src", str(SET / "labels"),
                 "--films", str(SET / "films"), "--out", str(ann)]) == 0
    out = tmp_path / "eval.json"
    assert main(["eval-detectors", "--models", str(ROOT / "weights" / "detectors"), "--data", str(SET / "films"),
                 "--annotations", str(ann), "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    card = _card_figures()
    assert set(card) == {*CARD_ROWS, WRIST_ROW}
    for row, (detector, key) in CARD_ROWS.items():
        films, n, own, other, none = card[row]
        got = result[detector][key]
        assert got["from"] == "marked" and got["n"] == n
        assert got["in_own_box"] == pytest.approx(own, abs=TOLERANCE), row
        assert got["in_other_box"] == pytest.approx(other, abs=TOLERANCE), row
        assert got["in_no_box"] == pytest.approx(none, abs=TOLERANCE), row
    films, n, inside = card[WRIST_ROW]
    assert result["hands"]["carpus_points"]["n"] == n
    assert result["hands"]["carpus_points"]["in_box"] == pytest.approx(inside, abs=TOLERANCE)


def test_the_labels_import_as_ra2_annotations_keeping_every_point(tmp_path):
    """``ra2 annotations import --format labelme`` on the set's labels, with blank stand-ins of the films' sizes
    (the films are not in the repository): every marked joint becomes an object that keeps its point."""
    import numpy as np
    from PIL import Image

    from ra2.annotations import read_annotations
    from ra2.cli import main

    films = tmp_path / "films"
    films.mkdir()
    n_points = n_joints = 0
    for path in sorted((SET / "labels").glob("*.json")):
        doc = json.loads(path.read_text())
        Image.fromarray(np.zeros((doc["imageHeight"], doc["imageWidth"]), np.uint8)).save(films / f"{path.stem}.jpg")
        n_points += len(doc["shapes"])
        n_joints += sum(not s["label"].startswith("w") for s in doc["shapes"])
    out = tmp_path / "real.json"
    assert main(["annotations", "import", "--format", "labelme", "--src", str(SET / "labels"),
                 "--films", str(films), "--out", str(out)]) == 0
    read = read_annotations(out)
    assert len(read) == len(_sources())
    objects = [o for f in read for o in f.objects]
    assert sum(o.site_id is not None for o in objects) == n_joints
    assert sum(len(o.points) for o in objects) == n_points  # joints one point each, carpus its wrist points
