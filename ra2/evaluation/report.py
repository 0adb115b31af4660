"""``report.html``: one self-contained page (figures embedded as base64 PNG, inline CSS, no script, no network)
from the results of :func:`ra2.evaluation.evaluate.evaluate`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path

from ra2 import metrics as M

METRIC_TITLES = {"sc1": "SC1: Overall_Tol, weighted |log2 error|", "sc2": "SC2: narrowing, weighted log2 RMSE",
                 "sc3": "SC3: erosion, weighted log2 RMSE", "overall_narrowing": "Overall_narrowing, |log2 error|",
                 "overall_erosion": "Overall_erosion, |log2 error|", "sc2_hand": "SC2 hands", "sc2_foot": "SC2 feet",
                 "sc3_hand": "SC3 hands", "sc3_foot": "SC3 feet"}
FIGURE_TITLES = {"totals_scatter": "Predicted against true totals (one dot per patient)",
                 "bland_altman": "Bland-Altman: agreement of the totals",
                 "joint_error_map": "Mean absolute error of every joint, drawn where the joint is",
                 "spread_vs_error": "Does the ensemble spread predict the error?",
                 "detection_overlays": "Detected joint boxes on a few films (colour: box source)",
                 "worst_crops": "Crops of the worst-scored joints per group, worst first"}

CSS = """
body { font-family: sans-serif; margin: 24px auto; max-width: 1180px; color: #222; background: #fff; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { border-bottom: 2px solid #1c71d8; padding-bottom: 3px; }
table { border-collapse: collapse; margin: 8px 0 18px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #e8eef8; } td:first-child, th:first-child { text-align: left; }
.better { color: #26a269; font-weight: bold; } .worse { color: #c01c28; font-weight: bold; }
.note { color: #555; font-size: 13px; } figure { margin: 10px 0 24px; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-weight: bold; margin-bottom: 4px; } .banner { background: #f6f5f4; padding: 8px 12px; }
"""


def _f(v, digits: int = 3) -> str:
    return "NA" if v is None else f"{v:.{digits}f}"


def _ci(entry: Mapping | None) -> str:
    if not entry:
        return ""
    if entry.get("low") is None:
        return _f(entry.get("value"))
    return f"{_f(entry['value'])} <span class='note'>[{_f(entry['low'])}, {_f(entry['high'])}]</span>"


def _diff(entry: Mapping | None) -> str:
    if not entry or entry.get("value") is None:
        return ""
    cls = ""
    if entry.get("high") is not None and entry["high"] < 0:
        cls = "better"
    elif entry.get("low") is not None and entry["low"] > 0:
        cls = "worse"
    return f"<span class='{cls}'>{_f(entry['value'], 3)}</span> <span class='note'>[{_f(entry.get('low'))}, " \
           f"{_f(entry.get('high'))}]</span>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def render_report(result: Mapping, figures: Mapping[str, Path]) -> str:
    """The HTML text of the report.

    Args:
        result: the ``metrics.json`` document of :func:`ra2.evaluation.evaluate.evaluate` (``summary``,
            ``official``, ``groups``, ``joints``, optional ``spread``).
        figures: figure name (keys of :data:`FIGURE_TITLES`) -> PNG file; embedded in that order.
    """
    s = result["summary"]
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>ra2 evaluation report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>ra2 evaluation report</h1>",
             "<p class='note'>Lower is better for every official metric. Intervals are percentile bootstrap 95% "
             "intervals over patients; the difference is model minus baseline on the same resampled patients "
             "(green: the whole interval below 0, the model better). Phantom data say nothing about real films."
             "</p>",
             "<h2>Run summary</h2>",
             _table(["item", "value"], [[esc(str(k)), esc(str(v))] for k, v in s.items()])]

    has_base = any("baseline" in v for v in result["official"].values())
    header = ["metric", "model [95% CI]"] + (["baseline: training means [95% CI]", "model - baseline [95% CI]"]
                                              if has_base else [])
    rows = []
    for key in M.SCORE_KEYS:
        e = result["official"][key]
        row = [METRIC_TITLES[key], _ci(e["model"])]
        if has_base:
            row += [_ci(e.get("baseline")), _diff(e.get("difference"))]
        rows.append(row)
    parts += ["<h2>Official metrics</h2>", _table(header, rows)]

    g_rows = [[esc(name), str(g["n"]), _f(g["mae"]), _f(g["rmse_log2"]), _f(g["spearman"]), _f(g["kappa"])]
              for name, g in result["groups"].items()]
    parts += ["<h2>Joint groups</h2>",
              "<p class='note'>Every (patient, joint) cell of the group once. MAE in score units; RMSE of "
              "log2(x+1); Spearman's rho; quadratically weighted kappa of the rounded scores.</p>",
              _table(["group", "cells", "MAE", "RMSE log2", "Spearman", "kappa"], g_rows)]

    spread = result.get("spread")
    if spread:
        pct = round(100 * spread["top_fraction"])
        verdict = "larger" if spread["mae_rest"] is not None and spread["mae_flagged"] > spread["mae_rest"] else \
            "not larger"
        parts += ["<h2>Joints flagged for review</h2>",
                  f"<p>The {spread['n_flagged_cells']} joints ({pct}%) whose ensemble members and test-time views "
                  f"disagreed most have a mean absolute error of <b>{_f(spread['mae_flagged'])}</b>, the other "
                  f"{spread['n'] - spread['n_flagged_cells']} <b>{_f(spread['mae_rest'])}</b>: {verdict} "
                  f"(difference {_ci(spread.get('difference'))}, 95% bootstrap interval over patients). "
                  f"Spearman correlation of spread and absolute error: "
                  f"{_f(spread['spearman_spread_abs_error'], 2)}. Ranked within each regressor data set (the score "
                  f"ranges differ):</p>",
                  _table(["data set", "joints", f"MAE top {pct}% spread", "MAE rest", "Spearman"],
                         [[esc(d), str(v["n"]), _f(v["mae_flagged"]), _f(v["mae_rest"]),
                           _f(v["spearman_spread_abs_error"], 2)] for d, v in spread.get("by_dataset", {}).items()]),
                  "<p>The highest-spread joints, for a reader's review:</p>",
                  _table(["patient", "joint", "prediction", "true", "spread", "|error|"],
                         [[esc(c["patient"]), esc(c["column"]), _f(c["prediction"], 2), _f(c["gold"], 0),
                           _f(c["spread"]), _f(c["abs_error"], 2)] for c in spread["flagged"]])]
    else:
        parts += ["<h2>Joints flagged for review</h2>",
                  "<p class='note'>No predictions_uncertainty.csv was given: no spread to flag joints by.</p>"]

    parts.append("<h2>Figures</h2>")
    for name, path in figures.items():
        parts.append(f"<figure><figcaption>{esc(FIGURE_TITLES.get(name, name))}</figcaption>"
                     f"<img alt='{esc(name)}' src='{_png(path)}'></figure>")

    j_rows = [[esc(c), esc(j["group"]), _f(j["mae"]), _f(j["rmse_log2"]), _f(j["spearman"]), _f(j["kappa"])]
              for c, j in sorted(result["joints"].items(), key=lambda kv: -kv[1]["mae"])]
    parts += ["<h2>Every joint</h2>", "<details><summary>86 joints, largest MAE first</summary>",
              _table(["joint", "group", "MAE", "RMSE log2", "Spearman", "kappa"], j_rows), "</details>",
              "<p class='note'>How to read this report: docs/report.md of the ra2 repository. Confusion matrices "
              "of every group and joint are in metrics.json.</p></body></html>"]
    return "\n".join(parts)
