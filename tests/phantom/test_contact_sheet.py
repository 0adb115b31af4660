"""Contact sheets: PNG grids of films with boxes, and the damage scale."""

import numpy as np
import pytest
from PIL import Image

from ra2 import Ra2Error
from ra2.phantom import contact_sheet, damage_scale, generate_dataset, render_film


def test_contact_sheet_from_films_and_from_folder(tmp_path):
    films = [render_film(limb, {}, np.random.default_rng(i), 0.2) for i, limb in enumerate(("LH", "RF", "RH"))]
    out = contact_sheet(films, tmp_path / "a.png", n=3, cols=2, tile_height=100)
    with Image.open(out) as im:
        assert im.height == 2 * 100 and im.mode == "RGB"
        arr = np.asarray(im)
    # Boxes are drawn in colour on grey films: some pixels are strongly coloured.
    assert (np.abs(arr[..., 0].astype(int) - arr[..., 2].astype(int)) > 100).any()
    generate_dataset(tmp_path / "ds", train_patients=1, test_patients=0, seed=0, size_scale=0.15, workers=1)
    out = contact_sheet(tmp_path / "ds" / "train", tmp_path / "b.png", n=4, cols=4, tile_height=80, colors=32)
    with Image.open(out) as im:
        assert im.height == 80 and im.mode == "P"
    with pytest.raises(Ra2Error, match="annotations.json"):
        contact_sheet(tmp_path, tmp_path / "c.png")


def test_damage_scale_sheet(tmp_path):
    out = damage_scale(tmp_path / "d.png", seed=0, size_scale=0.2, tile=24, columns=("LF_mtp_E__2", "LH_pip_J__2"))
    with Image.open(out) as im:
        assert im.width == 170 + 11 * 24  # label column + scores 0..10
        assert im.height == 2 * (24 + 16) + 16
        arr = np.asarray(im)
    # The narrowing row has crops for scores 0..4 and nothing (background) for 5..10.
    y = 16 + (24 + 16) + 12
    assert arr[y, 170 + 2 * 24:170 + 3 * 24].std() > 0
    assert (arr[y, 170 + 6 * 24:170 + 11 * 24] == 25).all()
