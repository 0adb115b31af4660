"""ra2.detection.detect: detect_film's coordinate mapping, with fake detectors that return known boxes in their
own frame; the scoring of detectors against ground truth (score_detector_images, evaluate_detection)."""

import math

import numpy as np
import pytest

from ra2 import contract
from ra2.annotations import read_annotations
from ra2.detection.assign import Layout
from ra2.detection.detect import SOURCE_DEFAULT, Detector, FilmDetection, JointDetector, box_iou, evaluate_detection
from ra2.detection.frame import Frame
from ra2.phantom.dataset import GOLD_ANNOTATIONS_FILE

from conftest import PHANTOM

H, W = 300, 200  # film size
SIDE = 64  # every fake detector's input side


class FakeModel:
    """Returns the given boxes (detector-image pixels) for classes 1..C; records the images it sees."""

    def __init__(self, boxes, classes=None):
        self.boxes = np.asarray(boxes, dtype=float)
        self.classes = np.arange(1, len(boxes) + 1) if classes is None else np.asarray(classes)
        self.seen = []

    def detect(self, images):
        self.seen.extend(images)
        return [{"rois": self.boxes.copy(), "class_ids": self.classes.copy(),
                 "scores": np.linspace(0.9, 0.5, len(self.boxes))}]


def _grid_boxes(n, h, w):
    """n distinct boxes inside an h x w image, on a grid (y1, x1, y2, x2)."""
    cols = 3
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        y = 2 + r * (h - 4) / math.ceil(n / cols)
        x = 2 + c * (w - 4) / cols
        out.append([y, x, y + 5.5, x + 7.25])
    return np.array(out)


def _layout(boxes):
    n = len(boxes)
    return Layout.fit([{i + 1: tuple(b) for i, b in enumerate(boxes)}], n)


def _detector(name, boxes, classes=None):
    n = len(contract.DETECTOR_CLASSES[name])
    ref = _grid_boxes(n, 40, 40)
    return Detector(name, FakeModel(boxes, classes), SIDE, _layout(ref), {"origin": [20.0, 20.0], "scale": 10.0})


def _fakes(hands_h, hands_w, carpus_box_image):
    """Fake detectors for a film whose hands image is hands_h x hands_w; carpus class at the given box."""
    hands = _grid_boxes(11, hands_h, hands_w)
    hands[10] = carpus_box_image
    return {
        "hands": _detector("hands", hands),
        "feet": _detector("feet", _grid_boxes(6, hands_h, hands_w)),
        "wrist_erosion": _detector("wrist_erosion", _grid_boxes(6, 40, 40)),
        "wrist_narrowing": _detector("wrist_narrowing", _grid_boxes(6, 40, 40) + 3.0),
    }


def _film():
    film = np.zeros((H, W), np.float32)
    film[:, : W // 4] = 1.0  # bright band on the left edge: tells a mirrored image from an unmirrored one
    return film


def _expected_film_box(box, top, left, h, w, out_h, out_w, mirror):
    """Independent inverse mapping of a detector-image box to film pixels."""
    sy, sx = out_h / h, out_w / w
    y1, y2 = box[0] / sy + top, box[2] / sy + top
    xa, xb = box[1] / sx, box[3] / sx
    if mirror:
        xa, xb = w - xb, w - xa
    return (y1, xa + left, y2, xb + left)


@pytest.mark.parametrize("limb", ["LH", "RH"])
def test_hand_and_wrist_boxes_map_back_to_the_film(limb):
    out_h, out_w = SIDE, round(W * SIDE / H)  # 64 x 43
    carpus_img = (30.0, 10.0, 50.0, 33.0)
    dets = _fakes(out_h, out_w, carpus_img)
    found = JointDetector(dets).detect_film(_film(), limb)
    mirror = limb == "RH"

    seen = dets["hands"].model.seen[0][:, :, 0]
    assert seen.shape == (out_h, out_w)
    bright_left = seen[:, :5].mean() > seen[:, -5:].mean()
    assert bright_left != mirror  # right hands are mirrored before detection

    for k, cls in enumerate(contract.DETECTOR_CLASSES["hands"][:10]):
        box = dets["hands"].model.boxes[k]
        expected = _expected_film_box(box, 0, 0, H, W, out_h, out_w, mirror)
        assert found.boxes[f"{limb}_{cls}"] == pytest.approx(expected, abs=1e-9)
        assert found.sources[f"{limb}_{cls}"] == "detected"
    carpus_film = _expected_film_box(carpus_img, 0, 0, H, W, out_h, out_w, mirror)
    assert found.carpus_box == pytest.approx(carpus_film, abs=1e-9)

    # the wrist detectors see the integer carpus region, shrunk so its long side is SIDE
    top, left = math.floor(carpus_film[0]), math.floor(carpus_film[1])
    ch, cw = math.ceil(carpus_film[2]) - top, math.ceil(carpus_film[3]) - left
    s = SIDE / max(ch, cw)
    wh, ww = round(ch * s), round(cw * s)
    for name in contract.CARPUS_DETECTORS:
        assert dets[name].model.seen[0].shape[:2] == (wh, ww)
        for k, cls in enumerate(contract.DETECTOR_CLASSES[name]):
            box = np.clip(dets[name].model.boxes[k], 0, [wh, ww, wh, ww])  # assignment clips nothing here
            expected = _expected_film_box(box, top, left, ch, cw, wh, ww, mirror)
            assert found.boxes[f"{limb}_{cls}"] == pytest.approx(expected, abs=1e-9)
    assert set(found.boxes) == {s.id for s in contract.sites_of_limb(limb)}
    assert not found.fallback


@pytest.mark.parametrize("limb", ["LF", "RF"])
def test_foot_boxes_map_back_and_only_the_feet_detector_runs(limb):
    out_h, out_w = SIDE, round(W * SIDE / H)
    dets = _fakes(out_h, out_w, (30.0, 10.0, 50.0, 33.0))
    found = JointDetector(dets).detect_film(_film(), limb)
    assert not dets["hands"].model.seen and not dets["wrist_erosion"].model.seen
    for k, cls in enumerate(contract.DETECTOR_CLASSES["feet"]):
        expected = _expected_film_box(dets["feet"].model.boxes[k], 0, 0, H, W, out_h, out_w, limb == "RF")
        assert found.boxes[f"{limb}_{cls}"] == pytest.approx(expected, abs=1e-9)
    assert found.carpus_box is None and set(found.boxes) == {s.id for s in contract.sites_of_limb(limb)}


def test_frame_round_trip_is_exact():
    rng = np.random.default_rng(0)
    for mirror in (False, True):
        frame = Frame.fit((17, 23, 217, 143), mirror, 64)
        for _ in range(20):
            y1, x1 = rng.uniform(17, 150), rng.uniform(23, 100)
            box = (y1, x1, y1 + rng.uniform(1, 40), x1 + rng.uniform(1, 40))
            assert frame.box_to_film(frame.box_to_image(box)) == pytest.approx(box, abs=1e-9)


def test_fewer_than_two_classes_use_the_default_placement_and_flag_it():
    out_h, out_w = SIDE, round(W * SIDE / H)
    dets = _fakes(out_h, out_w, (30.0, 10.0, 50.0, 33.0))
    dets["feet"] = _detector("feet", [[10.0, 10.0, 20.0, 20.0]], classes=[3])
    found = JointDetector(dets).detect_film(_film(), "LF")
    assert found.fallback
    assert found.sources["LF_mtp__2"] == "detected"
    assert all(found.sources[f"LF_{c}"] == SOURCE_DEFAULT for i, c in enumerate(contract.DETECTOR_CLASSES["feet"])
               if i != 2)
    d = dets["feet"]
    default = d.default_boxes()[0]  # class 1, placed at the training mean, mapped to the film
    expected = _expected_film_box(default, 0, 0, H, W, out_h, out_w, False)
    assert found.boxes["LF_mtp__ip"] == pytest.approx(expected, abs=1e-9)


def test_missing_classes_are_filled_from_the_layout_and_all_boxes_stay_on_the_film():
    out_h, out_w = SIDE, round(W * SIDE / H)
    dets = _fakes(out_h, out_w, (30.0, 10.0, 50.0, 33.0))
    boxes = _grid_boxes(6, out_h, out_w)
    dets["feet"] = Detector("feet", FakeModel(boxes[:4]), SIDE, _layout(boxes), {"origin": [0, 0], "scale": 1.0})
    found = JointDetector(dets).detect_film(_film(), "RF")
    assert [found.sources[f"RF_{c}"] for c in contract.DETECTOR_CLASSES["feet"]] == ["detected"] * 4 + ["layout"] * 2
    for k in (4, 5):  # the layout was fitted on exactly these boxes: the guesses land on them
        cls = contract.DETECTOR_CLASSES["feet"][k]
        expected = _expected_film_box(boxes[k], 0, 0, H, W, out_h, out_w, True)
        assert box_iou(found.boxes[f"RF_{cls}"], expected) > 0.99
    for box in found.boxes.values():
        assert 0 <= box[0] < box[2] <= H and 0 <= box[1] < box[3] <= W


def test_score_detector_images_counts_sites_at_iou_half():
    from types import SimpleNamespace

    from ra2.detection.detect import score_detector_images

    truth = _grid_boxes(6, 40, 40)
    found = truth.copy()
    found[1] += [0.0, 4.0, 0.0, 4.0]  # 7.25 px wide, shifted 4 px: IoU 3.25 / 11.25 = 0.29 -> a miss
    found[4] += [1.0, 0.0, 1.0, 0.0]  # 5.5 px tall, shifted 1 px: IoU 4.5 / 6.5 = 0.69 -> a hit
    det = _detector("feet", found)
    images = [{"pixels": np.zeros((40, 40), np.uint8), "class_ids": np.arange(1, 7), "boxes": truth}] * 2
    score = score_detector_images(det, SimpleNamespace(detector="feet", image_info=images))
    assert score["n"] == 12
    assert score["recall_iou50"] == pytest.approx(10 / 12)
    ious = [1, 3.25 / 11.25, 1, 1, 4.5 / 6.5, 1]
    assert score["mean_iou"] == pytest.approx(np.mean(ious))
    assert score["worst_class"] == "mtp__1" and score["per_class"]["mtp__1"] == 0.0
    assert score["sources"] == {"detected": 12}


class ShiftingOracle:
    """The ground truth of each film, with the boxes of ``shifted`` sites moved right by their own width
    (IoU 0 with the truth)."""

    def __init__(self, films, shifted):
        self.truth = {(a.height, a.width, a.limb): a for a in films}
        self.shifted = set(shifted)

    def detect_film(self, film, limb):
        ann = self.truth[(film.shape[0], film.shape[1], limb)]
        out = FilmDetection(limb=limb, carpus_box=ann.carpus_box)
        for o in ann.objects:
            if o.site_id is None:
                continue
            y1, x1, y2, x2 = o.box
            if o.site_id in self.shifted:
                x1, x2 = x2, x2 + (x2 - x1)
            out.boxes[o.site_id] = (y1, x1, y2, x2)
            out.sources[o.site_id] = "detected"
        return out


def test_evaluate_detection_counts_hits_and_names_the_worst_site(phantom):
    films = read_annotations(phantom / GOLD_ANNOTATIONS_FILE)
    oracle = ShiftingOracle(films, shifted={"LH_pip__3", "RF_mtp__4"})
    result = evaluate_detection(None, phantom / "test", phantom / GOLD_ANNOTATIONS_FILE, detector=oracle)
    n = PHANTOM["test_patients"]  # the shifted sites miss on every test patient
    assert result["films"] == 4 * n
    hands, feet = result["hands"], result["feet"]
    assert hands["n_sites"] == 20 * n and hands["hit_rate_iou50"] == pytest.approx(19 / 20)
    assert hands["worst_site"] == {"site": "LH_pip__3", "hit_rate_iou50": 0.0, "mean_iou": 0.0}
    assert hands["per_site"]["RH_pip__3"] == 1.0 and hands["mean_iou"] == pytest.approx(19 / 20)
    assert feet["hit_rate_iou50"] == pytest.approx(11 / 12) and feet["worst_site"]["site"] == "RF_mtp__4"
    for name in contract.CARPUS_DETECTORS:
        assert result[name]["hit_rate_iou50"] == 1.0 and result[name]["n_sites"] == 12 * n
    assert hands["carpus"] == {"n": 2 * n, "hit_rate_iou50": 1.0, "mean_iou": 1.0}
    assert hands["sources"] == {"detected": 20 * n}
