"""``ra2 evaluate``: a predictions.csv against a gold CSV -> ``metrics.json``, the PNG figures and
``report.html`` in one folder.

Inputs (files): the predictions and the gold standard (90-column challenge CSVs); optionally the training CSV
(the baseline: each joint's training mean), the films and the ``detections.json`` of the run (overlays and
crops), and ``predictions_uncertainty.csv`` (default: beside the predictions, when there).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from ra2 import Ra2Error, __version__

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"


def _load(predictions, gold, baseline, uncertainty):
    from ra2 import io
    from ra2.baseline import predict_means

    gold_df = io.read_gold_csv(gold)
    pred_df = io.read_predictions_csv(predictions)
    base_df = predict_means(io.read_training_csv(baseline), gold_df) if baseline is not None else None
    spread_df = io.read_uncertainty(uncertainty) if uncertainty is not None else None
    return pred_df, gold_df, base_df, spread_df


def evaluate(predictions: str | os.PathLike, gold: str | os.PathLike, out: str | os.PathLike,
             baseline: str | os.PathLike | None = None, films: str | os.PathLike | None = None,
             detections: str | os.PathLike | None = None, uncertainty: str | os.PathLike | None = None,
             n_resamples: int = 1000, seed: int = 0, top_fraction: float = 0.1, n_overlays: int = 4,
             n_crops: int = 8) -> dict:
    """Evaluate ``predictions`` against ``gold`` and write ``out/metrics.json``, ``out/<figure>.png`` and
    ``out/report.html``.

    ``uncertainty`` defaults to ``predictions_uncertainty.csv`` beside ``predictions`` when that exists.
    Detection overlays and crop sheets need both ``films`` and ``detections``. Returns the ``metrics.json``
    document: ``summary``, ``official`` (:func:`ra2.evaluation.stats.bootstrap_official`), ``groups`` and
    ``joints`` (:func:`ra2.evaluation.stats.joint_agreement`), ``spread``
    (:func:`ra2.evaluation.stats.spread_vs_error`, when there is a spread), ``figures`` (file names) and
    ``report``. User mistakes raise :class:`Ra2Error` naming the file.
    """
    from ra2.evaluation import figures as F
    from ra2.evaluation import films as V
    from ra2.evaluation import stats as S
    from ra2.evaluation.report import render_report
    from ra2.io import UNCERTAINTY_CSV

    predictions, gold, out = Path(predictions), Path(gold), Path(out)
    if uncertainty is None and (predictions.parent / UNCERTAINTY_CSV).is_file():
        uncertainty = predictions.parent / UNCERTAINTY_CSV
    if (films is None) != (detections is None):
        raise Ra2Error("--films and --detections go together (overlays and crops need the films and their boxes)")
    pred_df, gold_df, base_df, spread_df = _load(predictions, gold, baseline, uncertainty)
    try:
        official = S.bootstrap_official(pred_df, gold_df, base_df, n_resamples=n_resamples, seed=seed)
        joints = S.joint_agreement(pred_df, gold_df)
        spread = (S.spread_vs_error(pred_df, gold_df, spread_df, top_fraction=top_fraction)
                  if spread_df is not None else None)
    except Ra2Error as exc:
        raise Ra2Error(f"evaluating {predictions} against {gold}: {exc}") from None
    det = V.read_detections(detections) if detections is not None else None

    summary = {"predictions": str(predictions), "gold": str(gold), "patients": len(gold_df),
               "baseline": f"training means of {baseline}" if baseline else "none",
               "uncertainty": str(uncertainty) if uncertainty else "none",
               "films": str(films) if films else "none", "detections": str(detections) if detections else "none",
               "bootstrap": f"{n_resamples} resamples of patients, seed {seed}, percentile 95% intervals",
               "ra2": __version__, "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if det is not None:
        summary["box sources"] = ", ".join(f"{k} {v}" for k, v in sorted(det.get("sources", {}).items()))
        lost = list(det.get("missing_films", [])) + list(det.get("failed_films", {}))
        summary["films lost (missing, unreadable, failed detection)"] = ", ".join(lost) or "none"
    run_json = predictions.parent / "run.json"
    if run_json.is_file():
        try:
            summary["prediction run"] = json.loads(run_json.read_text()).get("command", "")
        except json.JSONDecodeError:
            pass

    out.mkdir(parents=True, exist_ok=True)
    figs = {"totals_scatter": F.totals_scatter(pred_df, gold_df, base_df),
            "bland_altman": F.bland_altman(pred_df, gold_df),
            "joint_error_map": F.joint_error_map({c: j["mae"] for c, j in joints["joints"].items()}, V.limb_layouts())}
    if spread is not None:
        figs["spread_vs_error"] = F.spread_vs_error(spread)
    if det is not None:
        figs["detection_overlays"] = F.detection_overlays(V.overlay_films(films, det, n_overlays))
        rows = []
        for name, cols in S.JOINT_GROUPS.items():
            cells = S.worst_cells(pred_df, gold_df, cols, 3 * n_crops)
            rows.append((name, V.worst_crops(films, det, cells)[:n_crops]))
        figs["worst_crops"] = F.crop_sheet(rows, cols=n_crops)
    paths = {name: F.save_png(fig, out / f"{name}.png") for name, fig in figs.items()}

    result = {"summary": summary, "official": official, "groups": joints["groups"], "joints": joints["joints"],
              "figures": [p.name for p in paths.values()], "report": REPORT_FILE}
    if spread is not None:
        result["spread"] = spread
    (out / METRICS_FILE).write_text(json.dumps(result, indent=1) + "\n")
    (out / REPORT_FILE).write_text(render_report(result, paths), encoding="utf-8")
    return result


def print_summary(result: dict, out: Path, echo=print) -> None:
    """A few lines for the terminal: SC1-3 with intervals, the spread check, where the report is."""
    for key in ("sc1", "sc2", "sc3"):
        e = result["official"][key]
        m = e["model"]
        line = f"{key.upper()} " + ("NA" if m["value"] is None else f"{m['value']:.3f}")
        if m["low"] is not None:
            line += f" [{m['low']:.3f}, {m['high']:.3f}]"
        if "baseline" in e and e["baseline"]["value"] is not None:
            line += f"  baseline {e['baseline']['value']:.3f}"
            d = e["difference"]
            if d["low"] is not None:
                line += f"  difference {d['value']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
        echo(line)
    s = result.get("spread")
    if s:
        d = s.get("difference") or {}
        interval = f" [{d['low']:+.3f}, {d['high']:+.3f}]" if d.get("low") is not None else ""
        echo(f"highest-spread {round(100 * s['top_fraction'])}% of joints: MAE {s['mae_flagged']:.3f}; "
             f"the rest {s['mae_rest']:.3f}; difference {s['mae_flagged'] - s['mae_rest']:+.3f}{interval}")
    echo(f"report: {Path(out) / REPORT_FILE}")


__all__ = ["evaluate", "print_summary", "METRICS_FILE", "REPORT_FILE"]
