"""The phantom foot: anatomical proportions and the mix of views (whole foot, forefoot, oblique)."""

import numpy as np
import pytest

from ra2.phantom import render_film
from ra2.phantom.anatomy import FootView, build_foot, sample_foot_view

MTP = [f"mtp__{i}" for i in range(1, 6)]


def _foot(seed: int, view: FootView | None = None):
    return build_foot(np.random.default_rng(seed), {}, 0.5, {}, view=view)


def _foot_length_fraction(skel) -> float:
    """Where the MTP row lies along the foot, heel (0) to toe tips (1), along the film's y (toes up)."""
    heel = max(float(p[0]) for poly in skel.tissue_polygons for p in poly)
    tips = min(float(b.tip[0]) for name, b in skel.bones.items() if name.startswith("tp") and name.endswith("_3"))
    row = np.mean([skel.joints[k].centre[0] for k in MTP])
    return (heel - row) / (heel - tips)


@pytest.mark.parametrize("seed", range(6))
def test_mtp_row_lies_about_two_thirds_from_heel_to_toe_tips(seed):
    skel = _foot(seed)
    assert 0.62 <= _foot_length_fraction(skel) <= 0.8
    # The hindfoot is there: the calcaneus reaches far behind the tarsometatarsal joints.
    assert skel.bones["calcaneus"].centre[0] - skel.bones["mt2"].p0[0] > 50.0


@pytest.mark.parametrize("seed", range(4))
def test_toe_phalanges_are_short_against_their_metatarsals(seed):
    b = _foot(seed).bones
    for f in range(2, 6):
        assert 0.2 <= b[f"tp{f}_1"].length / b[f"mt{f}"].length <= 0.5
        assert b[f"tp{f}_2"].length + b[f"tp{f}_3"].length < 0.3 * b[f"mt{f}"].length
    assert 0.35 <= b["tp1_1"].length / b["mt1"].length <= 0.6
    assert "tp1_2" not in b  # the hallux has two phalanges
    # MT1 is the shortest-but-thickest metatarsal.
    assert b["mt1"].length < b["mt2"].length and b["mt1"].wm > 1.4 * b["mt2"].wm


def test_sesamoids_under_the_mt1_head_and_mt5_tuberosity_lateral():
    b = _foot(0).bones
    mt1 = b["mt1"]
    for name in ("sesamoid_medial", "sesamoid_lateral"):
        rel = b[name].centre - mt1.p0
        along, across = rel @ mt1.axis, rel @ mt1.perp
        assert mt1.length - 12.0 < along < mt1.length and abs(across) < mt1.w1
    mt5 = b["mt5"]
    tub = b["mt5_tuberosity"]
    assert tub.centre[1] < mt5.p0[1]  # lateral (-x: the big toe of a left foot is on +x)
    assert (tub.centre - mt5.p0) @ mt5.axis < 0.2 * mt5.length
    for name in ("talus", "navicular", "cuboid", "cuneiform1", "cuneiform2", "cuneiform3"):
        assert name in b


def test_views_vary_with_the_seed():
    views = [sample_foot_view(np.random.default_rng(s)) for s in range(200)]
    kinds = {v.kind for v in views}
    assert kinds == {"whole", "forefoot", "oblique"}
    assert any(v.ankle for v in views) and not all(v.ankle for v in views if v.kind == "whole")
    assert all(0.55 <= v.squeeze < 0.85 for v in views if v.kind == "oblique")


def test_oblique_view_closes_up_the_metatarsals_and_ankle_adds_tibia_and_fibula():
    dp, obl = _foot(3, FootView("whole")), _foot(3, FootView("oblique", squeeze=0.65))
    spread = lambda s: np.ptp([s.bones[f"mt{f}"].tip[1] for f in range(1, 6)])  # noqa: E731
    assert spread(obl) < 0.75 * spread(dp)
    # Widths stay (a cylinder seen obliquely is as wide): the metatarsal bases overlap.
    assert obl.bones["mt2"].w0 == dp.bones["mt2"].w0
    ankle = _foot(3, FootView("whole", ankle=True))
    assert {"tibia", "fibula"} <= set(ankle.bones) and "tibia" not in dp.bones
    assert "talus" in _foot(3, FootView("forefoot")).fit_exclude  # the hindfoot may leave a forefoot film
    assert "talus" not in dp.fit_exclude and "tibia" in ankle.fit_exclude  # the leg may leave any film


def test_whole_foot_films_show_the_forefoot_smaller_than_forefoot_films():
    """Over seeds, the MTP boxes' size against the film height varies with the view (whole foot: small)."""
    sizes = []
    for seed in range(12):
        _, ann = render_film("LF", {}, np.random.default_rng(seed), size_scale=0.2)
        boxes = np.array([o.box for o in ann.objects])
        sizes.append(float(np.mean(boxes[:, 2] - boxes[:, 0])) / ann.height)
    assert max(sizes) > 1.5 * min(sizes)
