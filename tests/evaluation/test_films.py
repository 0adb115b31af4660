"""ra2.evaluation.films: schematics (ra2.schematic), the detections file, crops of chosen cells."""

import json

import numpy as np
import pytest

from ra2 import Ra2Error
from ra2 import contract as C
from ra2.annotations import read_annotations
from ra2.evaluation.films import limb_layouts, overlay_films, read_detections, worst_crops


def test_layouts_place_every_site_inside_its_schematic():
    layouts = limb_layouts()
    for limb in C.LIMBS:
        image, centres = layouts[limb]
        assert set(centres) == {s.id for s in C.sites_of_limb(limb)}
        h, w = image.shape
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert all(0 <= y < h and 0 <= x < w for y, x in centres.values())
    # the right hand is the mirror image of the left: PIP 2 on the other side of the thumb IP
    (_, lh), (_, rh) = layouts["LH"], layouts["RH"]
    assert np.sign(lh["LH_pip__2"][1] - lh["LH_mcp__ip"][1]) == -np.sign(rh["RH_pip__2"][1] - rh["RH_mcp__ip"][1])


def test_read_detections_names_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "detections.json"
    bad.write_text(json.dumps({"films": {"P1-XX": {}}}))
    with pytest.raises(Ra2Error, match=r"detections.json: film key 'P1-XX'"):
        read_detections(bad)
    bad.write_text(json.dumps({"films": {"P1-LH": {"LH_nope__1": [0, 0, 1, 1]}}}))
    with pytest.raises(Ra2Error, match="bad site 'LH_nope__1'"):
        read_detections(bad)
    bad.write_text(json.dumps({"boxes": {}}))
    with pytest.raises(Ra2Error, match="no 'films' object"):
        read_detections(bad)
    bad.write_text(json.dumps({"films": {}, "carpus": {"P1-LF": [0, 0, 1, 1]}}))
    with pytest.raises(Ra2Error, match="carpus of 'P1-LF': expected a hand film key"):
        read_detections(bad)
    bad.write_text(json.dumps({"films": {}, "carpus": {"P1-LH": [0, 0, 1]}}))
    with pytest.raises(Ra2Error, match=r"carpus of 'P1-LH'.*got \[0, 0, 1\]"):
        read_detections(bad)
    bad.write_text(json.dumps({"films": {}}))  # written before the carpus was recorded
    assert read_detections(bad)["carpus"] == {}


def test_crops_of_cells_are_cut_around_their_site_box(phantom):
    anns = {(a.patient_id, a.limb): a for a in read_annotations(phantom / "gold_annotations.json")}
    pid = sorted({p for p, _ in anns})[0]
    det = {"films": {f"{p}-{limb}": {o.site_id: list(o.box) for o in a.objects if o.site_id}
                     for (p, limb), a in anns.items()}, "box_sources": {}}
    cells = [{"patient": pid, "column": "RF_mtp_E__3", "gold": 4.0, "prediction": 1.25},
             {"patient": "nobody", "column": "LH_pip_J__2", "gold": 0.0, "prediction": 1.0}]
    crops = worst_crops(phantom / "test", det, cells, size=32)
    assert len(crops) == 1  # no film for "nobody": skipped
    crop, caption = crops[0]
    assert crop.shape == (32, 32) and caption == f"{pid} RF_mtp_E__3\ntrue 4 pred 1.2"
    from ra2.detection.crops import cut_crop
    from ra2.io import find_film, read_film

    film = read_film(find_film(phantom / "test", pid, "RF"))
    np.testing.assert_array_equal(crop, cut_crop(film, det["films"][f"{pid}-RF"]["RF_mtp__3"], 32, mirror=True))
    films = overlay_films(phantom / "test", det, n=3)
    assert len(films) == 3 and films[0][1].ndim == 2 and films[0][3] == {}
