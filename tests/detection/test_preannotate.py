"""ra2.detection.preannotate and ``ra2 detect``: the detectors' boxes written as labelme / COCO pre-annotations
read back through the importer to the same boxes (detect -> labelme -> import is exact), and the overlays show
each box in its source's colour."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ra2 import contract
from ra2.annotation_import import import_annotations
from ra2.cli import main
from ra2.detection.detect import FilmDetection
from ra2.detection.preannotate import SOURCE_COLOURS, preannotate_folder

SOURCES = ("detected", "reassigned", "layout", "layout_default")


class FakeJointDetector:
    """Boxes with many decimals on a grid of the film, sources in turn; the carpus for hands."""

    def __init__(self):
        self.calls = []

    def detect_film(self, film, limb):
        self.calls.append((film.shape, limb))
        h, w = film.shape
        out = FilmDetection(limb=limb)
        for i, site in enumerate(contract.sites_of_limb(limb)):
            r, c = divmod(i, 4)
            y, x = 3.123456789 + r * h / 15, 2.987654321 + c * w / 4.5
            out.boxes[site.id] = (y, x, y + h / 31.7, x + w / 9.3)
            out.sources[site.id] = SOURCES[i % 4]
            out.scores[site.id] = 0.0 if SOURCES[i % 4].startswith("layout") else 0.5 + i / 100
        if limb in contract.HAND_LIMBS:
            out.carpus_box = (h * 0.61, w * 0.2, h * 0.93, w * 0.77)
            out.carpus_score, out.carpus_source = 0.9, "detected"
        return out


@pytest.fixture
def films(phantom, tmp_path):
    d = tmp_path / "films"
    d.mkdir()
    for name in ("PHA0001-RH.jpg", "PHA0001-LF.jpg"):
        shutil.copy(phantom / "train" / name, d / name)
    (d / "notes.txt").write_text("not a film")
    return d


def test_detect_labelme_import_round_trip_is_exact(films, tmp_path):
    fake = FakeJointDetector()
    out = tmp_path / "pre"
    result = preannotate_folder(films, out, detector=fake, fmt="labelme", overlays=True)
    assert sorted(limb for _, limb in fake.calls) == ["LF", "RH"]
    assert sorted(p.split("/")[-1] for p in result["files"]) == ["PHA0001-LF.json", "PHA0001-RH.json"]
    (out / "run.json").write_text("{}")  # what `ra2 detect` writes beside the files: not a labelme file
    imported = {f.limb: f for f in import_annotations("labelme", out, films).films}
    for shape, limb in list(fake.calls):
        found = fake.detect_film(np.zeros(shape), limb)
        boxes = {o.site_id: tuple(o.box) for o in imported[limb].objects if o.site_id}
        assert boxes == found.boxes  # exact, to the last bit
        carpus = [tuple(o.box) for o in imported[limb].objects if o.site_id is None]
        assert carpus == ([found.carpus_box] if found.carpus_box else [])
    rh = imported["RH"]
    assert rh.carpus_box == (int(np.floor(rh.height * 0.61)), int(np.floor(rh.width * 0.2)),
                             int(np.ceil(rh.height * 0.93)), int(np.ceil(rh.width * 0.77)))
    doc = json.loads((out / "PHA0001-RH.json").read_text())
    assert doc["imagePath"] == "../films/PHA0001-RH.jpg" and doc["imageData"] is None
    assert doc["shapes"][1]["description"] == "reassigned 0.510"


def test_coco_output_round_trip_to_a_hundredth(films, tmp_path):
    fake = FakeJointDetector()
    result = preannotate_folder(films, tmp_path / "pre", detector=fake, fmt="coco")
    (coco,) = result["files"]
    imported = {f.limb: f for f in import_annotations("coco", coco, films).films}
    for shape, limb in fake.calls[:2]:
        found = fake.detect_film(np.zeros(shape), limb)
        for o in imported[limb].objects:
            if o.site_id:
                np.testing.assert_allclose(o.box, np.round(found.boxes[o.site_id], 2), atol=1e-9, rtol=0)
    ann = json.loads(Path(coco).read_text())["annotations"][0]
    assert ann["source"] == "detected" and ann["score"] == 0.5


def test_overlay_draws_each_box_in_its_source_colour(tmp_path):
    films = tmp_path / "big"
    films.mkdir()
    Image.fromarray(np.full((2000, 1000), 60, np.uint8)).save(films / "PT005-LF.png")  # shrunk to 1600 px
    fake = FakeJointDetector()
    (png,) = preannotate_folder(films, tmp_path / "pre", detector=fake, overlays=True)["overlays"]
    picture = np.asarray(Image.open(png).convert("RGB"))
    scale = 1600 / 2000
    assert picture.shape == (1600, 800, 3)
    found = fake.detect_film(np.zeros((2000, 1000)), "LF")
    for site_id, box in found.boxes.items():
        y2 = int(round(box[2] * scale)) - 1  # bottom edge (captions sit at the top-left)
        xm = (int(round(box[1] * scale)) + int(round(box[3] * scale))) // 2
        assert tuple(int(v) for v in picture[y2, xm]) == SOURCE_COLOURS[found.sources[site_id]], site_id
    assert tuple(int(v) for v in picture[5, 795]) == (60, 60, 60)  # the film itself, outside every box


def test_cli_detect_without_detectors_is_one_line(films, tmp_path, capsys):
    assert main(["detect", "--films", str(films), "--models", str(tmp_path / "none"), "--out",
                 str(tmp_path / "pre"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"ra2: error: {tmp_path / 'none' / 'feet' / 'config.json'}: missing detector file "
                       f"(train the detectors first)")
