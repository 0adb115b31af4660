"""The point metric of ``ra2 eval-detectors``: where a joint centre a person marked (labelme points, the RA2
landmark convention) falls among the detected boxes. A tiny foot and hand film, labelme point files written
here, a fake detector with boxes placed by hand, and the shares worked out by hand below."""

import json

import numpy as np
import pytest
from PIL import Image

from ra2.annotation_import import import_annotations
from ra2.annotations import read_annotations, write_annotations
from ra2.detection.detect import FilmDetection, evaluate_detection, point_hits, point_in_box


def _labelme(path, image_name, shapes, width, height):
    doc = {"version": "5.0.1", "flags": {}, "imagePath": image_name, "imageData": None, "imageHeight": height,
           "imageWidth": width, "shapes": [{"label": label, "points": [[x, y]], "group_id": None,
                                            "shape_type": "point", "flags": {}} for label, (y, x) in shapes]}
    path.write_text(json.dumps(doc))


# Marked centres (y, x). Foot film 100 x 200 px, hand film 200 x 100 px.
FOOT_POINTS = {"mtp": (10, 20), "mtp_1": (20, 40), "mtp_2": (20, 80), "mtp_3": (20, 120), "mtp_4": (20, 160),
               "mtp_5": (50, 180)}
HAND_POINTS = {"1_pip_2": (20, 20), "2_pip_3": (20, 50), "w1": (150, 30), "w2": (160, 50), "w3": (150, 70)}
# Detected boxes (y1, x1, y2, x2), placed by hand:
FOOT_BOXES = {
    "LF_mtp__ip": (0, 0, 30, 40),      # holds its point (10, 20); mtp_1's point (20, 40) sits on the far x edge: out
    "LF_mtp__1": (0, 70, 40, 100),     # misses its point (20, 40) but holds mtp_2's (20, 80)
    "LF_mtp__2": (60, 60, 90, 90),     # misses (20, 80)
    "LF_mtp__3": (10, 110, 30, 130),   # holds (20, 120)
    "LF_mtp__4": (10, 150, 30, 170),   # holds (20, 160)
    "LF_mtp__5": (10, 150, 30, 175),   # misses (50, 180) but also holds mtp_4's (20, 160)
}
HAND_BOXES = {"LH_pip__2": (10, 10, 30, 30), "LH_pip__3": (0, 0, 5, 5)}
CARPUS_BOX = (140, 20, 170, 60)  # holds w1 (150, 30) and w2 (160, 50), not w3 (150, 70)


class FixedDetector:
    """Returns the hand-placed boxes above for every film of a limb."""

    def detect_film(self, film, limb):
        boxes = FOOT_BOXES if limb == "LF" else HAND_BOXES
        return FilmDetection(limb=limb, boxes=dict(boxes), sources={s: "detected" for s in boxes},
                             scores={s: 0.9 for s in boxes}, carpus_box=CARPUS_BOX if limb == "LH" else None)


@pytest.fixture
def point_set(tmp_path):
    films, labels = tmp_path / "films", tmp_path / "labels"
    films.mkdir()
    labels.mkdir()
    Image.fromarray(np.zeros((100, 200), np.uint8)).save(films / "T001-LF.png")
    Image.fromarray(np.zeros((200, 100), np.uint8)).save(films / "T001-LH.png")
    _labelme(labels / "T001-LF.json", "T001-LF.png", FOOT_POINTS.items(), 200, 100)
    _labelme(labels / "T001-LH.json", "T001-LH.png", HAND_POINTS.items(), 100, 200)
    result = import_annotations("labelme", labels, films)
    write_annotations(films / "annotations.json", result.films)
    return films


def test_point_in_box_near_edges_inside_far_edges_outside():
    box = (10, 20, 30, 40)
    assert point_in_box((10, 20), box) and point_in_box((29.99, 39.99), box)
    assert not point_in_box((30, 25), box) and not point_in_box((15, 40), box) and not point_in_box((9.99, 25), box)


def test_point_hits_by_hand():
    points = {"LF_mtp__ip": (10, 20), "LF_mtp__1": (20, 40), "LF_mtp__2": (20, 80), "LF_mtp__4": (20, 160)}
    assert point_hits(points, FOOT_BOXES) == {"LF_mtp__ip": (True, False), "LF_mtp__1": (False, False),
                                              "LF_mtp__2": (False, True), "LF_mtp__4": (True, True)}


def test_import_keeps_the_marked_points_and_the_file_round_trips(point_set):
    films = {f.limb: f for f in read_annotations(point_set / "annotations.json")}
    by_site = {o.site_id: o for o in films["LF"].objects}
    assert by_site["LF_mtp__2"].points.tolist() == [[20.0, 80.0]]
    carpus = [o for o in films["LH"].objects if o.site_id is None][0]
    assert carpus.points.tolist() == [[150.0, 30.0], [160.0, 50.0], [150.0, 70.0]]
    # A file written before points were kept (no points_yx) still reads, with points None.
    doc = json.loads((point_set / "annotations.json").read_text())
    for a in doc["annotations"]:
        a.pop("points_yx", None)
    (point_set / "old.json").write_text(json.dumps(doc))
    assert all(o.points is None for f in read_annotations(point_set / "old.json") for o in f.objects)


def test_eval_detectors_point_shares_by_hand(point_set):
    result = evaluate_detection(None, point_set, detector=FixedDetector())
    feet = result["feet"]["points"]
    # own: ip, mtp 3, mtp 4 -> 3 of 6; other: mtp 2 (in mtp 1's box), mtp 4 (in mtp 5's box) -> 2 of 6;
    # in no box: mtp 1, mtp 5 -> 2 of 6.
    assert feet["n"] == 6
    assert feet["in_own_box"] == pytest.approx(3 / 6)
    assert feet["in_other_box"] == pytest.approx(2 / 6)
    assert feet["in_no_box"] == pytest.approx(2 / 6)
    assert feet["per_site"]["LF_mtp__2"] == {"n": 1, "in_own_box": 0.0, "in_other_box": 1.0, "in_no_box": 0.0}
    hands = result["hands"]["points"]
    # pip 2 in its box; pip 3's point (20, 50) in no box.
    assert (hands["n"], hands["in_own_box"], hands["in_other_box"], hands["in_no_box"]) == (2, 0.5, 0.0, 0.5)
    assert result["hands"]["carpus_points"] == {"n": 3, "in_box": pytest.approx(2 / 3)}
    assert feet["from"] == "marked" and "points" not in result["wrist_erosion"]


def test_box_annotations_score_their_box_centres(point_set, tmp_path):
    """Without marked points (a phantom's truth, boxes drawn by hand) the box centre stands for the joint."""
    doc = json.loads((point_set / "annotations.json").read_text())
    for a in doc["annotations"]:
        a.pop("points_yx", None)
    (tmp_path / "boxes.json").write_text(json.dumps(doc))
    result = evaluate_detection(None, point_set, tmp_path / "boxes.json", detector=FixedDetector())
    # The imported boxes are centred on the points, so the shares are the same; no wrist points this time.
    assert result["feet"]["points"]["from"] == "box centres"
    assert result["feet"]["points"]["in_own_box"] == pytest.approx(3 / 6)
    assert "carpus_points" not in result["hands"]
