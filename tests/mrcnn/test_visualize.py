"""ra2.mrcnn.visualize: overlays are returned as arrays with masks blended and boxes drawn."""

import numpy as np
import pytest
from PIL import Image

from ra2.mrcnn import visualize


def scene():
    image = np.full((60, 80, 3), 100, dtype=np.uint8)
    masks = np.zeros((60, 80, 2), dtype=bool)
    masks[10:30, 10:30, 0] = True
    masks[35:55, 40:75, 1] = True
    boxes = np.array([[10, 10, 30, 30], [35, 40, 55, 75]])
    return image, masks, boxes


def test_random_colors_seeded_and_distinct():
    a = visualize.random_colors(5, seed=1)
    assert a == visualize.random_colors(5, seed=1)
    assert len(set(a)) == 5 and all(0 <= c <= 1 for color in a for c in color)
    assert sorted(a) == sorted(visualize.random_colors(5, seed=2))  # same palette, other order


def test_display_instances_blends_masks_and_draws_boxes(tmp_path):
    image, masks, boxes = scene()
    colors = [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)]
    out = visualize.display_instances(
        image, boxes, masks, np.array([1, 2]), ["BG", "square", "circle"], scores=np.array([0.9, 0.8]),
        colors=colors, save_path=tmp_path / "sub" / "overlay.png",
    )
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    # inside mask 0, away from captions and outlines: 0.5 * 100 + 0.5 * (255, 0, 0)
    np.testing.assert_array_equal(out[25, 20], [178, 50, 50])
    np.testing.assert_array_equal(out[50, 60], [50, 50, 178])
    # mask outline and box edge in the instance colour
    np.testing.assert_array_equal(out[29, 20], [255, 0, 0])
    # background untouched
    np.testing.assert_array_equal(out[5, 70], [100, 100, 100])
    # a caption (white text on black) was written at the box's top-left corner
    corner = out[11:20, 11:30]
    assert (corner.min(axis=-1) > 200).any() and (corner == 0).all(axis=-1).any()
    # the saved PNG is the returned image
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "sub" / "overlay.png")), out)
    # the input is not modified
    assert (image == 100).all()


def test_grayscale_float_input_and_options():
    image, masks, boxes = scene()
    gray = image[:, :, 0].astype(np.float32) / 255.0
    out = visualize.display_instances(
        gray, boxes, masks, [1, 2], ["BG", "a", "b"], show_mask=False, show_bbox=False, captions=["", ""],
    )
    np.testing.assert_array_equal(out, np.full((60, 80, 3), 100, np.uint8))
    with pytest.raises(ValueError, match="agree"):
        visualize.display_instances(image, boxes, masks[:, :, :1], [1, 2], ["BG", "a", "b"])


def test_empty_detections():
    image, _, _ = scene()
    out = visualize.display_instances(image, np.zeros((0, 4)), np.zeros((60, 80, 0), bool), [], ["BG"])
    np.testing.assert_array_equal(out, image)


def test_draw_boxes(tmp_path):
    image, masks, boxes = scene()
    refined = boxes + np.array([2, 2, 2, 2])
    out = visualize.draw_boxes(image, boxes, refined, colors=[(0, 1, 0), (0, 1, 0)], save_path=tmp_path / "b.png")
    assert out.shape == (60, 80, 3)
    # refined box edges solid green; original box top edge dashed (some green, some background)
    assert (out[12, 14:30] == [0, 255, 0]).all()
    top = out[10, 10:30]
    green = (top == [0, 255, 0]).all(axis=-1)
    assert green.any() and not green.all()
    assert (tmp_path / "b.png").is_file()


def test_display_differences_colours_truth_and_predictions():
    image, masks, boxes = scene()
    gt_ids = np.array([1, 2])
    # prediction 0 matches ground truth 0 exactly; prediction 1 is a false positive elsewhere
    pred_masks = np.zeros((60, 80, 2), dtype=bool)
    pred_masks[10:30, 10:30, 0] = True
    pred_masks[35:58, 0:30, 1] = True
    pred_boxes = np.array([[10, 10, 30, 30], [35, 0, 58, 30]])
    out = visualize.display_differences(
        image, boxes, gt_ids, masks, pred_boxes, np.array([1, 2]), np.array([0.9, 0.8]), pred_masks,
        ["BG", "a", "b"],
    )
    assert out.shape == (60, 80, 3)
    # only ground truth 1 covers (50, 60): green tint 0.7 * 100 + 0.3 * 255 = 146.5 (rounds to even)
    np.testing.assert_array_equal(out[50, 60], [70, 146, 70])
    # only the false positive covers (55, 20) (below its caption): red tint
    np.testing.assert_array_equal(out[55, 20], [146, 70, 70])


def test_plot_precision_recall(tmp_path):
    out = visualize.plot_precision_recall(0.75, np.array([0, 1, 0.5, 0]), np.array([0, 0.5, 1, 1]),
                                          save_path=tmp_path / "pr.png")
    assert out.shape == (400, 400, 3) and out.dtype == np.uint8
    assert (out < 128).any() and (out > 250).any()  # a drawn curve/axes on a white figure
    assert (tmp_path / "pr.png").is_file()
