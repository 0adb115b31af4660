"""Bad input (issue 12): every kind of damaged film or table a user may hand the container.

Film-level cases: :func:`ra2.io.read_film` either gives a sensible image (pixel values checked against
expectations computed here, independently of ``ra2.io``) or a one-line :class:`ra2.Ra2Error` naming the
file; a film that cannot be read costs only that limb's joints (``ra2.pipeline.films``' job). Table-level cases:
:func:`ra2.challenge_run.run_challenge` writes a ``predictions.csv`` that
:func:`ra2.io.validate_predictions` accepts, or, where nothing valid can be written, raises a one-line
:class:`ra2.Ra2Error` and writes nothing.
"""

from __future__ import annotations

import logging
import struct
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ra2 import Ra2Error
from ra2 import contract as C
from ra2 import io as rio
from ra2.challenge_run import FALLBACK_CONSTANT, run_challenge

from csv_factory import score_frame, write_csv

TRAIN_IDS = ["A1", "A2", "A3", "A4"]


def _one_line_error(exc_info, *fragments) -> str:
    """The message of a raised Ra2Error: one line, holding every fragment."""
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for frag in fragments:
        assert str(frag) in msg, (frag, msg)
    return msg


# --------------------------------------------------------------------------------------------------
# Films that cannot be read: a one-line error naming the file
# --------------------------------------------------------------------------------------------------
def _gradient(h: int, w: int) -> np.ndarray:
    """[h, w] uint8, smooth (JPEG keeps it well): a diagonal ramp with a slow wave."""
    y, x = np.mgrid[0:h, 0:w]
    v = 40 + 150 * (x / max(w - 1, 1)) + 30 * np.sin(y / 7.0)
    return np.clip(np.round(v), 0, 255).astype(np.uint8)


def test_missing_film(tmp_path):
    with pytest.raises(Ra2Error) as info:
        rio.read_film(tmp_path / "P1-LH.jpg")
    _one_line_error(info, tmp_path / "P1-LH.jpg", "file not found")
    with pytest.raises(Ra2Error) as info:
        rio.find_film(tmp_path, "P1", "LH")
    _one_line_error(info, "'P1'", "left hand", "not found in", tmp_path, "P1-LH.jpg")


def test_zero_byte_film(tmp_path):
    path = tmp_path / "P1-LH.jpg"
    path.write_bytes(b"")
    with pytest.raises(Ra2Error) as info:
        rio.read_film(path)
    _one_line_error(info, path, "empty file (0 bytes)")


@pytest.mark.parametrize("keep", [0.98, 0.5, 0.1, 20])
def test_truncated_jpeg(tmp_path, keep):
    path = tmp_path / "P1-LH.jpg"
    Image.fromarray(_gradient(120, 90)).save(path, quality=90)
    data = path.read_bytes()
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    path.write_bytes(data[:n])
    with pytest.raises(Ra2Error) as info:
        rio.read_film(path)
    _one_line_error(info, path, "truncated")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "P1-LH.jpg"
    path.write_text("Patient_ID,Overall_Tol\nP1,3\n")
    with pytest.raises(Ra2Error) as info:
        rio.read_film(path)
    _one_line_error(info, path, "not an image file")


# --------------------------------------------------------------------------------------------------
# Films in an unexpected but readable form: the image, with the right values
# --------------------------------------------------------------------------------------------------
def test_png_named_jpg_is_read_losslessly(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(17, 23), dtype=np.uint8)
    path = tmp_path / "P1-LH.jpg"
    Image.fromarray(a).save(path, format="PNG")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    got = rio.read_film(path)
    assert got.dtype == np.float32 and got.shape == (17, 23)
    np.testing.assert_array_equal(got, (a.astype(np.float64) / 255.0).astype(np.float32))


def _write_dicom(path: Path, stored: np.ndarray, bits_stored: int, photometric: str = "MONOCHROME2"):
    """An uncompressed single-frame grey DICOM file of ``stored`` ([rows, columns] unsigned, 16-bit
    allocated)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # computed radiography
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = (int(n) for n in stored.shape)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = stored.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_dicom_named_jpg(tmp_path):
    stored = (np.arange(6 * 9, dtype=np.uint16).reshape(6, 9) * 73) % 4096  # 12-bit values
    stored[0, 0], stored[5, 8] = 0, 4095
    path = tmp_path / "P1-RF.jpg"
    _write_dicom(path, stored, bits_stored=12)
    got = rio.read_film(path)
    assert got.shape == (6, 9)
    expected = [[v / 4095.0 for v in row] for row in stored.tolist()]  # 12 stored bits: 4095 is white
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got[0, 0] == 0.0 and got[5, 8] == 1.0


def test_16bit_png_keeps_its_levels(tmp_path):
    a = np.array([[0, 1, 255, 256], [32768, 65534, 65535, 12345]], dtype=np.uint16)
    path = tmp_path / "P1-LH.png"
    Image.fromarray(a).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    got = rio.read_film(path)
    np.testing.assert_allclose(got, [[v / 65535.0 for v in row] for row in a.tolist()], atol=1e-7)
    assert got[0, 1] > 0.0 and got[1, 1] < 1.0  # no 8-bit truncation, no rescaling


def test_rgba_film_is_luminance_and_ignores_alpha(tmp_path):
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, size=(9, 7, 4), dtype=np.uint8)
    rgba[..., 3] = rng.integers(0, 256, size=(9, 7))  # varied alpha: must not matter
    path = tmp_path / "P1-LH.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    got = rio.read_film(path)
    r, g, b = (rgba[..., i].astype(np.int64) for i in range(3))
    expected = (299 * r + 587 * g + 114 * b) / 255000.0  # ITU-R BT.601 luma, integer weights
    np.testing.assert_allclose(got, expected, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# Huge films: downscaled at read, memory bounded, Pillow's decompression-bomb guard handled
# --------------------------------------------------------------------------------------------------
def _block_means(a: np.ndarray, f: int) -> np.ndarray:
    """[H, W] -> [ceil(H/f), ceil(W/f)] float64 block means, edge blocks over the pixels they have
    (NaN padding + nanmean: a different method from ra2.io's)."""
    h, w = a.shape
    hp, wp = -(-h // f) * f, -(-w // f) * f
    padded = np.full((hp, wp), np.nan)
    padded[:h, :w] = a
    return np.nanmean(padded.reshape(hp // f, f, wp // f, f), axis=(1, 3))


def test_max_film_side_is_documented_and_above_real_films():
    assert rio.MAX_FILM_SIDE >= 3000  # the challenge's and phantom films (1000-3000 px) are untouched
    assert "MAX_FILM_SIDE" in rio.read_film.__doc__


@pytest.mark.parametrize("kind", ["jpeg", "png8", "png16", "rgba", "dicom"])
def test_huge_film_is_downscaled_by_block_means(tmp_path, kind):
    h, w = 40, 2 * rio.MAX_FILM_SIDE + 7  # factor 3: ceil(w / 3) <= MAX_FILM_SIDE < ceil(w / 2)
    f = 3
    grey = _gradient(h, w)
    path = tmp_path / "big.jpg"
    if kind == "jpeg":
        Image.fromarray(grey).save(path, quality=95)
        expected, atol, mean_atol = _block_means(grey / 255.0, f), 0.04, 0.01  # lossy and DCT-scaled
    elif kind == "png8":
        Image.fromarray(grey).save(path, format="PNG")
        # Pillow's reduce gives whole grey levels (its fixed-point division: within one level)
        expected, atol, mean_atol = _block_means(grey / 255.0, f), 1.01 / 255, 0.51 / 255
    elif kind == "png16":
        a16 = grey.astype(np.uint16) * 257 + 3
        Image.fromarray(a16).save(path, format="PNG")
        expected, atol, mean_atol = _block_means(a16 / 65535.0, f), 0.51 / 65535, 0.51 / 65535
    elif kind == "rgba":
        g16 = grey.astype(np.int64)
        rgba = np.stack([g16, 255 - g16, g16 // 2, (g16 * 7) % 256], axis=-1).astype(np.uint8)
        Image.fromarray(rgba, mode="RGBA").save(path, format="PNG")
        r, g, b = (rgba[..., i].astype(np.int64) for i in range(3))
        lum = (299 * r + 587 * g + 114 * b) / 255000.0
        expected, atol, mean_atol = _block_means(lum, f), 1.01 / 255, 0.51 / 255  # channels rounded
    else:
        stored = grey.astype(np.uint16) * 16  # 12-bit
        _write_dicom(path, stored, bits_stored=12)
        expected, atol, mean_atol = _block_means(stored / 4095.0, f), 1e-6, 1e-6
    got = rio.read_film(path)
    assert got.shape == (-(-h // f), -(-w // f)) and max(got.shape) <= rio.MAX_FILM_SIDE
    assert got.dtype == np.float32
    err = np.abs(got - expected)
    assert err.max() <= atol and err.mean() <= mean_atol, (err.max(), err.mean())


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_huge_film_never_exists_at_full_size_as_an_array(tmp_path, monkeypatch, fmt):
    from PIL import JpegImagePlugin

    h, w = 300, 5 * rio.MAX_FILM_SIDE - 80  # factor 5
    path = tmp_path / "huge.jpg"
    Image.fromarray(_gradient(h, w)).save(path, format=fmt)
    decoded = []  # the size each JPEG decode produced
    jpeg_load = JpegImagePlugin.JpegImageFile.load

    def recording_load(self):
        decoded.append(self.size)
        return jpeg_load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", recording_load)
    tracemalloc.start()
    try:
        got = rio.read_film(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.shape == (60, -(-w // 5))
    # Full-size float32 pixels would take 4 * h * w bytes; numpy must never hold even half of that.
    assert peak < 2 * h * w, peak
    if fmt == "JPEG":  # the decoder itself worked at 1/4 scale (1/8 would be below the target size)
        assert decoded and set(decoded) == {(-(-w // 4), -(-h // 4))}, decoded


def _forged_png(path: Path, width: int, height: int) -> None:
    """A valid-looking grey PNG of a few dozen bytes whose header claims ``width x height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_in_one_line(tmp_path):
    path = tmp_path / "P1-LH.jpg"
    _forged_png(path, 60000, 60000)  # 3.6 Gpx: Pillow refuses it at open
    assert path.stat().st_size < 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Ra2Error) as info:
            rio.read_film(path)
    _one_line_error(info, path, "refused", "decompression-bomb")


def test_pillow_guard_warning_zone_is_read_and_error_zone_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # Pillow: warning above 20k px, error above 40k
    warn = tmp_path / "warn.png"
    Image.fromarray(_gradient(150, 200)).save(warn)  # 30k px
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the read here
        got = rio.read_film(warn)
    np.testing.assert_array_equal(got, (_gradient(150, 200) / 255.0).astype(np.float32))
    bomb = tmp_path / "bomb.png"
    Image.fromarray(_gradient(200, 250)).save(bomb)  # 50k px
    with pytest.raises(Ra2Error) as info:
        rio.read_film(bomb)
    _one_line_error(info, bomb, "refused", "40000")
    dcm = tmp_path / "bomb.dcm"
    _write_dicom(dcm, _gradient(200, 250).astype(np.uint16), bits_stored=8)
    with pytest.raises(Ra2Error) as info:
        rio.read_film(dcm)
    _one_line_error(info, dcm, "refused", "250 x 200", "decompression-bomb")


# --------------------------------------------------------------------------------------------------
# Films that are readable but hold no hand or foot: readable; the detector still answers
# --------------------------------------------------------------------------------------------------
def _other_body_part(h: int = 900, w: int = 720) -> np.ndarray:
    """[h, w] uint8: a crude chest radiograph (body, two dark lungs, a spine, ribs), no hand or foot."""
    im = Image.new("L", (w, h), 15)
    d = ImageDraw.Draw(im)
    d.ellipse([40, 60, w - 40, h - 20], fill=120)
    d.ellipse([110, 140, w // 2 - 30, h - 160], fill=55)
    d.ellipse([w // 2 + 30, 140, w - 110, h - 160], fill=55)
    d.rectangle([w // 2 - 22, 80, w // 2 + 22, h - 60], fill=200)
    for k in range(8):
        y = 170 + 70 * k
        d.arc([90, y - 60, w - 90, y + 60], 200, 340, fill=190, width=9)
    return np.asarray(im)


def _blank(value):
    return lambda: np.full((700, 560), value, np.uint8)


def _noise():
    return np.random.default_rng(5).integers(0, 256, size=(700, 560), dtype=np.uint8)


NO_LIMB_FILMS = {"blank_black": _blank(0), "blank_white": _blank(255), "noise": _noise,
                 "other_body_part": _other_body_part}


@pytest.mark.parametrize("name", sorted(NO_LIMB_FILMS))
def test_films_without_a_limb_are_readable(tmp_path, name):
    a = NO_LIMB_FILMS[name]()
    path = tmp_path / "P1-LH.png"
    Image.fromarray(a).save(path)
    got = rio.read_film(path)
    np.testing.assert_array_equal(got, (a / 255.0).astype(np.float32))


@pytest.fixture
def detector(shipped_detector):
    """The shipped detectors, loaded once for the session (conftest)."""
    return shipped_detector


BOX_SOURCES = {"detected", "reassigned", "layout", "layout_default"}


@pytest.mark.parametrize("name", sorted(NO_LIMB_FILMS))
def test_detector_answers_on_films_without_a_limb(tmp_path, detector, name):
    limb = "LH"  # the hand detector, then both wrist detectors on its carpus box: three of the four
    path = tmp_path / f"P1-{limb}.jpg"
    Image.fromarray(NO_LIMB_FILMS[name]()).save(path, quality=90)
    film = rio.read_film(path)
    found = detector.detect_film(film, limb)
    sites = {s.id for s in C.sites_of_limb(limb)}
    assert set(found.boxes) == sites and set(found.sources) == sites
    assert set(found.sources.values()) <= BOX_SOURCES
    h, w = film.shape
    for y1, x1, y2, x2 in found.boxes.values():
        assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w


# --------------------------------------------------------------------------------------------------
# Tables: run_challenge writes a valid predictions.csv, or one line and nothing
# --------------------------------------------------------------------------------------------------
@pytest.fixture()
def challenge(tmp_path):
    """(train, test, output, work) folders: 4 valid training patients, no template yet."""
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir(), test.mkdir()
    write_csv(score_frame(TRAIN_IDS, seed=7), train / "training.csv")
    return train, test, tmp_path / "output", tmp_path / "work"


def _template_text(ids, columns=C.COLUMNS, newline="\n", quote_ids=False) -> str:
    """A template as text: the header, then each id followed by empty score cells."""
    def cells(pid):
        return [f'"{pid}"' if quote_ids and c == C.PATIENT_COLUMN else (pid if c == C.PATIENT_COLUMN else "")
                for c in columns]

    return newline.join([",".join(columns)] + [",".join(cells(p)) for p in ids]) + newline


def _run_valid(challenge, *, model_step=None):
    """run_challenge, then: the file validates against the template; returns it read back."""
    train, test, out, work = challenge
    path = run_challenge(train, test, out, work, model_step=model_step)
    assert path == out / "predictions.csv"
    assert rio.validate_predictions(path, test / "template.csv") == []
    return path


def _means(ids=TRAIN_IDS, seed=7, keep=None):
    df = score_frame(ids, seed=seed)
    if keep is not None:
        df = df.iloc[keep]
    return df[list(C.JOINT_COLUMNS)].mean()


def test_template_with_byte_order_mark(challenge):
    _, test, _, _ = challenge
    (test / "template.csv").write_bytes(b"\xef\xbb\xbf" + _template_text(["T1", "T2"]).encode())
    pred = rio.read_predictions_csv(_run_valid(challenge))
    assert list(pred.columns) == list(C.COLUMNS) and list(pred[C.PATIENT_COLUMN]) == ["T1", "T2"]
    assert pred["LH_pip_E__2"].tolist() == pytest.approx([_means()["LH_pip_E__2"]] * 2)


def test_template_with_crlf_line_ends(challenge):
    _, test, _, _ = challenge
    (test / "template.csv").write_bytes(_template_text(["T1", "T2"], newline="\r\n").encode())
    path = _run_valid(challenge)
    assert list(rio.read_predictions_csv(path)[C.PATIENT_COLUMN]) == ["T1", "T2"]
    assert b"\r" not in path.read_bytes().replace(b"\r\n", b"")  # no stray CR inside a cell


def test_template_with_quoted_ids(challenge):
    _, test, _, _ = challenge
    (test / "template.csv").write_text(_template_text(["T1", "0002", "A,B"], quote_ids=True))
    path = _run_valid(challenge)
    assert list(rio.read_predictions_csv(path)[C.PATIENT_COLUMN]) == ["T1", "0002", "A,B"]


def test_template_with_padded_ids_keeps_them_untouched_and_finds_their_films(challenge):
    _, test, _, _ = challenge
    (test / "template.csv").write_text(_template_text([" T1", "T2  "]))
    path = _run_valid(challenge)
    assert list(rio.read_predictions_csv(path)[C.PATIENT_COLUMN]) == [" T1", "T2  "]
    film = test / "T1-LH.jpg"
    Image.fromarray(_gradient(8, 8)).save(film)
    assert rio.find_film(test, " T1", "LH") == film


def test_template_with_missing_score_columns_gets_exactly_its_columns(challenge):
    _, test, _, _ = challenge
    columns = (C.PATIENT_COLUMN, "RF_mtp_J__5", C.OVERALL_TOTAL, "LH_mcp_E__ip")
    (test / "template.csv").write_text(_template_text(["T1", "T2"], columns=columns))
    path = _run_valid(challenge)
    assert path.read_text().splitlines()[0] == ",".join(columns)
    pred = rio.read_template_csv(path)  # cells as text
    means = _means()
    assert [float(x) for x in pred["RF_mtp_J__5"]] == pytest.approx([means["RF_mtp_J__5"]] * 2)
    assert [float(x) for x in pred[C.OVERALL_TOTAL]] == pytest.approx([means.sum()] * 2)


@pytest.mark.parametrize("header_edit, fragment", [
    (lambda cols: cols + ["Comment"], "unknown column 'Comment'"),
    (lambda cols: cols + [""], "unknown column ''"),  # a trailing comma on every line
    (lambda cols: cols + ["LH_pip_J__2"], "duplicate column 'LH_pip_J__2'"),
    (lambda cols: cols[1:], "missing column 'Patient_ID'"),
])
def test_template_with_unusable_columns_is_one_line_and_no_file(challenge, header_edit, fragment):
    _, test, out, _ = challenge
    columns = header_edit(list(C.COLUMNS))
    body = [",".join("T1" if c == C.PATIENT_COLUMN else "" for c in columns)]
    (test / "template.csv").write_text("\n".join([",".join(columns)] + body) + "\n")
    train, test, out, work = challenge
    with pytest.raises(Ra2Error) as info:
        run_challenge(train, test, out, work)
    _one_line_error(info, test / "template.csv", fragment)
    assert not (out / "predictions.csv").exists()


def test_template_with_duplicate_patients_is_one_line_and_no_file(challenge):
    train, test, out, work = challenge
    (test / "template.csv").write_text(_template_text(["T1", "T2", "T1"]))
    with pytest.raises(Ra2Error) as info:
        run_challenge(train, test, out, work)
    _one_line_error(info, test / "template.csv", "line 4", "duplicate Patient_ID 'T1'", "first on line 2")
    assert not (out / "predictions.csv").exists()


@pytest.mark.parametrize("column, value", [
    ("LH_pip_E__3", ""), ("LH_pip_E__3", "NaN"), ("LF_mtp_E__2", "11"),  # foot erosion: 0-10
    ("RH_wrist_J__mna", "-1"), ("RH_wrist_J__mna", "4.5"), ("RH_wrist_J__mna", "abc"),
])
def test_training_rows_with_nan_or_out_of_range_scores_are_skipped_and_reported(challenge, caplog, column,
                                                                                value):
    train, test, _, _ = challenge
    df = score_frame(TRAIN_IDS, seed=7).astype({column: object})
    df.loc[1, column] = value  # A2, line 3
    df.loc[3, "LH_mcp_J__1"] = 5.0  # A4, line 5: narrowing is 0-4
    write_csv(df, train / "training.csv")
    (test / "template.csv").write_text(_template_text(["T1"]))
    with caplog.at_level(logging.WARNING, logger="ra2.io"):
        path = _run_valid(challenge)
    warnings_ = [r.getMessage() for r in caplog.records if r.name == "ra2.io"]
    assert len(warnings_) == 1
    assert "skipped 2 of 4 rows" in warnings_[0] and "line 3, patient 'A2'" in warnings_[0]
    assert "line 5, patient 'A4', column 'LH_mcp_J__1'" in warnings_[0]
    read = rio.read_training_csv(train / "training.csv")
    assert len(read.attrs["skipped_rows"]) == 2 and list(read[C.PATIENT_COLUMN]) == ["A1", "A3"]
    pred = rio.read_predictions_csv(path)
    means = _means(keep=[0, 2])  # the mean of the two good rows only
    for col in (column, "LH_mcp_J__1", "RF_mtp_E__ip"):
        assert pred.loc[0, col] == pytest.approx(means[col])


def test_training_with_every_row_bad_falls_back_to_the_constant(challenge, caplog):
    train, test, _, _ = challenge
    df = score_frame(TRAIN_IDS, seed=7)
    df["LH_pip_J__2"] = np.nan
    write_csv(df, train / "training.csv")
    (test / "template.csv").write_text(_template_text(["T1", "T2"]))
    with caplog.at_level(logging.ERROR, logger="ra2.run"):
        path = _run_valid(challenge)
    assert any("no usable row, all 4 skipped" in r.getMessage() for r in caplog.records)
    pred = rio.read_predictions_csv(path)
    assert pred["LH_pip_J__2"].tolist() == [FALLBACK_CONSTANT] * 2


@pytest.mark.parametrize("pid", ["../escape", "sub/../../escape", "..\\escape", "/tmp/escape"])
def test_patient_id_cannot_reach_outside_the_film_folder(challenge, pid):
    train, test, out, work = challenge
    (test / "template.csv").write_text(_template_text(["T1", pid]))
    outside = test.parent / "escape-LH.jpg"  # a real film, one folder up
    Image.fromarray(_gradient(16, 16)).save(outside)
    with pytest.raises(Ra2Error) as info:
        rio.find_film(test, pid, "LH")
    _one_line_error(info, repr(pid), "not a safe file name")
    from ra2.pipeline.films import film_names

    assert film_names(test, ["T1", pid])[4:] == [(pid, limb, None) for limb in C.LIMBS]
    path = _run_valid(challenge)
    assert list(rio.read_predictions_csv(path)[C.PATIENT_COLUMN]) == ["T1", pid]  # untouched
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv", "run_summary.json"]


def test_patient_id_dotdot_without_separator_stays_inside(tmp_path):
    (tmp_path / "films").mkdir()
    inside = tmp_path / "films" / "..-LH.png"
    Image.fromarray(_gradient(4, 4)).save(inside)
    assert rio.find_film(tmp_path / "films", "..", "LH") == inside


def test_empty_test_set_gives_a_header_only_file_and_no_model_step(challenge):
    _, test, _, _ = challenge
    (test / "template.csv").write_text(",".join(C.COLUMNS) + "\n")
    calls = []
    path = _run_valid(challenge, model_step=lambda *args: calls.append(args))
    assert path.read_text() == ",".join(C.COLUMNS) + "\n"
    assert calls == []
