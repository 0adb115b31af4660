"""Drawing detections on images, after matterport's ``visualize``, returning images (no windows).

Every function returns an [H, W, 3] uint8 RGB array at the input image's resolution and can save
it as PNG (``save_path=``); nothing calls ``plt.show()``. Drawing uses Pillow; masks are blended
with their instance's colour and outlined, boxes are rectangles (dashed for matterport's
"before refinement" boxes), captions are "class score".
"""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Sequence

import numpy as np


def random_colors(n: int, bright: bool = True,
                  seed: int | np.random.Generator | None = 0) -> list[tuple[float, float, float]]:
    """``n`` visually distinct RGB colours (floats in 0..1): evenly spaced hues, shuffled with
    ``seed`` (a seed or Generator; the same seed gives the same colours)."""
    brightness = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / max(n, 1), 1.0, brightness) for i in range(n)]
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    order = rng.permutation(n)
    return [colors[i] for i in order]


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """An image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] as [H, W, 3] uint8.

    uint8 is kept; float images with maximum <= 1 are taken as 0..1, other numbers are clipped
    to 0..255.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {image.shape}")
    image = image[:, :, :3]
    if image.dtype != np.uint8:
        values = image.astype(np.float64)
        if np.issubdtype(image.dtype, np.floating) and values.size and values.max() <= 1.0:
            values = values * 255.0
        image = np.clip(np.round(values), 0, 255).astype(np.uint8)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def _color255(color: Sequence[float]) -> tuple[int, int, int]:
    values = [float(c) for c in color[:3]]
    if max(values) <= 1.0:
        values = [v * 255.0 for v in values]
    return tuple(int(round(min(max(v, 0.0), 255.0))) for v in values)


def apply_mask(image: np.ndarray, mask: np.ndarray, color: Sequence[float], alpha: float = 0.5) -> np.ndarray:
    """Blend ``color`` into ``image`` where ``mask`` is set: out = (1 - alpha) * image + alpha * color.

    image: [H, W, 3] uint8; mask: [H, W] bool; color: RGB in 0..1 or 0..255. Returns a new uint8
    image.
    """
    out = image.astype(np.float64).copy()
    mask = np.asarray(mask, dtype=bool)
    out[mask] = (1.0 - alpha) * out[mask] + alpha * np.asarray(_color255(color), dtype=np.float64)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a binary mask [H, W]: in the mask, with a 4-neighbour outside it."""
    from scipy.ndimage import binary_erosion

    mask = np.asarray(mask, dtype=bool)
    return mask & ~binary_erosion(mask, border_value=0)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _dashed_rectangle(draw, box, color, width: int = 1, dash: int = 4) -> None:
    y1, x1, y2, x2 = box
    segments = []
    for x in range(x1, x2, 2 * dash):
        segments += [((x, y1), (min(x + dash, x2), y1)), ((x, y2), (min(x + dash, x2), y2))]
    for y in range(y1, y2, 2 * dash):
        segments += [((x1, y), (x1, min(y + dash, y2))), ((x2, y), (x2, min(y + dash, y2)))]
    for start, end in segments:
        draw.line([start, end], fill=color, width=width)


def _caption(draw, xy, text: str, color, font) -> None:
    x, y = xy
    left, top, right, bottom = draw.textbbox((x, y), text, font=font)
    draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=(0, 0, 0))
    draw.text((x, y), text, fill=color, font=font)


def _save(image: np.ndarray, save_path) -> None:
    from PIL import Image

    path = Path(save_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def display_instances(
    image: np.ndarray,
    boxes: np.ndarray,
    masks: np.ndarray | None,
    class_ids: np.ndarray,
    class_names: Sequence[str],
    scores: np.ndarray | None = None,
    title: str = "",
    show_mask: bool = True,
    show_bbox: bool = True,
    colors: Sequence[Sequence[float]] | None = None,
    captions: Sequence[str] | None = None,
    alpha: float = 0.5,
    line_width: int = 1,
    font_size: int = 10,
    save_path: str | Path | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Overlay instances on an image (matterport's ``display_instances``, returning the picture).

    image: [H, W] / [H, W, C] (uint8, or float 0..1 / 0..255); boxes: [N, (y1, x1, y2, x2)] in
    pixels of ``image`` (y2/x2 exclusive); masks: [H, W, N] bool or None; class_ids: [N] indices
    into ``class_names``; scores: [N] or None; colors: one RGB per instance (default
    ``random_colors(N, seed=seed)``); captions: one string per instance (default
    "class score"). ``title`` is written in the top-left corner.
    Returns the overlay [H, W, 3] uint8; also written as PNG to ``save_path`` if given.
    """
    from PIL import Image, ImageDraw

    canvas = to_rgb_uint8(image)
    boxes = np.asarray(boxes).reshape(-1, 4)
    n = boxes.shape[0]
    class_ids = np.asarray(class_ids).reshape(-1)
    if class_ids.shape[0] != n or (masks is not None and np.asarray(masks).shape[-1] != n):
        raise ValueError(
            f"display_instances: {n} boxes, {class_ids.shape[0]} class ids and "
            f"{'no' if masks is None else np.asarray(masks).shape[-1]} masks must agree"
        )
    colors = list(colors) if colors is not None else random_colors(n, seed=seed)
    if show_mask and masks is not None:
        masks = np.asarray(masks, dtype=bool)
        for i in range(n):
            canvas = apply_mask(canvas, masks[:, :, i], colors[i], alpha)
            canvas[mask_outline(masks[:, :, i])] = _color255(colors[i])
    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)
    font = _font(font_size)
    for i in range(n):
        y1, x1, y2, x2 = (int(round(v)) for v in boxes[i])
        if not np.any(boxes[i]):
            continue  # padding row
        color = _color255(colors[i])
        if show_bbox:
            draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=color, width=line_width)
        if captions is not None:
            text = captions[i]
        else:
            name = class_names[int(class_ids[i])] if 0 <= int(class_ids[i]) < len(class_names) else str(class_ids[i])
            text = f"{name} {float(scores[i]):.3f}" if scores is not None else name
        if text:
            _caption(draw, (x1 + 1, y1 + 1), text, (255, 255, 255), font)
    if title:
        _caption(draw, (2, 2), title, (255, 255, 255), font)
    result = np.asarray(pil).copy()
    if save_path is not None:
        _save(result, save_path)
    return result


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray | None = None,
    refined_boxes: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    captions: Sequence[str] | None = None,
    colors: Sequence[Sequence[float]] | None = None,
    title: str = "",
    alpha: float = 0.5,
    font_size: int = 10,
    save_path: str | Path | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Draw boxes and their refinements (matterport's ``draw_boxes``, returning the picture).

    boxes: [N, (y1, x1, y2, x2)] drawn dashed (e.g. proposals or anchors); refined_boxes: [N, 4]
    the same instances after refinement, drawn solid and joined to their box by a line from
    top-left corner to top-left corner; masks: [H, W, N] blended in; captions: [N] strings at the
    refined (or plain) box. All in pixels of ``image``.
    Returns [H, W, 3] uint8; also written as PNG to ``save_path`` if given.
    """
    from PIL import Image, ImageDraw

    canvas = to_rgb_uint8(image)
    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes needs boxes or refined_boxes")
    n = (boxes if boxes is not None else refined_boxes).shape[0]
    if boxes is not None and refined_boxes is not None and refined_boxes.shape[0] != n:
        raise ValueError(f"draw_boxes: {n} boxes but {refined_boxes.shape[0]} refined boxes")
    colors = list(colors) if colors is not None else random_colors(n, seed=seed)
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        for i in range(n):
            canvas = apply_mask(canvas, masks[:, :, i], colors[i], alpha)
    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)
    font = _font(font_size)
    for i in range(n):
        color = _color255(colors[i])
        anchor = None
        if boxes is not None:
            y1, x1, y2, x2 = (int(round(v)) for v in boxes[i])
            _dashed_rectangle(draw, (y1, x1, y2 - 1, x2 - 1), color)
            anchor = (x1, y1)
        if refined_boxes is not None:
            ry1, rx1, ry2, rx2 = (int(round(v)) for v in refined_boxes[i])
            draw.rectangle([rx1, ry1, rx2 - 1, ry2 - 1], outline=color, width=1)
            if anchor is not None:
                draw.line([anchor, (rx1, ry1)], fill=color, width=1)
            anchor = (rx1, ry1)
        if captions is not None and captions[i]:
            _caption(draw, (anchor[0] + 1, anchor[1] + 1), captions[i], (255, 255, 255), font)
    if title:
        _caption(draw, (2, 2), title, (255, 255, 255), font)
    result = np.asarray(pil).copy()
    if save_path is not None:
        _save(result, save_path)
    return result


def display_differences(
    image: np.ndarray,
    gt_box: np.ndarray,
    gt_class_id: np.ndarray,
    gt_mask: np.ndarray,
    pred_box: np.ndarray,
    pred_class_id: np.ndarray,
    pred_score: np.ndarray,
    pred_mask: np.ndarray,
    class_names: Sequence[str],
    title: str = "",
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    show_mask: bool = True,
    show_box: bool = True,
    save_path: str | Path | None = None,
) -> np.ndarray:
    """Ground truth (green) and predictions (red) on one image, as matterport's
    ``display_differences``: each prediction is captioned "score / IoU" with the IoU of its
    matched ground truth (or its best overlap when unmatched).

    Arguments as ``utils.compute_matches`` (boxes in pixels of ``image``; predictions with
    ``pred_score`` < ``score_threshold`` are left out). Returns [H, W, 3] uint8.
    """
    from ra2.mrcnn import utils

    pred_box = np.asarray(pred_box).reshape(-1, 4)
    pred_score = np.asarray(pred_score).reshape(-1)
    keep = pred_score >= score_threshold
    pred_box, pred_score = pred_box[keep], pred_score[keep]
    pred_class_id = np.asarray(pred_class_id).reshape(-1)[keep]
    pred_mask = np.asarray(pred_mask)[..., keep]
    gt_box = np.asarray(gt_box).reshape(-1, 4)
    gt_match, pred_match, overlaps = utils.compute_matches(
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
        iou_threshold=iou_threshold,
    )
    order = np.argsort(-pred_score, kind="stable")  # compute_matches sorted the predictions
    n_gt, n_pred = gt_box.shape[0], pred_box.shape[0]
    colors = [(0.0, 1.0, 0.0)] * n_gt + [(1.0, 0.0, 0.0)] * n_pred
    captions = [""] * n_gt
    for rank in range(n_pred):
        if pred_match[rank] > -1:
            iou = overlaps[rank, int(pred_match[rank])]
        else:
            iou = overlaps[rank].max() if overlaps.shape[1] else 0.0
        captions.append(f"{pred_score[order[rank]]:.2f} / {iou:.2f}")
    boxes = np.concatenate([gt_box, pred_box[order]])
    class_ids = np.concatenate([np.asarray(gt_class_id).reshape(-1), pred_class_id[order]])
    masks = np.concatenate([np.asarray(gt_mask, dtype=bool).reshape(gt_mask.shape[:2] + (n_gt,)),
                            pred_mask[..., order].astype(bool)], axis=-1)
    return display_instances(
        image, boxes, masks, class_ids, class_names, title=title, show_mask=show_mask, show_bbox=show_box,
        colors=colors, captions=captions, alpha=0.3, save_path=save_path,
    )


def plot_precision_recall(ap: float, precisions: np.ndarray, recalls: np.ndarray, save_path: str | Path | None = None,
                          size: tuple[int, int] = (400, 400)) -> np.ndarray:
    """The precision-recall curve from ``utils.compute_ap`` as an [h, w, 3] uint8 image (matplotlib's
    Agg canvas, no window); title "Precision-Recall Curve. AP@50 = ...". Saved as PNG if asked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(size[1] / dpi, size[0] / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    axis.plot(recalls, precisions)
    axis.set_title(f"Precision-Recall Curve. AP@50 = {ap:.3f}")
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_xlim(0, 1.05)
    axis.set_ylim(0, 1.05)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
    if save_path is not None:
        _save(image, save_path)
    return image
