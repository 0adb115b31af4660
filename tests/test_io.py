"""ra2.io: CSV validation, film reading (bitmaps and DICOM), film lookup, atomic predictions, validation."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ra2 import Ra2Error
from ra2 import contract as C
from ra2 import io as rio

from csv_factory import score_frame, template_frame, write_csv

IDS = ["0001", "UAB002", "UAB003"]


# --------------------------------------------------------------------------------------------------
# training.csv
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def train_df():
    return score_frame(IDS, seed=1)


def _write_train(tmp_path, df, name="training.csv"):
    path = tmp_path / name
    write_csv(df, path)
    return path


def test_training_roundtrip_keeps_ids_as_text(tmp_path, train_df):
    path = _write_train(tmp_path, train_df)
    got = rio.read_training_csv(path)
    assert list(got.columns) == list(C.COLUMNS)
    assert list(got[C.PATIENT_COLUMN]) == IDS  # "0001" not parsed as 1
    assert all(isinstance(x, str) for x in got[C.PATIENT_COLUMN])
    np.testing.assert_array_equal(got[list(C.COLUMNS[1:])].to_numpy(),
                                  train_df[list(C.COLUMNS[1:])].to_numpy(dtype=float))
    assert all(got[c].dtype == np.float64 for c in C.COLUMNS[1:])


def test_training_accepts_byte_order_mark_and_blank_trailing_lines(tmp_path, train_df):
    path = tmp_path / "training.csv"
    path.write_text("\ufeff" + train_df.to_csv(index=False) + "\n\n", encoding="utf-8")
    assert list(rio.read_training_csv(path)[C.PATIENT_COLUMN]) == IDS


def _expect_error(path, *fragments):
    """read_training_csv(strict=True) raises a Ra2Error naming the file and holding every fragment."""
    with pytest.raises(Ra2Error) as info:
        rio.read_training_csv(path, strict=True)
    msg = str(info.value)
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return msg


def test_training_missing_and_empty_file(tmp_path):
    _expect_error(tmp_path / "nope.csv", "not found")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _expect_error(empty, "empty")


def test_training_missing_extra_and_misordered_columns(tmp_path, train_df):
    _expect_error(_write_train(tmp_path, train_df.drop(columns=["LH_pip_J__3"]), "a.csv"),
                  "missing column 'LH_pip_J__3'")
    extra = train_df.assign(Comment="x")
    _expect_error(_write_train(tmp_path, extra, "b.csv"), "extra column 'Comment'")
    cols = list(C.COLUMNS)
    cols[5], cols[6] = cols[6], cols[5]
    _expect_error(_write_train(tmp_path, train_df[cols], "c.csv"),
                  "wrong column order", f"column 6 is {cols[5]!r}", f"expected {C.COLUMNS[5]!r}")


def test_training_duplicate_and_empty_ids(tmp_path, train_df):
    dup = train_df.copy()
    dup.loc[2, C.PATIENT_COLUMN] = "UAB002"
    _expect_error(_write_train(tmp_path, dup, "d.csv"), "line 4", "duplicate Patient_ID 'UAB002'",
                  "first on line 3")
    empty = train_df.copy()
    empty.loc[1, C.PATIENT_COLUMN] = ""
    _expect_error(_write_train(tmp_path, empty, "e.csv"), "line 3", "empty Patient_ID")


@pytest.mark.parametrize("value, fragment", [
    ("abc", "not a number: 'abc'"),
    ("1_0", "not a number: '1_0'"),
    ("inf", "missing or infinite value"),
    ("", "missing or infinite value"),
    ("NaN", "missing or infinite value"),
    ("-1", "negative score -1"),
    ("5", "above the maximum 4"),  # narrowing is 0-4
])
def test_training_bad_cells_name_line_patient_column(tmp_path, train_df, value, fragment):
    df = train_df.astype({"LH_pip_J__2": object})
    df.loc[1, "LH_pip_J__2"] = value
    _expect_error(_write_train(tmp_path, df), "line 3", "patient 'UAB002'", "column 'LH_pip_J__2'", fragment)
    # by default the bad row is skipped and reported, the others kept
    got = rio.read_training_csv(tmp_path / "training.csv")
    assert list(got[C.PATIENT_COLUMN]) == ["0001", "UAB003"]
    [skipped] = got.attrs["skipped_rows"]
    assert skipped.startswith("line 3, patient 'UAB002', column 'LH_pip_J__2'") and fragment in skipped


def test_training_maximum_score_of_each_data_set_is_accepted(tmp_path, train_df):
    df = train_df.copy()
    for col in ("LF_mtp_E__1", "LH_mcp_E__2", "RH_wrist_J__radcar"):  # 10, 5, 4
        df[col] = float(C.MAX_SCORE[col])
    df[C.OVERALL_EROSION] = df[list(C.EROSION_COLUMNS)].sum(axis=1)
    df[C.OVERALL_NARROWING] = df[list(C.NARROWING_COLUMNS)].sum(axis=1)
    df[C.OVERALL_TOTAL] = df[C.OVERALL_EROSION] + df[C.OVERALL_NARROWING]
    got = rio.read_training_csv(_write_train(tmp_path, df))
    assert got["LF_mtp_E__1"].tolist() == [10.0] * 3 and got.attrs["skipped_rows"] == []
    df.loc[0, "LH_mcp_E__2"] = 6.0  # hand erosion is 0-5
    _expect_error(_write_train(tmp_path, df, "f.csv"), "line 2", "'LH_mcp_E__2'", "above the maximum 5")


@pytest.mark.parametrize("column", [C.OVERALL_TOTAL, C.OVERALL_EROSION, C.OVERALL_NARROWING])
def test_training_overall_not_equal_to_sum_is_a_bad_row(tmp_path, train_df, column):
    df = train_df.copy()
    df.loc[2, column] += 1
    msg = _expect_error(_write_train(tmp_path, df), "line 4", "patient 'UAB003'", f"column {column!r}")
    assert "sum to" in msg
    got = rio.read_training_csv(tmp_path / "training.csv")  # default: the row is skipped
    assert list(got[C.PATIENT_COLUMN]) == ["0001", "UAB002"] and len(got.attrs["skipped_rows"]) == 1
    # a gold standard is read without the sum check
    assert rio.read_gold_csv(tmp_path / "training.csv").loc[2, column] == df.loc[2, column]


def test_training_ragged_row(tmp_path, train_df):
    path = _write_train(tmp_path, train_df)
    lines = path.read_text().splitlines()
    lines[2] += ",7"
    path.write_text("\n".join(lines) + "\n")
    _expect_error(path, "line 3", "91 fields", "header has 90")


# --------------------------------------------------------------------------------------------------
# template.csv
# --------------------------------------------------------------------------------------------------
def test_template_ignores_score_cells_and_keeps_ids(tmp_path):
    tpl = template_frame(IDS)
    tpl.loc[0, "LH_pip_J__2"] = "whatever"
    path = tmp_path / "template.csv"
    write_csv(tpl, path)
    got = rio.read_template_csv(path)
    assert list(got.columns) == list(C.COLUMNS)
    assert list(got[C.PATIENT_COLUMN]) == IDS


def test_template_only_patient_id_column(tmp_path):
    path = tmp_path / "template.csv"
    path.write_text("Patient_ID\n007\n008\n")
    got = rio.read_template_csv(path)
    assert list(got.columns) == [C.PATIENT_COLUMN]
    assert list(got[C.PATIENT_COLUMN]) == ["007", "008"]


@pytest.mark.parametrize("text, fragment", [
    ("Overall_Tol\n1\n", "missing column 'Patient_ID'"),
    ("Patient_ID,Foo\nA,1\n", "unknown column 'Foo'"),
    ("Patient_ID,Overall_Tol,Overall_Tol\nA,1,1\n", "duplicate column 'Overall_Tol'"),
    ("Patient_ID\nA\nA\n", "duplicate Patient_ID 'A'"),
    ("Patient_ID,Overall_Tol\n ,1\n", "line 2, column 'Patient_ID': empty Patient_ID"),
    ("", "empty file"),
])
def test_template_errors(tmp_path, text, fragment):
    path = tmp_path / "template.csv"
    path.write_text(text)
    with pytest.raises(Ra2Error, match="template CSV") as info:
        rio.read_template_csv(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_non_utf8_csv_is_a_user_error(tmp_path):
    path = tmp_path / "template.csv"
    path.write_bytes(b"Patient_ID\n\xff\xfe\x00A\n")
    with pytest.raises(Ra2Error, match="not UTF-8"):
        rio.read_template_csv(path)


# --------------------------------------------------------------------------------------------------
# films
# --------------------------------------------------------------------------------------------------
def _ramp(h=6, w=8, top=255, dtype=np.uint8):
    """[h, w] ramp from 0 to top along x (the same on every row)."""
    return np.tile(np.round(np.linspace(0, top, w)).astype(dtype), (h, 1))


def test_read_film_8bit_png_and_jpeg(tmp_path):
    a = _ramp()
    Image.fromarray(a).save(tmp_path / "a.png")
    got = rio.read_film(tmp_path / "a.png")
    assert got.dtype == np.float32 and got.shape == (6, 8)
    np.testing.assert_allclose(got, a / 255.0, atol=1e-7)
    big = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (32, 1))
    Image.fromarray(big).save(tmp_path / "a.jpg", quality=95)
    got = rio.read_film(tmp_path / "a.jpg")
    assert got.shape == (32, 64)
    np.testing.assert_allclose(got, big / 255.0, atol=0.05)  # lossy
    assert got.min() >= 0.0 and got.max() <= 1.0


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_read_film_16bit(tmp_path, ext):
    a = _ramp(top=65535, dtype=np.uint16)
    a[0, 0] = 1000
    Image.fromarray(a).save(tmp_path / f"a{ext}")
    got = rio.read_film(tmp_path / f"a{ext}")
    np.testing.assert_allclose(got, a / 65535.0, atol=1e-7)
    assert got[0, 0] == pytest.approx(1000 / 65535)


def test_read_film_rgb_rgba_la_palette_and_bilevel(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    expected = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255.0
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_allclose(rio.read_film(tmp_path / "rgb.png"), expected, atol=1e-6)
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(rio.read_film(tmp_path / "rgba.png"), expected, atol=1e-6)
    la = np.stack([np.full((4, 5), 51, np.uint8), np.full((4, 5), 255, np.uint8)], axis=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(rio.read_film(tmp_path / "la.png"), 0.2, atol=1e-6)
    pal = Image.new("P", (5, 4))
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "pal.png")
    got = rio.read_film(tmp_path / "pal.png")
    assert got[1, 1] == pytest.approx(1.0) and got.sum() == pytest.approx(1.0)
    Image.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "bw.png")
    np.testing.assert_array_equal(rio.read_film(tmp_path / "bw.png"), np.eye(4))


def test_read_film_float_tiff_is_min_max_scaled(tmp_path):
    a = np.array([[-2.0, 0.0], [2.0, 6.0]], np.float32)
    Image.fromarray(a).save(tmp_path / "f.tif")
    np.testing.assert_allclose(rio.read_film(tmp_path / "f.tif"), [[0, 0.25], [0.5, 1.0]], atol=1e-7)


def _make_dicom(path, stored, photometric, bits_stored=12, slope=None, intercept=None):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
    ds.PixelData = stored.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def stored12():
    """[4, 5] 12-bit stored values: 0 (corner), 4095 (opposite corner), a ramp elsewhere."""
    a = np.arange(20, dtype=np.uint16).reshape(4, 5) * 200
    a[0, 0], a[-1, -1] = 0, 4095
    return a


def test_read_dicom_monochrome2_and_monochrome1_inverted(tmp_path, stored12):
    _make_dicom(tmp_path / "m2.dcm", stored12, "MONOCHROME2")
    _make_dicom(tmp_path / "m1.dcm", stored12, "MONOCHROME1")
    m2 = rio.read_film(tmp_path / "m2.dcm")
    m1 = rio.read_film(tmp_path / "m1.dcm")
    assert m2.dtype == np.float32 and m2.shape == (4, 5)
    np.testing.assert_allclose(m2, stored12 / 4095.0, atol=1e-6)
    np.testing.assert_allclose(m1, 1.0 - stored12 / 4095.0, atol=1e-6)
    assert m1[0, 0] == 1.0 and m1[-1, -1] == 0.0  # low stored value is bright in MONOCHROME1


def test_read_dicom_rescale_slope_intercept(tmp_path, stored12):
    # A positive linear rescale keeps the normalised image; a negative slope flips it.
    _make_dicom(tmp_path / "pos.dcm", stored12, "MONOCHROME2", slope=2.0, intercept=-1024.0)
    np.testing.assert_allclose(rio.read_film(tmp_path / "pos.dcm"), stored12 / 4095.0, atol=1e-6)
    _make_dicom(tmp_path / "neg.dcm", stored12, "MONOCHROME2", slope=-1.0, intercept=4095.0)
    np.testing.assert_allclose(rio.read_film(tmp_path / "neg.dcm"), 1.0 - stored12 / 4095.0, atol=1e-6)


def test_read_dicom_16bit_full_range_and_without_extension(tmp_path):
    a = np.array([[0, 65535], [32768, 1]], np.uint16)
    _make_dicom(tmp_path / "film", a, "MONOCHROME2", bits_stored=16)
    np.testing.assert_allclose(rio.read_film(tmp_path / "film"), a / 65535.0, atol=1e-6)


def test_read_dicom_signed_pixels(tmp_path):
    from pydicom import dcmread

    signed = np.array([[-2048, 0], [2047, -1]], np.int16)
    _make_dicom(tmp_path / "s.dcm", signed.view(np.uint16), "MONOCHROME2")
    ds = dcmread(tmp_path / "s.dcm")
    ds.PixelRepresentation = 1
    ds.save_as(tmp_path / "s.dcm", enforce_file_format=True)
    np.testing.assert_allclose(rio.read_film(tmp_path / "s.dcm"), (signed + 2048) / 4095.0, atol=1e-6)


def test_read_dicom_without_pixels_or_undecodable(tmp_path, stored12):
    from pydicom import dcmread
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    _make_dicom(tmp_path / "ok.dcm", stored12, "MONOCHROME2")
    ds = dcmread(tmp_path / "ok.dcm")
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm", enforce_file_format=True)
    with pytest.raises(Ra2Error, match="nopix.dcm: DICOM file without pixel data"):
        rio.read_film(tmp_path / "nopix.dcm")
    ds = dcmread(tmp_path / "ok.dcm")
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encapsulate([b"\xff\xd8 not a jpeg stream \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "bad.dcm", enforce_file_format=True)
    with pytest.raises(Ra2Error, match="bad.dcm: cannot decode DICOM pixel data"):
        rio.read_film(tmp_path / "bad.dcm")


def test_read_film_errors_name_the_file(tmp_path):
    with pytest.raises(Ra2Error, match="file not found"):
        rio.read_film(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(Ra2Error, match="empty file") as info:
        rio.read_film(tmp_path / "empty.jpg")
    assert "empty.jpg" in str(info.value)
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    with pytest.raises(Ra2Error, match="junk.png"):
        rio.read_film(tmp_path / "junk.png")
    buf = tmp_path / "cut.png"
    Image.fromarray(_ramp(64, 64)).save(buf)
    buf.write_bytes(buf.read_bytes()[:60])
    with pytest.raises(Ra2Error, match="cut.png"):
        rio.read_film(buf)
    (tmp_path / "junk.dcm").write_bytes(b"\x00" * 10)
    with pytest.raises(Ra2Error, match="junk.dcm"):
        rio.read_film(tmp_path / "junk.dcm")


def test_find_film_prefers_contract_name_then_falls_back(tmp_path):
    with pytest.raises(Ra2Error, match="UAB001") as info:
        rio.find_film(tmp_path, "UAB001", "LH")
    assert "UAB001-LH.jpg" in str(info.value) and "UAB001-LH.dcm" in str(info.value)
    (tmp_path / "UAB001-LH.png").write_bytes(b"x")
    assert rio.find_film(tmp_path, "UAB001", "LH").name == "UAB001-LH.png"
    (tmp_path / C.film_name("UAB001", "LH")).write_bytes(b"x")
    assert rio.find_film(tmp_path, "UAB001", "LH").name == "UAB001-LH.jpg"
    (tmp_path / "UAB001-RF.DCM").write_bytes(b"x")
    assert rio.find_film(tmp_path, "UAB001", "RF").name == "UAB001-RF.DCM"
    with pytest.raises(Ra2Error, match="not found"):
        rio.find_film(tmp_path / "nofolder", "UAB001", "LH")
    with pytest.raises(Ra2Error, match="unknown limb"):
        rio.find_film(tmp_path, "UAB001", "XX")


# --------------------------------------------------------------------------------------------------
# write_predictions
# --------------------------------------------------------------------------------------------------
def test_write_predictions_follows_template_order(tmp_path):
    template = template_frame(["B", "0001", "A"])
    pred = score_frame(["A", "0001", "B", "EXTRA"], seed=3)
    pred["LH_pip_J__2"] = [0.1, 1.0 / 3.0, 2.5, 9.0]
    pred = pred[[C.PATIENT_COLUMN] + list(reversed(C.COLUMNS[1:]))]  # columns scrambled
    out = rio.write_predictions(pred, template, tmp_path / "predictions.csv")
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == ",".join(C.COLUMNS)
    assert [line.split(",")[0] for line in lines[1:]] == ["B", "0001", "A"]
    back = pd.read_csv(out, dtype={C.PATIENT_COLUMN: str})  # an outside reader, as the challenge's scorer
    assert back["LH_pip_J__2"].tolist() == [2.5, 1.0 / 3.0, 0.1]  # exact float round trip
    assert rio.validate_predictions(out, _tpl_file(tmp_path, template)) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_write_predictions_patient_id_column_not_first(tmp_path):
    template = template_frame(["A"])[[C.OVERALL_TOTAL, C.PATIENT_COLUMN]]
    pred = score_frame(["A"], seed=0)
    out = rio.write_predictions(pred, template, tmp_path / "p.csv")
    total = float(pred.at[0, C.OVERALL_TOTAL])
    assert out.read_text().splitlines() == ["Overall_Tol,Patient_ID", f"{total!r},A"]


def _tpl_file(tmp_path, template, name="template.csv"):
    path = tmp_path / name
    write_csv(template, path)
    return path


def test_write_predictions_errors(tmp_path):
    template = template_frame(["A", "B"])
    pred = score_frame(["A", "B"], seed=0)
    with pytest.raises(Ra2Error, match="template patient\\(s\\) 'B'"):
        rio.write_predictions(pred.iloc[:1], template, tmp_path / "p.csv")
    with pytest.raises(Ra2Error, match="'LH_pip_J__2'"):
        rio.write_predictions(pred.drop(columns=["LH_pip_J__2"]), template, tmp_path / "p.csv")
    bad = pred.copy()
    bad.loc[1, "RF_mtp_E__3"] = np.nan
    with pytest.raises(Ra2Error, match="patient 'B', column 'RF_mtp_E__3'"):
        rio.write_predictions(bad, template, tmp_path / "p.csv")
    bad.loc[1, "RF_mtp_E__3"] = np.inf
    with pytest.raises(Ra2Error, match="not finite"):
        rio.write_predictions(bad, template, tmp_path / "p.csv")
    with pytest.raises(Ra2Error, match="duplicate Patient_ID 'A'"):
        rio.write_predictions(pd.concat([pred, pred.iloc[:1]]), template, tmp_path / "p.csv")
    with pytest.raises(Ra2Error, match="does not exist"):
        rio.write_predictions(pred, template, tmp_path / "no" / "p.csv")
    assert not (tmp_path / "p.csv").exists()


def test_write_predictions_is_atomic_when_the_rename_fails(tmp_path, monkeypatch):
    template = template_frame(["A"])
    path = tmp_path / "predictions.csv"
    path.write_text("old content\n")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rio.os, "replace", broken_replace)
    with pytest.raises(Ra2Error, match="No space left"):
        rio.write_predictions(score_frame(["A"]), template, path)
    assert path.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]  # no temporary left


def test_write_predictions_fsyncs_before_replace(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(rio.os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(rio.os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    rio.write_predictions(score_frame(["A"]), template_frame(["A"]), tmp_path / "p.csv")
    assert calls[:2] == ["fsync", "replace"]


# --------------------------------------------------------------------------------------------------
# validate_predictions
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def valid_pair(tmp_path):
    """(template path, valid predictions frame) for patients P1, P2, P3."""
    ids = ["P1", "P2", "P3"]
    tpl = _tpl_file(tmp_path, template_frame(ids))
    return tpl, score_frame(ids, seed=5)


def _validate(tmp_path, tpl, frame_or_text):
    path = tmp_path / "predictions.csv"
    if isinstance(frame_or_text, str):
        path.write_text(frame_or_text)
    else:
        write_csv(frame_or_text, path)
    return rio.validate_predictions(path, tpl)


def test_validate_valid_file(tmp_path, valid_pair):
    tpl, pred = valid_pair
    assert _validate(tmp_path, tpl, pred) == []


def test_validate_column_problems(tmp_path, valid_pair):
    tpl, pred = valid_pair
    assert _validate(tmp_path, tpl, pred.drop(columns=["RH_mcp_J__1"])) == ["missing column 'RH_mcp_J__1'"]
    assert _validate(tmp_path, tpl, pred.assign(Extra=1.0)) == ["extra column 'Extra'"]
    cols = list(C.COLUMNS)
    cols[1], cols[2] = cols[2], cols[1]
    assert _validate(tmp_path, tpl, pred[cols]) == [
        "wrong column order: column 2 is 'Overall_erosion', expected 'Overall_Tol' "
        "(the order of the template)"]


def test_validate_patient_problems(tmp_path, valid_pair):
    tpl, pred = valid_pair
    assert _validate(tmp_path, tpl, pred.iloc[[0, 2]]) == ["missing patient 'P2' (in the template, not in "
                                                           "the predictions)"]
    extra = pd.concat([pred, score_frame(["P9"])], ignore_index=True)
    assert _validate(tmp_path, tpl, extra) == ["line 5: extra patient 'P9' (not in the template)"]
    dup = pd.concat([pred, pred.iloc[[1]]], ignore_index=True)
    assert _validate(tmp_path, tpl, dup) == ["line 5: duplicate patient 'P2' (first on line 3)"]
    renamed = pred.copy()
    renamed.loc[1, C.PATIENT_COLUMN] = "p2"
    assert _validate(tmp_path, tpl, renamed) == [
        "line 3: renamed patient 'p2': the template's row 2 is 'P2' (Patient_ID must be left untouched)"]
    blank = pred.copy()
    blank.loc[0, C.PATIENT_COLUMN] = ""
    assert _validate(tmp_path, tpl, blank) == [
        "line 2: empty Patient_ID", "missing patient 'P1' (in the template, not in the predictions)"]


def test_validate_row_order_is_not_a_problem(tmp_path, valid_pair):
    tpl, pred = valid_pair
    assert _validate(tmp_path, tpl, pred.iloc[[2, 0, 1]]) == []


@pytest.mark.parametrize("cell, message", [
    ("", "empty cell"),
    ("NaN", "NaN ('NaN')"),
    ("abc", "not numeric: 'abc'"),
    ("-0.5", "negative value -0.5"),
    ("inf", "infinite value 'inf'"),
])
def test_validate_cell_problems(tmp_path, valid_pair, cell, message):
    tpl, pred = valid_pair
    df = pred.astype({"LF_mtp_E__4": object})
    df.loc[2, "LF_mtp_E__4"] = cell
    assert _validate(tmp_path, tpl, df) == [f"line 4, patient 'P3', column 'LF_mtp_E__4': {message}"]


def test_validate_caps_the_list_of_cell_problems(tmp_path, valid_pair):
    tpl, pred = valid_pair
    df = pred.copy()
    df[list(C.COLUMNS[1:])] = -1.0
    problems = _validate(tmp_path, tpl, df)
    assert len(problems) == rio.MAX_CELL_PROBLEMS + 1
    assert problems[-1] == f"... and {3 * 89 - rio.MAX_CELL_PROBLEMS} more cell problems not listed"


@pytest.mark.parametrize("content", [None, "", "a,b\n1\n"])
def test_validate_unreadable_predictions_reports_instead_of_raising(tmp_path, valid_pair, content):
    tpl, _ = valid_pair
    path = tmp_path / "predictions.csv"
    if content is not None:
        path.write_text(content)
    problems = rio.validate_predictions(path, tpl)
    assert len(problems) == 1 and str(path) in problems[0]


def test_validate_binary_garbage_reports(tmp_path, valid_pair):
    tpl, _ = valid_pair
    path = tmp_path / "predictions.csv"
    path.write_bytes(bytes(range(256)))
    problems = rio.validate_predictions(path, tpl)
    # one line naming the file and what is wrong with it: bytes 0-127 are ASCII, 0x80 is the first non-UTF-8 byte
    assert problems == [f"predictions CSV {path}: not UTF-8 text (invalid start byte at byte 128)"]


def test_read_predictions_csv(tmp_path, valid_pair):
    _, pred = valid_pair
    path = tmp_path / "predictions.csv"
    pred = pred.copy()
    pred.loc[0, "LH_pip_J__2"] = -0.25  # negative values are kept for the metric to clip
    write_csv(pred.assign(Extra=1.0), path)
    got = rio.read_predictions_csv(path)
    assert list(got.columns) == list(C.COLUMNS) and got.loc[0, "LH_pip_J__2"] == -0.25
    write_csv(pred.drop(columns=["LH_pip_J__2"]), path)
    with pytest.raises(Ra2Error, match="missing column\\(s\\) 'LH_pip_J__2'"):
        rio.read_predictions_csv(path)
    bad = pred.astype({"LH_pip_J__2": object})
    bad.loc[1, "LH_pip_J__2"] = "x"
    write_csv(bad, path)
    with pytest.raises(Ra2Error, match="line 3, patient 'P2', column 'LH_pip_J__2': not a number"):
        rio.read_predictions_csv(path)


def test_io_does_not_import_tensorflow():
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    code = "import sys, ra2.io, ra2.metrics, ra2.baseline; sys.exit(1 if 'tensorflow' in sys.modules else 0)"
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": repo})
    assert run.returncode == 0


def test_validate_header_whitespace_and_row_of_empty_fields(tmp_path, valid_pair):
    tpl, pred = valid_pair
    path = tmp_path / "predictions.csv"
    text = pred.to_csv(index=False).replace("Patient_ID,", "Patient_ID ,", 1)
    path.write_text(text)
    assert rio.validate_predictions(path, tpl) == ["missing column 'Patient_ID'",
                                                   "extra column 'Patient_ID '"]
    path.write_text(pred.to_csv(index=False) + "," * 89 + "\n")
    problems = rio.validate_predictions(path, tpl)
    assert problems[0] == "line 5: empty Patient_ID"
    assert len(problems) == 1 + 89
    assert problems[1].startswith("line 5, patient '', column 'Overall_Tol': empty")
