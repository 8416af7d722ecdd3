"""RBDC/TBDC and pixel metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from tao_ros.eval.metrics import (Detection, PixelAccumulator, Region, area_to_fpr_one, frame_score_40_percent,
                                  iou_inclusive, mask_iou, rbdc_tbdc)


def box(x1, y1, x2, y2):
    return np.array([x1, y1, x2, y2], dtype=float)


def regions():
    track1 = [Region("a", f, 1, box(0, 0, 9, 9)) for f in range(4)]
    track2 = [Region("a", f, 2, box(50, 50, 59, 59)) for f in range(2)]
    return track1 + track2


def test_inclusive_iou_uses_the_plus_one_area():
    assert iou_inclusive(box(0, 0, 0, 0), box(0, 0, 0, 0)[None])[0] == 1.0
    # 10x10 vs 10x10 shifted by 5: 50 / 150
    assert iou_inclusive(box(0, 0, 9, 9), box(5, 0, 14, 9)[None])[0] == pytest.approx(50 / 150)


def test_perfect_detections_score_one():
    dets = [Detection(r.clip, r.frame, r.box, 1.0) for r in regions()]
    curve = rbdc_tbdc(dets, regions(), total_frames=4)
    assert curve.rbdc == pytest.approx(1.0) and curve.tbdc == pytest.approx(1.0)


def test_no_detections_score_zero():
    curve = rbdc_tbdc([], regions(), total_frames=4)
    assert curve.rbdc == 0.0 and curve.tbdc == 0.0


def test_duplicates_a_false_positive_and_a_partly_found_track():
    dets = [
        Detection("a", 0, box(0, 0, 9, 9), 0.9),        # covers track 1, frame 0
        Detection("a", 0, box(1, 1, 9, 9), 0.8),        # duplicate: neither TP nor FP
        Detection("a", 2, box(100, 100, 110, 110), 0.7),  # false positive
        Detection("a", 1, box(0, 0, 9, 9), 0.6),        # covers track 1, frame 1
    ]
    curve = rbdc_tbdc(dets, regions(), total_frames=4, operating_threshold=0.75)
    np.testing.assert_allclose(curve.fpr, [0, 0, 0.25, 0.25])
    np.testing.assert_allclose(curve.region_rate, [1 / 6, 1 / 6, 1 / 6, 2 / 6])
    np.testing.assert_allclose(curve.track_rate, [0.5, 0.5, 0.5, 0.5])  # track 2 never found
    # RBDC: 0.25 * 1/6 (up to the FP) + 0.75 * 1/3 (flat to FPR 1) = 7/24
    assert curve.rbdc == pytest.approx(7 / 24)
    assert curve.tbdc == pytest.approx(0.5)
    assert curve.at_threshold == {"threshold": 0.75, "fpr": 0.0, "region_rate": pytest.approx(1 / 6),
                                  "track_rate": 0.5}


def test_track_needs_ten_percent_of_its_regions():
    long_track = [Region("a", f, 1, box(0, 0, 9, 9)) for f in range(20)]
    one = rbdc_tbdc([Detection("a", 0, box(0, 0, 9, 9), 1.0)], long_track, 20)
    two = rbdc_tbdc([Detection("a", f, box(0, 0, 9, 9), 1.0) for f in (0, 1)], long_track, 20)
    assert one.tbdc == 0.0 and two.tbdc == pytest.approx(1.0)


def test_area_is_cut_at_fpr_one():
    # a straight line from (0, 0) to (2, 1): at FPR 1 the rate is 0.5, area 0.25
    assert area_to_fpr_one(np.array([2.0]), np.array([1.0])) == pytest.approx(0.25)


def test_forty_percent_rule():
    truth = np.zeros((4, 5), bool)
    truth[0, :5] = truth[1, :5] = True   # 10 anomalous pixels
    scores = np.zeros((4, 5))
    scores[0, :4] = 5.0                  # 4 of them (40%) at 5.0
    assert frame_score_40_percent(scores, truth) == 5.0
    scores[0, 3] = 0.0                   # only 30% at 5.0: detected only down to 0.0
    assert frame_score_40_percent(scores, truth) == 0.0
    normal = np.zeros((4, 5), bool)
    scores[3, 4] = 7.0
    assert frame_score_40_percent(scores, normal) == 7.0   # a normal frame: its highest pixel


def test_pixel_auroc_and_ap_match_scikit_learn(rng):
    from sklearn.metrics import average_precision_score, roc_auc_score

    accumulator = PixelAccumulator()
    all_scores, all_truth = [], []
    for _ in range(3):
        truth = rng.random((6, 7)) < 0.3
        scores = np.round(truth * 0.5 + rng.random((6, 7)), 4)
        scores[rng.random((6, 7)) < 0.3] = -np.inf
        accumulator.add(scores, truth)
        all_scores.append(np.where(np.isfinite(scores), scores, -10).ravel())
        all_truth.append(truth.ravel())
    y, s = np.concatenate(all_truth), np.concatenate(all_scores)
    assert accumulator.auroc() == pytest.approx(roc_auc_score(y, s))
    assert accumulator.average_precision() == pytest.approx(average_precision_score(y, s))


def test_mask_iou():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert mask_iou(a, b) == pytest.approx(4 / 12)


def test_id_switches_count_changes_of_the_predicted_id_matched_to_a_truth_track():
    from tao_ros.eval.metrics import count_id_switches

    box = np.array([[10, 10, 30, 50]], np.float64)
    far = np.array([[200, 10, 220, 50]], np.float64)
    frames = [
        (np.array([1]), box, np.array([5]), box),          # truth 1 <- predicted 5
        (np.array([1]), box, np.array([5]), box + 1),      # same id: no switch
        (np.array([1]), box, np.array([9]), far),          # no overlap: unmatched, no switch
        (np.array([1]), box, np.array([6]), box),          # now predicted 6: one switch
        (np.array([1, 2]), np.vstack([box, far]), np.array([6, 6]), np.vstack([box, far])),  # track 2's first match
        (np.zeros(0), np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4))),
    ]
    counts = count_id_switches(frames)
    assert (counts.truth, counts.matched, counts.id_switches) == (6, 5, 1)
    assert counts.recall == pytest.approx(5 / 6)


def test_operating_point_merges_flagged_boxes_counts_false_ones_and_each_tracks_flagged_share():
    from tao_ros.eval.metrics import operating_point

    regions = [Region("a", f, 1, np.array([10, 10, 29, 49])) for f in range(4)] + [Region("a", 0, 2, np.array([100, 10, 119, 49]))]
    detections = [
        # frame 0: two overlapping halves of track 1's object, merged into one box on it
        Detection("a", 0, np.array([10, 10, 29, 35]), 5.0), Detection("a", 0, np.array([10, 20, 29, 49]), 4.0),
        # frame 1: on track 1 but below the threshold
        Detection("a", 1, np.array([10, 10, 29, 49]), 1.0),
        # frame 2: on track 1; and far from every region: one false box
        Detection("a", 2, np.array([10, 10, 29, 49]), 3.0), Detection("a", 2, np.array([200, 200, 220, 230]), 9.0),
        # frame 3: two overlapping boxes on nothing: one false box once merged
        Detection("a", 3, np.array([300, 300, 330, 340]), 3.0), Detection("a", 3, np.array([305, 300, 335, 340]), 3.0),
    ]
    point = operating_point(detections, regions, total_frames=10, threshold=2.0, merge_iou=0.3)
    assert point.tracks == {("a", 1): (4, 0.5), ("a", 2): (1, 0.0)}
    assert point.false_boxes_per_frame == pytest.approx(0.2)
    # unmerged, frame 3 holds two false boxes
    assert operating_point(detections, regions, 10, 2.0, merge_iou=1.0).false_boxes_per_frame == pytest.approx(0.3)
    assert operating_point([], regions, 10, 2.0, 0.3).tracks[("a", 1)] == (4, 0.0)
    assert operating_point(detections, regions, 10, 100.0, 0.3).false_boxes_per_frame == 0.0
