"""ra2.annotation_export: the phantom's ground truth written as labelme files and as COCO reads back through the
importer to exactly the same boxes and carpus crops; ``ra2 annotations export``; the import boundary of the
phantom (no pipeline module imports it)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ra2.annotation_export import COCO_FILE, LabelledBox, export_annotations, labelme_document
from ra2.annotation_import import import_annotations
from ra2.annotations import read_annotations, write_annotations
from ra2.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _by_film(films):
    return {f.file_name: ({o.site_id or f"{f.limb}_carpus": tuple(o.box) for o in f.objects}, f.carpus_box)
            for f in films}


@pytest.mark.parametrize("fmt", ["labelme", "coco"])
def test_ground_truth_round_trip_is_exact(phantom, tmp_path, fmt):
    truth = read_annotations(phantom / "train")
    export_annotations(truth, phantom / "train", tmp_path / "out", fmt)
    src = tmp_path / "out" if fmt == "labelme" else tmp_path / "out" / COCO_FILE
    result = import_annotations(fmt, src, phantom / "train")
    write_annotations(tmp_path / "back.json", result.films)  # the file the training reads (0.01 px)
    assert _by_film(read_annotations(tmp_path / "back.json")) == _by_film(truth)
    assert result.skipped == [] and result.ignored == 0
    if fmt == "labelme":  # in memory too, without the file's rounding
        assert _by_film(result.films) == _by_film(truth)


@pytest.mark.parametrize("fmt", ["labelme", "coco"])
def test_polygon_export_gives_back_polygons_and_boxes(phantom, tmp_path, fmt):
    """``--shapes polygon``: the sites' polygons come back (labelme: exactly; COCO: to its 0.01 px), their bounds
    are the boxes; the carpus stays its integer box."""
    truth = read_annotations(phantom / "train")
    export_annotations(truth, phantom / "train", tmp_path / "out", fmt, shapes="polygon")
    src = tmp_path / "out" if fmt == "labelme" else tmp_path / "out" / COCO_FILE
    result = import_annotations(fmt, src, phantom / "train")
    write_annotations(tmp_path / "back.json", result.films)
    back = read_annotations(tmp_path / "back.json")
    assert _by_film(back) == _by_film(truth)
    polygons = {(f.file_name, o.class_name): o.polygon for f in truth for o in f.objects if o.site_id}
    for f in result.films:
        for o in f.objects:
            if o.site_id:
                np.testing.assert_allclose(o.polygon, polygons[f.file_name, o.class_name], rtol=0,
                                           atol=0 if fmt == "labelme" else 0.005)
            else:
                assert o.polygon.shape == (4, 2)  # the carpus rectangle


def test_ra2_annotation_file_imports_as_coco(phantom, tmp_path):
    """ra2's own annotations.json is COCO (categories ``hands/pip__2``, ``hands/carpus``, ...): imported with
    the built-in mapping it gives its boxes (exact once written: x + w is x2 to 1e-13), polygons and carpus
    crops back."""
    truth = read_annotations(phantom / "train")
    result = import_annotations("coco", phantom / "train" / "annotations.json", phantom / "train")
    write_annotations(tmp_path / "back.json", result.films)
    assert _by_film(read_annotations(tmp_path / "back.json")) == _by_film(truth)
    polygons = {(f.file_name, o.class_name): o.polygon for f in truth for o in f.objects}
    for f in result.films:
        for o in f.objects:
            np.testing.assert_allclose(o.polygon, polygons[f.file_name, o.class_name], atol=1e-4)


def test_labelme_document_is_what_labelme_opens():
    doc = labelme_document([LabelledBox("LH_pip__2", (20.5, 10.25, 50.0, 30.0), 0.97312, "detected"),
                            LabelledBox("LH_carpus", (1.0, 2.0, 3.0, 4.0))], "../films/PT001-LH.png", 100, 200)
    assert doc["imagePath"] == "../films/PT001-LH.png" and doc["imageData"] is None
    assert (doc["imageHeight"], doc["imageWidth"]) == (100, 200)
    assert doc["shapes"][0] == {"label": "LH_pip__2", "points": [[10.25, 20.5], [30.0, 50.0]], "group_id": None,
                                "description": "detected 0.973", "shape_type": "rectangle", "flags": {}}
    assert doc["shapes"][1]["description"] == ""


def test_cli_export_writes_one_labelme_file_per_film(phantom, tmp_path):
    assert main(["annotations", "export", "--annotations", str(phantom / "train" / "annotations.json"),
                 "--films", str(phantom / "train"), "--out", str(tmp_path / "lm")]) == 0
    truth = read_annotations(phantom / "train")
    files = sorted(p.name for p in (tmp_path / "lm").glob("*.json"))
    assert files == sorted(f"{Path(f.file_name).stem}.json" for f in truth)
    doc = json.loads((tmp_path / "lm" / files[0]).read_text())
    film = phantom / "train" / f"{Path(files[0]).stem}.jpg"
    assert (tmp_path / "lm" / doc["imagePath"]).resolve() == film.resolve()


def test_no_pipeline_module_imports_the_phantom():
    """Only the phantom itself, the demo and the ``ra2 phantom`` command (cli) may import ra2.phantom (the
    report's joint maps draw on ra2.schematic, which the phantom builds on)."""
    allowed = {"ra2/demo.py", "ra2/cli.py"}
    offenders = []
    for path in sorted((ROOT / "ra2").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("ra2/phantom/") or rel in allowed:
            continue
        if re.search(r"^\s*(from|import)\s+ra2\.phantom\b", path.read_text(), flags=re.M):
            offenders.append(rel)
    assert offenders == []
    cli = (ROOT / "ra2" / "cli.py").read_text()
    assert cli.count("ra2.phantom") == 1  # the `ra2 phantom` command's handler only
