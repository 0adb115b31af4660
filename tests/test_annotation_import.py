"""ra2.annotation_import and ``ra2 annotations import``: small hand-written COCO, labelme and VIA files with
their expected boxes worked out by hand, the RA2 landmark convention (points -> boxes), and the exact error
of each kind of bad record."""

import json

import numpy as np
import pytest
from PIL import Image

from ra2 import Ra2Error
from ra2.annotation_import import CARPUS_PAD_FACTOR, POINT_BOX_FACTOR, import_annotations, joint_spacing
from ra2.annotations import read_annotations
from ra2.cli import main


def _film(folder, name, width, height):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width), 90, np.uint8)).save(folder / name)
    return folder / name


def _labelme(path, image_path, shapes, width, height):
    doc = {"version": "4.5.6", "flags": {}, "shapes": [
        {"label": label, "points": points, "group_id": None, "shape_type": kind, "flags": {}}
        for label, kind, points in shapes], "imagePath": image_path, "imageData": "", "imageHeight": height,
        "imageWidth": width}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _boxes(film):
    return {o.site_id or f"{film.limb}_carpus": tuple(o.box) for o in film.objects}


@pytest.fixture
def films(tmp_path):
    d = tmp_path / "films"
    _film(d, "PT001-LH.png", 200, 100)
    _film(d, "PT002-RH.png", 400, 300)
    _film(d, "PT002-LF.png", 250, 200)
    return d


# ------------------------------------------------------------------------------------------------ labelme
def test_labelme_rectangles_and_polygons_give_their_boxes(tmp_path, films):
    src = tmp_path / "lm"
    _labelme(src / "a.json", "..\\..\\pictures\\PT001-LH.png", [
        ("LH_pip__2", "rectangle", [[30, 50], [10, 20]]),  # corners in any order
        ("pip__3", "polygon", [[40, 10], [60, 12], [50, 30]]),
        ("hands/mcp__3", "rectangle", [[100.25, 60.5], [120.75, 80]]),
    ], 200, 100)
    result = import_annotations("labelme", src, films)
    (film,) = result.films
    assert (film.patient_id, film.limb, film.file_name, film.height, film.width) == ("PT001", "LH", "PT001-LH.png",
                                                                                      100, 200)
    assert _boxes(film) == {"LH_pip__2": (20.0, 10.0, 50.0, 30.0), "LH_pip__3": (10.0, 40.0, 30.0, 60.0),
                            "LH_mcp__3": (60.5, 100.25, 80.0, 120.75)}
    pip3 = next(o for o in film.objects if o.site_id == "LH_pip__3")
    np.testing.assert_array_equal(pip3.polygon, [[10, 40], [12, 60], [30, 50]])  # (y, x)
    assert film.carpus_box is None and result.skipped == [] and result.ignored == 0


def test_ra2_landmark_points_become_boxes_around_every_joint(tmp_path, films):
    """A hand file as the public RA2 landmark files are written (points, ``imagePath`` with Windows
    separators, empty ``imageData``): boxes of side POINT_BOX_FACTOR x the joint spacing around every joint,
    the wrist points seeding the carpus region."""
    assert POINT_BOX_FACTOR == 1.0 and CARPUS_PAD_FACTOR == 1.0  # the numbers below are worked out for these
    src = tmp_path / "landmarks"
    pips = [(f"{i + 1}_pip_{i + 2}", [[100 + 40 * i, 100]]) for i in range(4)]  # x 100..220, y 100
    mcps = [(f"{i + 6}_mcp_{i + 2}", [[100 + 40 * i, 160]]) for i in range(4)]  # y 160
    others = [("5_mcp_1", [[60, 190]]), ("0_mcp_ip", [[30, 150]]),
              ("w1", [[80, 250]]), ("w2", [[140, 280]]), ("w3", [[200, 250]])]
    _labelme(src / "PT002-RH.json", "..\\PT002-RH.png",
             [(label, "point", pts) for label, pts in pips + mcps + others], 400, 300)
    # Nearest-neighbour distances: 40 for the eight finger joints, 50 for MCP 1 and the thumb IP (3-4-5
    # triangles): median 40, so every joint box is 40 px wide, centred on its point.
    (film,) = import_annotations("labelme", src, films).films
    assert film.limb == "RH"
    expected = {}
    for i in range(4):
        x = 100 + 40 * i
        expected[f"RH_pip__{i + 2}"] = (80.0, x - 20.0, 120.0, x + 20.0)
        expected[f"RH_mcp__{i + 2}"] = (140.0, x - 20.0, 180.0, x + 20.0)
    expected["RH_mcp__1"] = (170.0, 40.0, 210.0, 80.0)
    expected["RH_mcp__ip"] = (130.0, 10.0, 170.0, 50.0)
    # Wrist points: y 250..280, x 80..200, grown by 40 on every side and clipped to the 300-px-high film.
    expected["RH_carpus"] = (210.0, 40.0, 300.0, 240.0)
    assert _boxes(film) == expected
    assert film.carpus_box == (210, 40, 300, 240)
    assert [o.class_name for o in film.objects][-1] == "carpus"


def test_foot_landmarks_and_spacing_rule(tmp_path, films):
    src = tmp_path / "lm"
    shapes = [("mtp", "point", [[50, 50]])] + [(f"mtp_{i}", "point", [[20 + 30 * i, 120]]) for i in range(1, 6)]
    _labelme(src / "f.json", "PT002-LF.png", shapes, 250, 200)
    (film,) = import_annotations("labelme", src, films).films
    # spacing: the five MTPs are 30 apart, the big-toe IP (50, 50) is 70 from MTP 1 (50, 120): median 30
    assert joint_spacing(np.array([[50, 50]] + [[120, 20 + 30 * i] for i in range(1, 6)])) == 30.0
    assert _boxes(film) == {"LF_mtp__ip": (35.0, 35.0, 65.0, 65.0),
                            **{f"LF_mtp__{i}": (105.0, 5.0 + 30 * i, 135.0, 35.0 + 30 * i) for i in range(1, 6)}}
    assert film.carpus_box is None


# ------------------------------------------------------------------------------------------------ COCO, VIA
def test_coco_boxes_segmentation_and_a_mapping_file(tmp_path, films):
    doc = {"images": [{"id": 7, "file_name": "PT001-LH.png", "height": 100, "width": 200},
                      {"id": 8, "file_name": "sub/PT002-LF.png", "height": 200, "width": 250}],
           "categories": [{"id": 1, "name": "joint_pip2"}, {"id": 2, "name": "wrist"}, {"id": 3, "name": "ruler"},
                          {"id": 4, "name": "toe1"}],
           "annotations": [
               {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 20, 30, 15.5]},
               {"id": 2, "image_id": 7, "category_id": 2, "bbox": [50, 40, 60, 50],
                "segmentation": [[50, 40, 110, 40, 110, 90, 50, 90]]},
               {"id": 3, "image_id": 7, "category_id": 3, "bbox": [0, 0, 5, 5]},
               {"id": 4, "image_id": 8, "category_id": 4, "bbox": [100.5, 60, 20, 20], "segmentation": {"counts": "x"}},
           ]}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    (tmp_path / "map.yaml").write_text("joint_pip2: pip__2\nwrist: carpus\nruler: null\ntoe1: LF_mtp__1\n")
    result = import_annotations("coco", tmp_path / "c.json", films, mapping=tmp_path / "map.yaml")
    foot, hand = sorted(result.films, key=lambda f: f.limb)  # LF, LH
    assert _boxes(hand) == {"LH_pip__2": (20.0, 10.0, 35.5, 40.0), "LH_carpus": (40.0, 50.0, 90.0, 110.0)}
    assert hand.carpus_box == (40, 50, 90, 110)
    assert _boxes(foot) == {"LF_mtp__1": (60.0, 100.5, 80.0, 120.5)}
    assert result.ignored == 1 and result.skipped == []


def test_via_project_rect_polygon_point(tmp_path, films):
    size = (films / "PT001-LH.png").stat().st_size
    meta = {f"PT001-LH.png{size}": {"filename": "PT001-LH.png", "size": size, "file_attributes": {}, "regions": [
        {"shape_attributes": {"name": "rect", "x": 10, "y": 20, "width": 30, "height": 15},
         "region_attributes": {"label": "mcp__2"}},
        {"shape_attributes": {"name": "polygon", "all_points_x": [60, 80, 70], "all_points_y": [10, 10, 40]},
         "region_attributes": {"joint": "mcp__3"}},
        {"shape_attributes": {"name": "rect", "x": 100, "y": 50, "width": 40, "height": 30},
         "region_attributes": {"label": "wrist__nav"}},
    ]}}
    (tmp_path / "via.json").write_text(json.dumps({"_via_settings": {}, "_via_img_metadata": meta}))
    (film,) = import_annotations("via", tmp_path / "via.json", films).films
    assert _boxes(film) == {"LH_mcp__2": (20.0, 10.0, 35.0, 40.0), "LH_mcp__3": (10.0, 60.0, 40.0, 80.0),
                            "LH_wrist__nav": (50.0, 100.0, 80.0, 140.0)}
    # wrist areas without a carpus region: the carpus crop is their bounding box, their carpus coordinates follow
    assert film.carpus_box == (50, 100, 80, 140)
    nav = next(o for o in film.objects if o.site_id == "LH_wrist__nav")
    assert nav.box_in_carpus == (0.0, 0.0, 30.0, 40.0)


# ------------------------------------------------------------------------------------------------ bad input
def _one_bad(tmp_path, films, shapes, image_path="PT001-LH.png", width=200, height=100):
    src = tmp_path / "bad"
    path = _labelme(src / "x.json", image_path, shapes, width, height)
    with pytest.raises(Ra2Error) as err:
        import_annotations("labelme", src, films)
    return path, str(err.value)


def test_unknown_label_names_file_and_record(tmp_path, films):
    path, msg = _one_bad(tmp_path, films, [("LH_pip__2", "rectangle", [[1, 1], [5, 5]]),
                                           ("pip9", "rectangle", [[1, 1], [5, 5]])])
    assert msg == f"{path}: shape 2 ('pip9'): unknown label 'pip9' (mapping default)"


def test_box_outside_the_film(tmp_path, films):
    path, msg = _one_bad(tmp_path, films, [("LH_pip__2", "rectangle", [[10, 20], [250, 50]])])
    assert msg == (f"{path}: shape 1 ('LH_pip__2'): box (y1, x1, y2, x2) = (20, 10, 50, 250) lies outside the "
                   "200x100 film")


def test_missing_film(tmp_path, films):
    path, msg = _one_bad(tmp_path, films, [("pip__2", "rectangle", [[1, 1], [5, 5]])], image_path="C:\\x\\PT009-LH.png")
    assert msg == f"{path}: imagePath 'C:\\\\x\\\\PT009-LH.png': film PT009-LH.png not found in {films}"


def test_size_mismatch(tmp_path, films):
    path, msg = _one_bad(tmp_path, films, [("pip__2", "rectangle", [[1, 1], [5, 5]])], height=99)
    assert msg == f"{path}: imagePath 'PT001-LH.png': film PT001-LH.png is 200x100 px but the annotation says 200x99"


def test_site_of_another_limb_and_twice(tmp_path, films):
    path, msg = _one_bad(tmp_path, films, [("RH_pip__2", "rectangle", [[1, 1], [5, 5]])])
    assert msg == f"{path}: shape 1 ('RH_pip__2'): names site RH_pip__2 on a left hand film (LH)"
    path, msg = _one_bad(tmp_path, films, [("pip__2", "rectangle", [[1, 1], [5, 5]]),
                                           ("1_pip_2", "point", [[3, 3]])])
    assert msg == f"{path}: shape 2 ('1_pip_2'): site LH_pip__2 is annotated twice (also shape 1 ('pip__2'))"


def test_coco_bad_category_and_via_bad_shape(tmp_path, films):
    doc = {"images": [{"id": 1, "file_name": "PT001-LH.png", "height": 100, "width": 200}],
           "categories": [{"id": 1, "name": "pip__2"}],
           "annotations": [{"id": 5, "image_id": 1, "category_id": 9, "bbox": [1, 1, 2, 2]}]}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(Ra2Error) as err:
        import_annotations("coco", tmp_path / "c.json", films)
    assert str(err.value) == f"{tmp_path / 'c.json'}: annotation id 5: unknown category_id 9"
    meta = {"k": {"filename": "PT001-LH.png", "size": -1, "regions": [
        {"shape_attributes": {"name": "circle", "cx": 5, "cy": 5, "r": 2}, "region_attributes": {"label": "pip__2"}}]}}
    (tmp_path / "v.json").write_text(json.dumps({"_via_img_metadata": meta}))
    with pytest.raises(Ra2Error) as err:
        import_annotations("via", tmp_path / "v.json", films)
    assert str(err.value) == (f"{tmp_path / 'v.json'}: region 1 of 'PT001-LH.png' ('pip__2'): unsupported shape "
                              f"'circle' (rect, polygon or point)")


def test_skip_bad_keeps_the_good_records_and_counts_the_bad(tmp_path, films):
    src = tmp_path / "lm"
    a = _labelme(src / "a.json", "PT001-LH.png", [("pip__2", "rectangle", [[1, 2], [5, 6]]),
                                                  ("pip9", "rectangle", [[1, 1], [5, 5]])], 200, 100)
    b = _labelme(src / "b.json", "PT009-LH.png", [("pip__2", "rectangle", [[1, 1], [5, 5]])], 200, 100)
    result = import_annotations("labelme", src, films, skip_bad=True)
    (film,) = result.films
    assert _boxes(film) == {"LH_pip__2": (2.0, 1.0, 6.0, 5.0)}
    assert result.skipped == [f"{a}: shape 2 ('pip9'): unknown label 'pip9' (mapping default)",
                              f"{b}: imagePath 'PT009-LH.png': film PT009-LH.png not found in {films}"]


def test_cli_writes_the_file_and_reports_bad_input_in_one_line(tmp_path, films, capsys):
    src = tmp_path / "lm"
    _labelme(src / "a.json", "PT001-LH.png", [("pip__2", "rectangle", [[1, 2], [5, 6]])], 200, 100)
    out = tmp_path / "ann.json"
    assert main(["annotations", "import", "--format", "labelme", "--src", str(src), "--films", str(films),
                 "--out", str(out)]) == 0
    (film,) = read_annotations(out)
    assert _boxes(film) == {"LH_pip__2": (2.0, 1.0, 6.0, 5.0)}
    _labelme(src / "b.json", "PT001-LH.png", [("thumb", "point", [[1, 2]])], 200, 100)
    capsys.readouterr()
    assert main(["annotations", "import", "--format", "labelme", "--src", str(src), "--films", str(films),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (f"ra2: error: {src / 'b.json'}: imagePath 'PT001-LH.png': film "
                                            f"PT001-LH.png is annotated twice (also in {src / 'a.json'})")


def test_mapping_file_with_a_bad_target(tmp_path, films):
    (tmp_path / "m.json").write_text(json.dumps({"j1": "pip__9"}))
    with pytest.raises(Ra2Error) as err:
        import_annotations("labelme", tmp_path, films, mapping=tmp_path / "m.json")
    assert str(err.value) == (f"{tmp_path / 'm.json'}: label 'j1': target 'pip__9' is not a site id, a detector "
                              f"class, 'carpus' or null")
