"""render_film: mirroring, damage visible in the crops, no brightness shortcut, small films."""

import numpy as np
import pytest

from ra2 import contract
from ra2.phantom import render_film
from ra2.phantom.contact_sheet import crop_box

SCALE = 0.3


def _obj(ann, site_id):
    return next(o for o in ann.objects if o.site_id == site_id)


def _mirror_scores(scores: dict[str, int], src: str, dst: str) -> dict[str, int]:
    return {c.replace(src, dst, 1): v for c, v in scores.items() if c.startswith(src)}


def test_right_film_is_the_mirror_of_the_left():
    left_scores = {"LH_mcp_E__2": 3, "LH_pip_J__4": 2, "LH_wrist_J__radcar": 1, "LH_wrist_E__nav": 2}
    img_l, ann_l = render_film("LH", left_scores, np.random.default_rng(4), SCALE)
    img_r, ann_r = render_film("RH", _mirror_scores(left_scores, "LH", "RH"), np.random.default_rng(4), SCALE)
    assert img_l.shape == img_r.shape
    w = img_l.shape[1]
    # Identical pixels everywhere except the side marker ("L" vs "R") and the text line.
    assert np.mean(img_r[:, ::-1] == img_l) > 0.97
    for ol in ann_l.objects:
        site_r = None if ol.site_id is None else ol.site_id.replace("LH", "RH", 1)
        or_ = next(o for o in ann_r.objects if o.class_name == ol.class_name and o.detector == ol.detector)
        assert or_.site_id == site_r
        y1, x1, y2, x2 = ol.box
        np.testing.assert_allclose(or_.box, (y1, w - x2, y2, w - x1), atol=0.02)
        np.testing.assert_allclose(np.sort(or_.polygon[:, 1]), np.sort(w - ol.polygon[:, 1]), atol=0.02)
    cy1, cx1, cy2, cx2 = ann_l.carpus_box
    assert ann_r.carpus_box == (cy1, w - cx2, cy2, w - cx1)
    # Left anatomy: thumb (MCP 1) on the right of the little finger (MCP 5); mirrored on the right hand.
    assert _obj(ann_l, "LH_mcp__1").box[1] > _obj(ann_l, "LH_mcp__5").box[1]
    assert _obj(ann_r, "RH_mcp__1").box[1] < _obj(ann_r, "RH_mcp__5").box[1]


def test_fingers_and_toes_point_up():
    for limb in ("LH", "LF"):
        _, ann = render_film(limb, {}, np.random.default_rng(1), SCALE)
        det = "hands" if limb == "LH" else "feet"
        if limb == "LH":
            pip, mcp = _obj(ann, "LH_pip__3").box, _obj(ann, "LH_mcp__3").box
            assert pip[2] < mcp[0] + 0.5 * (mcp[2] - mcp[0])  # PIP above MCP
            carpus = ann.carpus_box
            assert mcp[2] < carpus[2]
        else:
            ip, mtp = _obj(ann, "LF_mtp__ip").box, _obj(ann, "LF_mtp__1").box
            assert ip[0] < mtp[0]
        assert len(ann.objects_of(det)) == len(contract.DETECTOR_CLASSES[det])


def _gap_deficit(crop: np.ndarray) -> float:
    """Darkness of the joint gap: how far the central vertical profile dips below the bone level,
    integrated over the middle of the crop, per crop height (grey levels)."""
    h, w = crop.shape
    band = crop[:, int(w * 0.4):int(w * 0.6) + 1].astype(float).mean(axis=1)
    bone = np.percentile(band, 75)
    mid = band[int(h * 0.3):int(h * 0.7)]
    return float(np.clip(bone - mid, 0, None).sum() / h)


def _gap_deficits_by_score(column: str, seeds=range(2)) -> list[list[float]]:
    """``[seed][score 0-4]`` gap darkness at ``column``'s site on films rendered with that narrowing score."""
    site = contract.SCORE_BY_COLUMN[column].site.id
    rows = []
    for seed in seeds:
        row = []
        for score in range(5):
            img, ann = render_film(column[:2], {column: score}, np.random.default_rng(seed), SCALE)
            row.append(_gap_deficit(crop_box(img, _obj(ann, site).box)))
        rows.append(row)
    return rows


@pytest.mark.parametrize("column", ["LH_pip_J__3", "LH_mcp_J__2", "LF_mtp_J__2"])
def test_joint_gap_shrinks_with_narrowing(column):
    per_score = _gap_deficits_by_score(column)
    for seed, row in enumerate(per_score):
        assert row[0] > row[2] > row[4], (column, seed, row)
    mean = np.mean(per_score, axis=0)
    assert np.all(np.diff(mean) < 0), mean
    assert mean[4] < 0.4 * mean[0]


@pytest.mark.parametrize("column", ["LH_wrist_J__radcar", "LH_wrist_J__capnlun", "LH_wrist_J__cmc3"])
def test_wrist_gap_shrinks_with_narrowing(column):
    # Wrist areas are wider than the gap (neighbouring bones, other gaps): a weaker but clear effect.
    mean = np.mean(_gap_deficits_by_score(column), axis=0)
    assert np.all(np.diff(mean) < 0), mean
    assert mean[4] < 0.7 * mean[0]


@pytest.mark.parametrize("column", ["LH_mcp_E__3", "LH_wrist_E__lunate", "LF_mtp_E__1"])
def test_erosion_removes_bone_at_the_joint(column):
    sc = contract.SCORE_BY_COLUMN[column]
    img0, ann0 = render_film(sc.limb, {column: 0}, np.random.default_rng(3), SCALE)
    box = _obj(ann0, sc.site.id).box
    base = crop_box(img0, box).astype(float)
    lost = []
    for score in (1, sc.max_score // 2, sc.max_score):
        img, ann = render_film(sc.limb, {column: score}, np.random.default_rng(3), SCALE)
        assert _obj(ann, sc.site.id).box == box  # erosion does not move the joint
        crop = crop_box(img, box).astype(float)
        lost.append(float((base - crop).clip(0, None).sum()))
        # Outside the joint's box nothing changes.
        outside = img0.astype(int) - img.astype(int)
        y1, x1, y2, x2 = (int(v) for v in box)
        outside[max(y1 - 2, 0):y2 + 3, max(x1 - 2, 0):x2 + 3] = 0
        assert np.abs(outside).max() == 0
    assert 0 < lost[0] < lost[1] < lost[2]


@pytest.mark.parametrize("limb,detector,films", [("LH", "hands", 14), ("LF", "feet", 14)])
def test_mean_brightness_does_not_give_the_score_away(limb, detector, films):
    """Pearson r between a joint crop's mean intensity and its score must stay weak (|r| < 0.3)."""
    rng = np.random.default_rng(2024)
    means, nar, ero = [], [], []
    sites = [s for s in contract.sites_of_limb(limb) if s.detector == detector]
    for _ in range(films):
        # Scores drawn uniformly, so every score value is well represented.
        scores = {sc.column: int(rng.integers(0, sc.max_score + 1))
                  for s in sites for sc in contract.scores_of_site(s.id)}
        img, ann = render_film(limb, scores, rng, 0.25)
        for s in sites:
            crop = crop_box(img, _obj(ann, s.id).box)
            means.append(float(crop.mean()))
            nar.append(scores.get(f"{limb}_{s.family}_J__{s.name}", 0))
            ero.append(scores[f"{limb}_{s.family}_E__{s.name}"])
    r_nar = np.corrcoef(means, nar)[0, 1]
    r_ero = np.corrcoef(means, ero)[0, 1]
    assert abs(r_nar) < 0.3, r_nar
    assert abs(r_ero) < 0.3, r_ero


@pytest.mark.parametrize("limb", contract.LIMBS)
def test_small_films_still_work(limb):
    img, ann = render_film(limb, {}, np.random.default_rng(9), 0.12)
    assert img.dtype == np.uint8 and img.ndim == 2 and min(img.shape) >= 32
    assert img.std() > 10  # not a blank film
    for o in ann.objects:
        y1, x1, y2, x2 = o.box
        assert 0 <= y1 < y2 <= img.shape[0] and 0 <= x1 < x2 <= img.shape[1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="limb"):
        render_film("XX", {}, np.random.default_rng(0), SCALE)
    with pytest.raises(ValueError, match="LH_pip_J__2"):
        render_film("LH", {"LH_pip_J__2": 7}, np.random.default_rng(0), SCALE)


@pytest.mark.parametrize("column", ["LH_mcp_E__3", "LH_pip_E__3", "LH_wrist_E__lunate", "LF_mtp_E__3"])
def test_score_one_erosion_is_visible_in_a_48px_crop(column):
    """A score-1 erosion must show in the crop the ``cpu`` regressors see (48 px, films at size_scale 0.4).

    Same film rendered at score 0 and 1 (only that joint changed), both crops cut from the score-0 box:
    in most of 4 films the erosion darkens at least 8 crop pixels by more than 4 grey levels and one by more
    than 20 (about 2 mm pits on a 2-3 px/mm film; below that the regressors cannot learn score 1).
    """
    from ra2.detection.crops import cut_crop

    sc = contract.SCORE_BY_COLUMN[column]
    visible = 0
    for seed in range(4):
        img0, ann0 = render_film(sc.limb, {column: 0}, np.random.default_rng(seed), 0.4)
        img1, _ = render_film(sc.limb, {column: 1}, np.random.default_rng(seed), 0.4)
        box = _obj(ann0, sc.site.id).box
        c0, c1 = (cut_crop(i.astype(np.float32), box, 48, mirror=False) for i in (img0, img1))
        darker = c0 - c1
        visible += int((darker > 4).sum() >= 8 and darker.max() > 20)
    assert visible >= 3
