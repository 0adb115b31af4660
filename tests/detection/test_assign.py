"""One box per class: primaries, the thesis's reassignment of duplicates, and the layout fallback."""

import numpy as np
import pytest

from ra2.detection.assign import SOURCE_DETECTED, SOURCE_LAYOUT, SOURCE_REASSIGNED, Layout, assign_instances

# Five classes on a slanted row, 20 px boxes: class c centred at (100 + 5c, 40c).
TRUE_CENTRES = {c: (100.0 + 5 * c, 40.0 * c) for c in range(1, 6)}


def _box(centre, half=10.0):
    y, x = centre
    return (y - half, x - half, y + half, x + half)


def _example(shift=(0.0, 0.0), scale=1.0):
    return {c: _box((shift[0] + scale * y, shift[1] + scale * x), 10.0 * scale)
            for c, (y, x) in TRUE_CENTRES.items()}


@pytest.fixture(scope="module")
def layout():
    return Layout.fit([_example(), _example((30, -7), 2.0), _example((-5, 60), 0.5)], num_classes=5)


def test_layout_is_invariant_to_shift_and_scale(layout):
    found = {c: b for c, b in _example((12, 3), 1.5).items() if c in (1, 2, 5)}
    expected = layout.expected_boxes(found)
    truth = np.array([_example((12, 3), 1.5)[c] for c in range(1, 6)])
    np.testing.assert_allclose(expected, truth, atol=1e-6)


def test_all_present_keeps_the_best_instance_per_class(layout):
    boxes = [_example()[c] for c in range(1, 6)] + [_box((300, 300))]
    ids = [1, 2, 3, 4, 5, 2]
    scores = [0.9, 0.5, 0.9, 0.9, 0.9, 0.8]  # the second class-2 instance scores higher
    out = assign_instances(np.array(boxes), np.array(ids), np.array(scores), 5, layout)
    assert out[2].box == _box((300, 300)) and out[2].score == 0.8
    assert all(b.source == SOURCE_DETECTED for b in out.values())


def test_misclassified_duplicate_is_reassigned_to_the_missing_class(layout):
    truth = _example()
    # Class 3 was detected as a weaker class 2: two class-2 instances, no class 3.
    boxes = [truth[1], truth[2], truth[3], truth[4], truth[5]]
    ids = [1, 2, 2, 4, 5]
    scores = [0.9, 0.95, 0.6, 0.9, 0.9]
    out = assign_instances(np.array(boxes), np.array(ids), np.array(scores), 5, layout)
    assert out[3].source == SOURCE_REASSIGNED and out[3].box == truth[3] and out[3].score == 0.6
    assert out[2].box == truth[2]


def test_overlapping_duplicate_is_not_reassigned(layout):
    truth = _example()
    shifted = tuple(v + 2 for v in truth[2])  # IoU with truth[2] = 0.67: the same joint twice
    boxes = [truth[1], truth[2], shifted, truth[4], truth[5]]
    out = assign_instances(np.array(boxes), np.array([1, 2, 2, 4, 5]), np.array([.9, .9, .8, .9, .9]),
                           5, layout)
    assert out[3].source == SOURCE_LAYOUT
    np.testing.assert_allclose(out[3].box, truth[3], atol=1e-6)


def test_two_missing_classes_are_matched_by_position(layout):
    truth = _example()
    # Classes 2 and 4 missing; their joints came out as extra class-1 and class-5 instances, listed in
    # the "wrong" order, so only position can tell which is which.
    boxes = [truth[1], truth[3], truth[5], truth[4], truth[2]]
    ids = [1, 3, 5, 1, 5]
    scores = [0.9, 0.9, 0.9, 0.4, 0.3]
    out = assign_instances(np.array(boxes), np.array(ids), np.array(scores), 5, layout)
    assert out[2].box == truth[2] and out[4].box == truth[4]
    assert {out[2].source, out[4].source} == {SOURCE_REASSIGNED}


def test_far_candidate_is_not_taken_and_layout_box_is_clipped(layout):
    truth = _example()
    boxes = [truth[1], truth[2], truth[3], truth[4], _box((900, 900))]
    ids = [1, 2, 3, 4, 4]
    out = assign_instances(np.array(boxes), np.array(ids), np.array([.9] * 5), 5, layout,
                           image_shape=(400, 205))
    assert out[5].source == SOURCE_LAYOUT
    y1, x1, y2, x2 = out[5].box
    assert (y1, y2) == pytest.approx((115.0, 135.0)) and x1 == pytest.approx(190.0) and x2 == 205.0


def test_without_layout_or_enough_primaries_missing_classes_stay_missing(layout):
    truth = _example()
    out = assign_instances(np.array([truth[1]]), np.array([1]), np.array([0.9]), 5, layout)
    assert list(out) == [1]
    out = assign_instances(np.array([truth[1], truth[2]]), np.array([1, 2]), np.array([.9, .9]), 5)
    assert list(out) == [1, 2]
    assert assign_instances(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 5, layout) == {}


def test_layout_round_trip(tmp_path, layout):
    layout.save(tmp_path / "layout.json")
    again = Layout.load(tmp_path / "layout.json")
    np.testing.assert_allclose(again.centres, layout.centres)
    np.testing.assert_allclose(again.sizes, layout.sizes)


def test_fit_names_classes_never_seen():
    with pytest.raises(ValueError, match=r"classes \[3\]"):
        Layout.fit([{1: _box((0, 0)), 2: _box((0, 50))}], num_classes=3)
