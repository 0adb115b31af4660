"""The detector data set adapter: images, masks and boxes in each detector's frame."""

import numpy as np
import pytest
from PIL import Image

from ra2 import contract
from ra2.annotations import read_annotations
from ra2.detection.data import DetectorDataset, build_detector_datasets
from ra2.detection.specs import detector_config, get_spec
from ra2.io import read_film
from ra2.mrcnn.utils import extract_bboxes


@pytest.fixture(scope="module")
def films(phantom):
    """The training folder and its first patient's film annotations by limb."""
    first = {}
    for f in read_annotations(phantom / "train"):
        first.setdefault(f.limb, f)
    return phantom / "train", first


def _single(detector, film_ann, folder):
    ds = DetectorDataset(detector, "smoke")
    assert ds.add_film(film_ann, read_film(folder / film_ann.file_name))
    ds.prepare()
    return ds


def _resized(region, shape):
    """Independent reference: uint8 region resized with Pillow's bilinear filter to (h, w)."""
    pixels = np.clip(np.rint(region * 255.0), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize((shape[1], shape[0]), Image.BILINEAR))


@pytest.mark.parametrize("limb", ["LH", "RH"])
def test_hand_image_is_the_shrunk_film_mirrored_for_right_limbs(films, limb):
    folder, films = films
    ann = films[limb]
    ds = _single("hands", ann, folder)
    image = ds.load_image(0)
    side = get_spec("hands").size("smoke")
    h, w = ann.height, ann.width
    expected_shape = (round(h * side / max(h, w)), round(w * side / max(h, w)))
    assert image.shape == expected_shape + (1,) and image.dtype == np.uint8
    film = read_film(folder / ann.file_name)
    if limb == "RH":
        film = film[:, ::-1]
    assert np.array_equal(image[:, :, 0], _resized(film, expected_shape))


@pytest.mark.parametrize("limb", ["LF", "RF", "RH"])
def test_masks_and_class_ids_follow_the_mirrored_boxes(films, limb):
    folder, films = films
    ann = films[limb]
    detector = "feet" if limb in contract.FOOT_LIMBS else "hands"
    ds = _single(detector, ann, folder)
    masks, class_ids = ds.load_mask(0)
    objects = ann.objects_of(detector)
    h, w = ds.image_info[0]["pixels"].shape
    assert masks.shape == (h, w, len(objects)) and masks.dtype == bool
    assert class_ids.tolist() == [contract.DETECTOR_CLASSES[detector].index(o.class_name) + 1 for o in objects]
    sy, sx = h / ann.height, w / ann.width
    mirror = contract.is_right(limb)
    got = extract_bboxes(masks)
    for obj, box in zip(objects, got):
        y1, x1, y2, x2 = obj.box
        if mirror:
            x1, x2 = ann.width - x2, ann.width - x1
        expected = np.array([y1 * sy, x1 * sx, y2 * sy, x2 * sx])
        assert np.abs(box - expected).max() <= 2.0, (obj.class_name, box, expected)


@pytest.mark.parametrize("limb", ["LH", "RH"])
@pytest.mark.parametrize("detector", contract.CARPUS_DETECTORS)
def test_wrist_items_live_in_the_carpus_crop(films, limb, detector):
    folder, films = films
    ann = films[limb]
    ds = _single(detector, ann, folder)
    cy1, cx1, cy2, cx2 = ann.carpus_box
    ch, cw = cy2 - cy1, cx2 - cx1
    side = get_spec(detector).size("smoke")
    s = side / max(ch, cw)
    info = ds.image_info[0]
    assert info["pixels"].shape == (round(ch * s), round(cw * s))
    sy, sx = info["pixels"].shape[0] / ch, info["pixels"].shape[1] / cw
    for obj, box in zip(ann.objects_of(detector), info["boxes"]):
        y1, x1, y2, x2 = obj.box_in_carpus  # the annotation's own carpus-crop coordinates
        if contract.is_right(limb):
            x1, x2 = cw - x2, cw - x1
        assert box == pytest.approx([y1 * sy, x1 * sx, y2 * sy, x2 * sx], abs=1e-3)
    crop = read_film(folder / ann.file_name)[cy1:cy2, cx1:cx2]
    if contract.is_right(limb):
        crop = crop[:, ::-1]
    assert np.array_equal(info["pixels"], _resized(crop, info["pixels"].shape))


def test_build_detector_datasets_routes_films_to_detectors(films):
    folder, films = films
    sets = build_detector_datasets(folder, films.values(), "smoke")
    assert set(sets) == set(contract.DETECTORS)
    assert sorted(i["limb"] for i in sets["feet"].image_info) == ["LF", "RF"]
    for d in ("hands",) + contract.CARPUS_DETECTORS:
        assert sorted(i["limb"] for i in sets[d].image_info) == ["LH", "RH"]
    for d, ds in sets.items():
        assert ds.class_names[1:] == list(contract.DETECTOR_CLASSES[d])
        assert ds.num_classes == detector_config(d, "smoke").NUM_CLASSES
        examples = ds.layout_examples()
        assert all(len(e) == len(contract.DETECTOR_CLASSES[d]) for e in examples)


def test_detector_configs_follow_the_contract():
    for d in contract.DETECTORS:
        for profile in ("smoke", "cpu", "full"):
            c = detector_config(d, profile)
            assert c.NUM_CLASSES == 1 + len(contract.DETECTOR_CLASSES[d])
            assert c.IMAGE_CHANNEL_COUNT == 1 and len(c.MEAN_PIXEL) == 1
            assert c.IMAGE_SHAPE == [get_spec(d).size(profile)] * 2 + [1]
            assert c.DETECTION_MIN_CONFIDENCE == 0.0
            assert c.IMAGE_MAX_DIM % 64 == 0
    assert detector_config("hands", "full").IMAGE_MAX_DIM == 512
    assert detector_config("wrist_erosion", "full").IMAGE_MAX_DIM == 256
    assert detector_config("hands", "cpu").BACKBONE == "resnet18_slim"
