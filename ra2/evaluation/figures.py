"""The evaluation figures: each function returns a :class:`matplotlib.figure.Figure` (no pyplot, no screen;
the caller saves it, e.g. :func:`save_png`).

Inputs are prepared tables and arrays (see :mod:`ra2.evaluation.stats` and :mod:`ra2.evaluation.films`);
nothing here reads files. Boxes are ``(y1, x1, y2, x2)`` in pixels of the film they are drawn on; points
are ``(y, x)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ra2 import contract

TOTALS = (contract.OVERALL_TOTAL, contract.OVERALL_EROSION, contract.OVERALL_NARROWING)
SOURCE_COLOURS = {"detected": "#33d17a", "reassigned": "#f6d32d", "layout": "#ff7800", "layout_default": "#e01b24"}
"""Box colour by box source (:class:`ra2.detection.detect.FilmDetection` sources); others are drawn magenta."""


def save_png(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save ``fig`` as a PNG (Agg renderer) and return the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=dpi)
    return path


def _totals(pred: pd.DataFrame, gold: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(gold [P], prediction [P]) of one column, predictions matched to the gold patients by ``Patient_ID``."""
    p = pred.set_index(pred[contract.PATIENT_COLUMN].astype(str))[column]
    ids = gold[contract.PATIENT_COLUMN].astype(str)
    return gold[column].to_numpy(dtype=float), p.loc[ids].to_numpy(dtype=float)


def totals_scatter(pred: pd.DataFrame, gold: pd.DataFrame, baseline: pd.DataFrame | None = None) -> Figure:
    """Predicted against true ``Overall_Tol``, ``Overall_erosion``, ``Overall_narrowing`` (one panel each, one
    dot per patient) with the identity line; the baseline's predictions as grey crosses when given."""
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    for ax, column in zip(fig.subplots(1, 3), TOTALS):
        g, p = _totals(pred, gold, column)
        top = max(1.0, float(np.max(g)), float(np.max(p))) * 1.05
        ax.plot([0, top], [0, top], color="0.4", lw=1, ls="--", label="identity")
        if baseline is not None:
            ax.scatter(g, _totals(baseline, gold, column)[1], marker="x", color="0.6", s=18, label="baseline")
        ax.scatter(g, p, s=22, color="#1c71d8", alpha=0.8, label="model")
        ax.set(xlim=(0, top), ylim=(0, top), xlabel=f"true {column}", ylabel=f"predicted {column}", aspect="equal")
        ax.set_title(column)
        ax.legend(loc="upper left", fontsize=8)
    return fig


def bland_altman(pred: pd.DataFrame, gold: pd.DataFrame) -> Figure:
    """Bland-Altman plots of the three totals: difference (predicted - true) against their mean, one dot per
    patient, with the mean difference and the limits of agreement (mean +- 1.96 SD)."""
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    for ax, column in zip(fig.subplots(1, 3), TOTALS):
        g, p = _totals(pred, gold, column)
        mean, diff = (g + p) / 2, p - g
        bias, sd = float(np.mean(diff)), float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0
        ax.scatter(mean, diff, s=22, color="#1c71d8", alpha=0.8)
        ax.axhline(bias, color="#c01c28", lw=1.2, label=f"mean {bias:+.2f}")
        for sign in (-1, 1):
            ax.axhline(bias + sign * 1.96 * sd, color="#c01c28", lw=1, ls="--")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set(xlabel=f"mean of predicted and true {column}", ylabel="predicted - true")
        ax.set_title(f"{column}: limits {bias - 1.96 * sd:+.1f} / {bias + 1.96 * sd:+.1f}")
        ax.legend(loc="upper left", fontsize=8)
    return fig


def joint_error_map(error: Mapping[str, float], layouts: Mapping[str, tuple[np.ndarray, Mapping[str, tuple]]],
                    label: str = "MAE") -> Figure:
    """Per-joint error on hand and foot schematics: rows erosion and narrowing, one panel per limb.

    Args:
        error: joint column -> error (e.g. MAE); columns missing are not drawn.
        layouts: limb -> (schematic image ``[H, W]`` in [0, 1], site id -> centre ``(y, x)`` in its pixels)
            (:func:`ra2.evaluation.films.limb_layouts`).
        label: the colour bar's label.

    Each row has one colour scale from 0 to the row's largest error; every joint is a disc with its value.
    """
    fig = Figure(figsize=(14, 8), layout="constrained")
    axes = fig.subplots(2, len(contract.LIMBS))
    for r, kind in enumerate((contract.EROSION, contract.NARROWING)):
        values = [error[s.column] for s in contract.SCORES if s.kind == kind and s.column in error]
        norm = Normalize(0.0, max([1e-9, *values]))
        mappable = None
        for c, limb in enumerate(contract.LIMBS):
            ax = axes[r, c]
            image, centres = layouts[limb]
            ax.imshow(image, cmap="gray", vmin=0, vmax=1, alpha=0.45)
            pts = [(centres[s.site.id], error[s.column]) for s in contract.SCORES
                   if s.kind == kind and s.limb == limb and s.column in error and s.site.id in centres]
            if pts:
                yx = np.array([p[0] for p in pts], dtype=float)
                v = np.array([p[1] for p in pts])
                size = 0.045 * max(image.shape)
                mappable = ax.scatter(yx[:, 1], yx[:, 0], c=v, cmap="magma_r", norm=norm, s=size ** 2 / 4,
                                      edgecolors="black", linewidths=0.6)
                for (y, x), val in zip(yx, v):
                    ax.text(x, y, f"{val:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if norm(val) > 0.55 else "black")
            ax.set_title(f"{contract.LIMB_NAMES[limb]}: {kind}", fontsize=10)
            ax.set_axis_off()
        if mappable is not None:
            fig.colorbar(mappable, ax=list(axes[r]), shrink=0.8, label=f"{kind} {label}")
    return fig


def detection_overlays(films: Sequence[tuple[str, np.ndarray, Mapping[str, Sequence[float]], Mapping[str, str]]],
                       cols: int = 4) -> Figure:
    """Films with their site boxes: ``films`` is a list of ``(title, film [H, W], {site id: box},
    {site id: source})``; each box is outlined in its source's colour (:data:`SOURCE_COLOURS`) and labelled
    with its site name."""
    n = max(1, len(films))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.6 * cols, 4.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, (title, film, boxes, sources) in zip(axes, films):
        ax.imshow(film, cmap="gray")
        for site_id, (y1, x1, y2, x2) in boxes.items():
            colour = SOURCE_COLOURS.get(sources.get(site_id, ""), "#e01b24" if not sources else "#c061cb")
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1))
            ax.text(x1, y1, site_id.split("_", 1)[1].replace("__", " "), fontsize=5, color=colour, va="bottom")
        used = sorted({sources.get(s, "") for s in boxes} - {""})
        ax.set_title(f"{title}\nsources: {', '.join(used) or 'not recorded'}", fontsize=8)
    return fig


def crop_sheet(groups: Sequence[tuple[str, Sequence[tuple[np.ndarray, str]]]], cols: int = 8) -> Figure:
    """A contact sheet of crops: one row per joint group, ``cols`` crops per row in the given order (worst
    error first). ``groups``: ``[(group name, [(crop [s, s], caption), ...]), ...]``."""
    rows = max(1, len(groups))
    fig = Figure(figsize=(1.5 * cols + 1.2, 1.9 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for r, (name, crops) in enumerate(groups):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(crops):
                crop, caption = crops[c]
                ax.imshow(crop, cmap="gray")
                ax.set_xlabel(caption, fontsize=6)
            else:
                ax.set_axis_off()
            if c == 0:
                ax.set_ylabel(name.replace("_", "\n"), fontsize=8)
    return fig


def spread_vs_error(result: Mapping) -> Figure:
    """How the ensemble spread predicts the error: MAE per spread decile (left) and the MAE of the flagged top
    fraction against the rest, over all joints and ranked within each regressor data set (right).
    ``result``: :func:`ra2.evaluation.stats.spread_vs_error`."""
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(2.2, 2))
    bins = result["bins"]
    x = np.arange(len(bins))
    left.bar(x, [b["mae"] for b in bins], color="#1c71d8")
    left.set_xticks(x, [f"{b['mean_spread']:.3f}" for b in bins], rotation=45, fontsize=7)
    left.set(xlabel="mean spread of the decile (score units)", ylabel="MAE (score units)",
             title=f"MAE by spread decile ({result['n']} joints; Spearman spread vs |error| "
                   f"{result['spearman_spread_abs_error'] or float('nan'):.2f})")
    pct = round(100 * result["top_fraction"])
    groups = [("all joints", result)] + [(d.replace("_", " "), v) for d, v in result.get("by_dataset", {}).items()]
    x = np.arange(len(groups))
    flagged = [g["mae_flagged"] for _, g in groups]
    rest = [g["mae_rest"] or 0.0 for _, g in groups]
    right.bar(x - 0.2, flagged, width=0.4, color="#c01c28", label=f"top {pct}% spread")
    right.bar(x + 0.2, rest, width=0.4, color="0.6", label="the rest")
    for i, (f, r) in enumerate(zip(flagged, rest)):
        right.text(i - 0.2, f, f"{f:.2f}", ha="center", va="bottom", fontsize=7)
        right.text(i + 0.2, r, f"{r:.2f}", ha="center", va="bottom", fontsize=7)
    right.set_xticks(x, [f"{name}\n({g['n']})" for name, g in groups], fontsize=7)
    right.set(ylabel="MAE (score units)", title="flagged vs rest (ranked within each set)")
    right.legend(fontsize=7)
    return fig
