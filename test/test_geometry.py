"""Box geometry, and the merging rule of the paper (IoU > 0.3 -> enclosing box, repeated)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tao_ros.core.geometry import box_area, covered_share, iou_matrix, mask_to_box, merge_overlapping  # noqa: E402

coordinate = st.integers(0, 60)


@st.composite
def boxes(draw, max_size=12):
    n = draw(st.integers(0, max_size))
    out = []
    for _ in range(n):
        x1, y1 = draw(coordinate), draw(coordinate)
        out.append([x1, y1, x1 + draw(st.integers(1, 30)), y1 + draw(st.integers(1, 30))])
    return np.array(out, dtype=np.float64).reshape(-1, 4)


def test_iou_hand_values():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1 / 7, 1.0, 0.0]])
    assert box_area(np.array([[0, 0, 2, 3]]))[0] == 6
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_merge_two_overlapping_boxes_into_their_enclosing_box():
    merged, group = merge_overlapping(np.array([[0, 0, 10, 10], [2, 2, 12, 12], [50, 50, 60, 60]]))
    np.testing.assert_array_equal(merged, [[0, 0, 12, 12], [50, 50, 60, 60]])
    np.testing.assert_array_equal(group, [0, 0, 1])


def test_merge_keeps_pairs_at_or_below_threshold():
    a = np.array([[0, 0, 10, 10], [7, 0, 17, 10]])  # IoU = 30/170 < 0.3
    merged, _ = merge_overlapping(a)
    assert len(merged) == 2


def test_merge_empty():
    merged, group = merge_overlapping(np.zeros((0, 4)))
    assert merged.shape == (0, 4) and group.shape == (0,)


@settings(max_examples=150, deadline=None)
@given(boxes())
def test_merge_leaves_no_pair_above_threshold(xyxy):
    merged, _ = merge_overlapping(xyxy, 0.3)
    iou = iou_matrix(merged, merged)
    np.fill_diagonal(iou, 0)
    assert not (iou > 0.3).any()


@settings(max_examples=150, deadline=None)
@given(boxes())
def test_every_input_box_lies_inside_its_output_box(xyxy):
    merged, group = merge_overlapping(xyxy, 0.3)
    for box, g in zip(xyxy, group):
        assert np.all(merged[g][:2] <= box[:2]) and np.all(merged[g][2:] >= box[2:])


@settings(max_examples=150, deadline=None)
@given(boxes(), st.randoms(use_true_random=False))
def test_merge_does_not_depend_on_input_order(xyxy, random):
    order = list(range(len(xyxy)))
    random.shuffle(order)
    np.testing.assert_array_equal(merge_overlapping(xyxy)[0], merge_overlapping(xyxy[order])[0])


@settings(max_examples=150, deadline=None)
@given(boxes())
def test_merge_is_idempotent(xyxy):
    once, _ = merge_overlapping(xyxy)
    twice, _ = merge_overlapping(once)
    np.testing.assert_array_equal(once, twice)


def test_mask_to_box_is_exclusive_and_none_when_empty():
    mask = np.zeros((5, 6), bool)
    assert mask_to_box(mask) is None
    mask[1:3, 2:5] = True
    np.testing.assert_array_equal(mask_to_box(mask), [2, 1, 5, 3])


def test_covered_share_is_the_largest_share_one_other_box_covers():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 4, 10], [50, 50, 60, 60]], float)
    # box 0: half under box 1 (box 2 covers 40%); box 1: half under box 0; box 2: wholly inside box 0
    np.testing.assert_allclose(covered_share(boxes), [0.5, 0.5, 1.0, 0.0])
    assert covered_share(np.zeros((0, 4))).shape == (0,)
    assert covered_share(boxes[:1]).tolist() == [0.0]
