"""`ra2 evaluate` end to end on the shared phantom (ground-truth boxes as the detections): metrics.json, valid
PNG figures, a self-contained report.html that renders in headless Chromium; clear errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ra2 import contract as C
from ra2 import io
from ra2.annotations import read_annotations
from ra2.cli import main
from ra2.evaluation.browser import BROWSERS, find_browser, screenshot
from ra2.scoring.uncertainty import uncertainty_frame

from conftest import require

FIGURES = {"totals_scatter", "bland_altman", "joint_error_map", "spread_vs_error", "detection_overlays",
           "worst_crops"}


@pytest.fixture(scope="module")
def run(phantom, tmp_path_factory):
    """predictions = gold + seeded noise (spread = |noise| + small jitter, so spread tracks error), the
    uncertainty beside them, detections.json from the ground-truth boxes; then `ra2 evaluate`."""
    tmp = tmp_path_factory.mktemp("eval")
    gold = io.read_gold_csv(phantom / "gold.csv")
    rng = np.random.default_rng(5)
    pred = gold.copy()
    noise = rng.normal(0, 0.7, (len(gold), len(C.JOINT_COLUMNS)))
    pred[list(C.JOINT_COLUMNS)] = np.maximum(gold[list(C.JOINT_COLUMNS)].to_numpy() + noise, 0)
    pred = C.add_overall(pred)
    template = io.read_template_csv(phantom / "test" / "template.csv")
    (tmp / "pred").mkdir()
    io.write_predictions(pred, template, tmp / "pred" / "predictions.csv")
    spread = pred[[C.PATIENT_COLUMN]].copy()
    for i, c in enumerate(C.JOINT_COLUMNS):
        spread[c] = np.abs(noise[:, i]) + rng.uniform(0, 0.05, len(gold))
    io.write_uncertainty(uncertainty_frame(spread), template, tmp / "pred" / "predictions_uncertainty.csv")
    det = {"films": {}, "box_sources": {}, "sources": {"detected": 0}, "missing_films": []}
    for ann in read_annotations(phantom / "gold_annotations.json"):
        key = f"{ann.patient_id}-{ann.limb}"
        det["films"][key] = {o.site_id: list(o.box) for o in ann.objects if o.site_id}
        det["box_sources"][key] = {s: "detected" for s in det["films"][key]}
    (tmp / "pred" / "detections.json").write_text(json.dumps(det))
    out = tmp / "report"
    code = main(["evaluate", "--predictions", str(tmp / "pred" / "predictions.csv"), "--gold",
                 str(phantom / "gold.csv"), "--out", str(out), "--baseline", str(phantom / "train" / "training.csv"),
                 "--films", str(phantom / "test"), "--detections", str(tmp / "pred" / "detections.json"),
                 "--resamples", "200"])
    assert code == 0
    return out, pred, gold


def test_metrics_json_holds_official_scores_groups_joints_and_spread(run):
    from ra2.metrics import score

    out, pred, gold = run
    doc = json.loads((out / "metrics.json").read_text())
    official = score(pred, gold)
    for key, value in official.items():
        entry = doc["official"][key]
        assert entry["model"]["value"] == pytest.approx(value)
        assert set(entry) == {"model", "baseline", "difference"}
        base = entry["baseline"]["value"]
        if base is None:  # 3 training patients: some of their means are all 0, the metric NA
            assert entry["difference"]["value"] is None
        else:
            assert entry["difference"]["value"] == pytest.approx(value - base)
    assert set(doc["groups"]) == {"hand_erosion", "wrist_erosion", "foot_erosion", "hand_narrowing",
                                  "wrist_narrowing", "foot_narrowing"}
    assert set(doc["joints"]) == set(C.JOINT_COLUMNS)
    mae = np.abs(pred["LF_mtp_E__1"].to_numpy() - gold["LF_mtp_E__1"].to_numpy()).mean()
    assert doc["joints"]["LF_mtp_E__1"]["mae"] == pytest.approx(mae)
    # the spread was made to track the error: the flagged joints have the larger error
    assert doc["spread"]["mae_flagged"] > doc["spread"]["mae_rest"]
    assert set(doc["figures"]) == {f"{f}.png" for f in FIGURES}


def test_every_figure_is_a_valid_non_empty_png(run):
    out, _, _ = run
    for name in FIGURES:
        path = out / f"{name}.png"
        assert path.stat().st_size > 5000, name
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 200
            pixels = np.asarray(im.convert("L"), dtype=float)
        assert pixels.std() > 10, f"{name} looks blank"


def test_report_is_self_contained(run):
    out, _, _ = run
    text = (out / "report.html").read_text()
    assert text.count("src='data:image/png;base64,") == len(FIGURES)
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "Joints flagged for review" in text and "SC1" in text


@pytest.mark.thorough
def test_report_renders_in_headless_chromium(run, tmp_path):
    """Skips without a browser on a developer's machine; fails under ``CI=true`` (``.ci/run`` installs it)."""
    if find_browser() is None:
        require("the report's headless-Chromium check",
                f"no headless Chromium on PATH (looked for {', '.join(BROWSERS)}; apt-get install chromium)")
    out, _, _ = run
    png = screenshot(out / "report.html", tmp_path / "shot.png", width=1024, height=1400)
    with Image.open(png) as im:
        assert im.size == (1024, 1400)
        grey = np.asarray(im.convert("L"), dtype=float)
    # rendered, not blank: text and table lines darken a good share of the rows
    dark_rows = (grey < 128).any(axis=1).mean()
    assert grey.std() > 20 and dark_rows > 0.3


def test_bad_input_is_one_line_naming_the_file(run, phantom, tmp_path, capsys):
    out, _, _ = run
    missing = tmp_path / "nope.csv"
    assert main(["evaluate", "--predictions", str(missing), "--gold", str(phantom / "gold.csv"),
                 "--out", str(tmp_path / "o")]) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines() if " ra2 INFO " not in line]
    assert len(err) == 1 and err[0].startswith("ra2: error:") and "nope.csv" in err[0]  # the run log aside
    bad = tmp_path / "detections.json"
    bad.write_text("{not json")
    pred = out.parent / "pred" / "predictions.csv"
    assert main(["evaluate", "--predictions", str(pred), "--gold", str(phantom / "gold.csv"), "--out",
                 str(tmp_path / "o"), "--films", str(phantom / "test"), "--detections", str(bad)]) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines() if " ra2 INFO " not in line]
    assert len(err) == 1 and "detections.json: not valid JSON" in err[0]
    assert main(["evaluate", "--predictions", str(pred), "--gold", str(phantom / "gold.csv"), "--out",
                 str(tmp_path / "o"), "--films", str(phantom / "test")]) == 1
    assert "--films and --detections go together" in capsys.readouterr().err


def test_predictions_and_gold_alone_give_the_plots_that_need_nothing_else(phantom, tmp_path):
    from ra2.evaluation.evaluate import evaluate

    gold = io.read_gold_csv(phantom / "gold.csv")
    pred = gold.copy()
    pred[list(C.JOINT_COLUMNS)] = gold[list(C.JOINT_COLUMNS)].to_numpy() + 1.0  # every joint one point too high
    pred = C.add_overall(pred)
    (tmp_path / "p").mkdir()
    path = io.write_predictions(pred, io.read_template_csv(phantom / "test" / "template.csv"),
                                tmp_path / "p" / "predictions.csv")
    doc = evaluate(path, phantom / "gold.csv", tmp_path / "out", n_resamples=100)
    assert doc["figures"] == ["totals_scatter.png", "bland_altman.png", "joint_error_map.png"]
    assert "spread" not in doc and "baseline" not in doc["official"]["sc1"]
    # one point too high everywhere: every joint's MAE is 1
    assert all(j["mae"] == pytest.approx(1.0) for j in doc["joints"].values())
    text = (tmp_path / "out" / "report.html").read_text()
    assert "No predictions_uncertainty.csv was given" in text
