"""The catalogue against the official template header (copied from the challenge's template.csv)."""

import subprocess
import sys

from ra2 import contract as c

OFFICIAL_HEADER = (
    "Patient_ID,Overall_Tol,Overall_erosion,Overall_narrowing,LH_mcp_E__ip,LH_pip_E__2,LH_pip_E__3,"
    "LH_pip_E__4,LH_pip_E__5,LH_mcp_E__1,LH_mcp_E__2,LH_mcp_E__3,LH_mcp_E__4,LH_mcp_E__5,LH_wrist_E__mc1,"
    "LH_wrist_E__mul,LH_wrist_E__nav,LH_wrist_E__lunate,LH_wrist_E__radius,LH_wrist_E__ulna,RH_mcp_E__ip,"
    "RH_pip_E__2,RH_pip_E__3,RH_pip_E__4,RH_pip_E__5,RH_mcp_E__1,RH_mcp_E__2,RH_mcp_E__3,RH_mcp_E__4,"
    "RH_mcp_E__5,RH_wrist_E__mc1,RH_wrist_E__mul,RH_wrist_E__nav,RH_wrist_E__lunate,RH_wrist_E__radius,"
    "RH_wrist_E__ulna,LF_mtp_E__ip,LF_mtp_E__1,LF_mtp_E__2,LF_mtp_E__3,LF_mtp_E__4,LF_mtp_E__5,RF_mtp_E__ip,"
    "RF_mtp_E__1,RF_mtp_E__2,RF_mtp_E__3,RF_mtp_E__4,RF_mtp_E__5,LH_pip_J__2,LH_pip_J__3,LH_pip_J__4,"
    "LH_pip_J__5,LH_mcp_J__1,LH_mcp_J__2,LH_mcp_J__3,LH_mcp_J__4,LH_mcp_J__5,LH_wrist_J__cmc3,"
    "LH_wrist_J__cmc4,LH_wrist_J__cmc5,LH_wrist_J__mna,LH_wrist_J__capnlun,LH_wrist_J__radcar,RH_pip_J__2,"
    "RH_pip_J__3,RH_pip_J__4,RH_pip_J__5,RH_mcp_J__1,RH_mcp_J__2,RH_mcp_J__3,RH_mcp_J__4,RH_mcp_J__5,"
    "RH_wrist_J__cmc3,RH_wrist_J__cmc4,RH_wrist_J__cmc5,RH_wrist_J__mna,RH_wrist_J__capnlun,"
    "RH_wrist_J__radcar,LF_mtp_J__ip,LF_mtp_J__1,LF_mtp_J__2,LF_mtp_J__3,LF_mtp_J__4,LF_mtp_J__5,"
    "RF_mtp_J__ip,RF_mtp_J__1,RF_mtp_J__2,RF_mtp_J__3,RF_mtp_J__4,RF_mtp_J__5"
)


def test_columns_are_the_official_90_in_order():
    assert list(c.COLUMNS) == OFFICIAL_HEADER.split(",")
    assert len(c.COLUMNS) == 90


def test_kinds_counts_and_ranges():
    assert len(c.EROSION_COLUMNS) == 44 and all("_E__" in col for col in c.EROSION_COLUMNS)
    assert len(c.NARROWING_COLUMNS) == 42 and all("_J__" in col for col in c.NARROWING_COLUMNS)
    # Maximum total 448 = erosion 280 + narrowing 168 (challenge.md section 1).
    assert sum(c.MAX_SCORE[col] for col in c.EROSION_COLUMNS) == 280
    assert sum(c.MAX_SCORE[col] for col in c.NARROWING_COLUMNS) == 168
    assert c.MAX_SCORE["LF_mtp_E__3"] == 10
    assert c.MAX_SCORE["RH_wrist_E__nav"] == 5
    assert c.MAX_SCORE["RF_mtp_J__ip"] == 4


def test_datasets_partition_the_scores():
    sizes = {name: len(c.scores_of_dataset(name)) for name in c.DATASETS}
    assert sizes == {"foot_erosion": 12, "hand_erosion": 32, "narrowing": 42}


def test_sites_and_detectors():
    assert len(c.SITES) == 56  # 2 hands x (10 hand joints + 6 + 6 wrist areas) + 2 feet x 6
    assert {d: len(k) for d, k in c.DETECTOR_CLASSES.items()} == {
        "feet": 6, "hands": 11, "wrist_erosion": 6, "wrist_narrowing": 6}
    thumb_ip = c.SITE_BY_ID["LH_mcp__ip"]
    assert [s.column for s in c.scores_of_site(thumb_ip.id)] == ["LH_mcp_E__ip"]
    assert thumb_ip.detector == "hands"
    assert [s.column for s in c.scores_of_site("RF_mtp__ip")] == ["RF_mtp_E__ip", "RF_mtp_J__ip"]
    nav = c.SITE_BY_ID["LH_wrist__nav"]
    assert (nav.detector, nav.class_id) == ("wrist_erosion", 3)
    assert c.site_for_detection("RH", "hands", "carpus") is None
    assert c.site_for_detection("RH", "wrist_narrowing", "wrist__radcar").id == "RH_wrist__radcar"
    # Every detector class except the carpus produces exactly one site per limb it runs on.
    for limb in c.LIMBS:
        for det in c.LIMB_DETECTORS[limb]:
            for cls in c.DETECTOR_CLASSES[det]:
                site = c.site_for_detection(limb, det, cls)
                assert site is None or site.limb == limb


def test_film_names_and_limb_columns():
    assert c.film_name("UAB001", "LH") == "UAB001-LH.jpg"
    assert len(c.limb_columns(c.HAND_LIMBS)) == 62
    assert len(c.limb_columns(c.FOOT_LIMBS, c.NARROWING)) == 12
    assert c.is_right("RF") and not c.is_right("LH")


def test_import_ra2_does_not_import_tensorflow():
    code = "import ra2, ra2.contract, ra2.cli, sys; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_other_side_swaps_left_and_right_of_hands_and_feet():
    assert c.other_side("LH_pip_E__2") == "RH_pip_E__2"
    assert c.other_side("RF_mtp_J__ip") == "LF_mtp_J__ip"
    assert all(c.other_side(c.other_side(col)) == col for col in c.JOINT_COLUMNS)
    assert {c.other_side(col) for col in c.JOINT_COLUMNS} == set(c.JOINT_COLUMNS)
    assert c.film_detector("RH") == c.HANDS and c.film_detector("LF") == c.FEET
