"""generate_dataset: layout, CSV contract, determinism, ground-truth annotations."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ra2 import Ra2Error, contract
from ra2.annotations import polygon_to_mask, read_annotations, write_annotations
from ra2.cli import main as cli_main
from ra2.phantom import generate_dataset
from ra2.phantom.dataset import GOLD_ANNOTATIONS_FILE

SCALE = 0.25
N_TRAIN, N_TEST = 3, 2


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom") / "a"
    generate_dataset(out, train_patients=N_TRAIN, test_patients=N_TEST, seed=11, size_scale=SCALE, workers=1)
    return out


def test_same_seed_same_bytes_any_worker_count(ds, tmp_path):
    again = tmp_path / "b"
    generate_dataset(again, train_patients=N_TRAIN, test_patients=N_TEST, seed=11, size_scale=SCALE, workers=2)
    assert _digest(ds) == _digest(again)
    # Another seed gives other films; rewriting a folder with fewer patients leaves no stale films.
    generate_dataset(again, train_patients=1, test_patients=0, seed=12, size_scale=SCALE, workers=1)
    assert (again / "train" / "PHA0001-LH.jpg").read_bytes() != (ds / "train" / "PHA0001-LH.jpg").read_bytes()
    assert sorted(p.name for p in (again / "train").glob("*.jpg")) == [
        f"PHA0001-{limb}.jpg" for limb in sorted(contract.LIMBS)]
    assert not list((again / "test").glob("*.jpg"))


def test_csvs_follow_the_contract(ds):
    # read by pandas, an outside reader (the challenge's own tools), not by ra2.io
    train = pd.read_csv(ds / "train" / "training.csv")
    gold = pd.read_csv(ds / "gold.csv")
    template = pd.read_csv(ds / "test" / "template.csv", dtype=str, keep_default_na=False)
    for df in (train, gold, template):
        assert tuple(df.columns) == contract.COLUMNS
    assert len(train) == N_TRAIN and len(gold) == N_TEST and len(template) == N_TEST
    ids = list(train[contract.PATIENT_COLUMN]) + list(gold[contract.PATIENT_COLUMN])
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert list(template[contract.PATIENT_COLUMN]) == list(gold[contract.PATIENT_COLUMN])
    assert (template[list(contract.COLUMNS[1:])] == "").all().all()
    for df in (train, gold):
        joints = df[list(contract.JOINT_COLUMNS)]
        assert (joints >= 0).all().all()
        for c in contract.JOINT_COLUMNS:
            assert (df[c] <= contract.MAX_SCORE[c]).all()
        ero = df[list(contract.EROSION_COLUMNS)].sum(axis=1)
        nar = df[list(contract.NARROWING_COLUMNS)].sum(axis=1)
        assert (df[contract.OVERALL_EROSION] == ero).all()
        assert (df[contract.OVERALL_NARROWING] == nar).all()
        assert (df[contract.OVERALL_TOTAL] == ero + nar).all()


def test_every_film_present_as_8bit_grayscale_jpeg(ds):
    for folder, csv in (("train", "train/training.csv"), ("test", "test/template.csv")):
        for pid in pd.read_csv(ds / csv)[contract.PATIENT_COLUMN]:
            for limb in contract.LIMBS:
                path = ds / folder / contract.film_name(pid, limb)
                with Image.open(path) as im:
                    assert im.format == "JPEG" and im.mode == "L"
                    # size_scale 0.25 of 1000-3000 px
                    assert 0.25 * 900 <= min(im.size) and max(im.size) <= 0.25 * 3100
    assert not list((ds / "test").glob("*.json")), "test/ must hold no ground truth"


def _check_film_objects(film, image_shape):
    h, w = image_shape
    assert (film.height, film.width) == (h, w)
    for det in contract.LIMB_DETECTORS[film.limb]:
        objs = film.objects_of(det)
        assert [o.class_name for o in objs] == list(contract.DETECTOR_CLASSES[det])
        for o in objs:
            site = contract.site_for_detection(film.limb, det, o.class_name)
            assert o.site_id == (None if site is None else site.id)
            y1, x1, y2, x2 = o.box
            assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w
            assert o.polygon.shape[1] == 2 and o.polygon.dtype == np.float32
            poly_box = (o.polygon[:, 0].min(), o.polygon[:, 1].min(), o.polygon[:, 0].max(), o.polygon[:, 1].max())
            if o.class_name == contract.CARPUS_CLASS:  # integer box enclosing the region's polygon
                assert y1 <= poly_box[0] and x1 <= poly_box[1] and poly_box[2] <= y2 and poly_box[3] <= x2
                assert max(poly_box[0] - y1, poly_box[1] - x1, y2 - poly_box[2], x2 - poly_box[3]) < 1.0
            else:
                np.testing.assert_allclose(o.box, poly_box, atol=0.02)
            if det in contract.CARPUS_DETECTORS:
                cy1, cx1, cy2, cx2 = film.carpus_box
                by1, bx1, by2, bx2 = o.box_in_carpus
                assert 0 <= by1 < by2 <= cy2 - cy1 and 0 <= bx1 < bx2 <= cx2 - cx1
                np.testing.assert_allclose(o.box_in_carpus, (y1 - cy1, x1 - cx1, y2 - cy1, x2 - cx1), atol=0.02)
                np.testing.assert_allclose(o.polygon_in_carpus, o.polygon - np.array([cy1, cx1]), atol=0.02)
            else:
                assert o.box_in_carpus is None and o.polygon_in_carpus is None
    n_expected = 11 + 6 + 6 if film.limb in contract.HAND_LIMBS else 6
    assert len(film.objects) == n_expected
    if film.limb in contract.HAND_LIMBS:
        assert all(float(v).is_integer() for v in film.carpus_box)
        carpus = film.objects_of("hands")[-1]
        assert tuple(carpus.box) == tuple(float(v) for v in film.carpus_box)
    else:
        assert film.carpus_box is None


def test_annotations_cover_every_film_and_class(ds):
    train = read_annotations(ds / "train")
    gold = read_annotations(ds / GOLD_ANNOTATIONS_FILE)
    assert len(train) == 4 * N_TRAIN and len(gold) == 4 * N_TEST
    for films, folder in ((train, ds / "train"), (gold, ds / "test")):
        names = sorted(f.file_name for f in films)
        assert names == sorted(p.name for p in folder.glob("*.jpg"))
        for film in films:
            with Image.open(folder / film.file_name) as im:
                _check_film_objects(film, (im.height, im.width))


def test_annotation_round_trip(ds, tmp_path):
    films = read_annotations(ds / "train")
    write_annotations(tmp_path / "x.json", films)
    assert (tmp_path / "x.json").read_bytes() == (ds / "train" / "annotations.json").read_bytes()
    with pytest.raises(Ra2Error, match="not found"):
        read_annotations(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(Ra2Error, match="bad.json"):
        read_annotations(tmp_path / "bad.json")


def test_polygon_to_mask_area():
    # A 10 x 20 axis-aligned rectangle, (y, x) vertices: area 200 px within a pixel row/column.
    poly = np.array([[5, 5], [5, 25], [15, 25], [15, 5]], dtype=np.float32)
    m = polygon_to_mask(poly, (30, 40))
    assert m.shape == (30, 40) and m.dtype == bool
    assert 200 <= m.sum() <= 231
    assert m[10, 15] and not m[2, 2] and not m[10, 30]


def test_cli_writes_a_dataset(tmp_path, capsys):
    assert cli_main(["phantom", "--out", str(tmp_path / "cli"), "--train-patients", "1",
                     "--test-patients", "0", "--seed", "3", "--size-scale", "0.2"]) == 0
    assert len(list((tmp_path / "cli" / "train").glob("*.jpg"))) == 4
    assert cli_main(["phantom", "--out", str(tmp_path / "bad"), "--train-patients", "0",
                     "--test-patients", "0"]) == 1
    assert "at least one patient" in capsys.readouterr().err


def test_several_size_scales_alternate_by_patient(tmp_path, ds):
    out = tmp_path / "mixed"
    assert cli_main(["phantom", "--out", str(out), "--train-patients", "2", "--test-patients", "1",
                     "--seed", "11", "--size-scale", str(SCALE), "0.5"]) == 0
    # Patient 1 and 3 at SCALE (the same films as a single-scale set of the same seed), patient 2 at 0.5.
    assert (out / "train" / "PHA0001-LH.jpg").read_bytes() == (ds / "train" / "PHA0001-LH.jpg").read_bytes()
    ratio = Image.open(out / "train" / "PHA0002-LH.jpg").size[1] / Image.open(ds / "train" / "PHA0002-LH.jpg").size[1]
    assert ratio == pytest.approx(0.5 / SCALE, rel=0.01)
    with pytest.raises(Ra2Error, match="must be > 0"):
        generate_dataset(tmp_path / "bad", train_patients=1, test_patients=0, seed=1, size_scale=[0.3, 0.0])
