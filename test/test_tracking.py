"""Per-track averaging: windowed, unknown until enough samples, bounded in tracks."""

from __future__ import annotations

import numpy as np

from tao_ros.core.geometry import containment_matrix
from tao_ros.core.tracking import BoxTracker, TrackHistory


def test_track_mean_over_window_and_unknown_until_min_samples():
    history = TrackHistory(window=2, min_samples=2)
    first = history.smooth(np.array([1, 2]), np.array([[1.0], [5.0]]))
    assert np.isnan(first).all()
    second = history.smooth(np.array([1, 2]), np.array([[3.0], [np.nan]]))
    assert second[0, 0] == 2.0 and np.isnan(second[1, 0])  # track 2 has one valid sample only
    third = history.smooth(np.array([1]), np.array([[7.0]]))
    assert third[0, 0] == 5.0  # window of 2: (3 + 7) / 2


def test_an_expiring_measurement_becomes_unknown_a_window_after_the_track_stopped_giving_one():
    history = TrackHistory(window=3, expire=True)
    assert history.smooth(np.array([1]), np.array([[4.0, 8.0]]))[0].tolist() == [4.0, 8.0]
    unmeasured = np.full((1, 2), np.nan)
    for _ in range(2):  # the measured frame is still in the window of 3
        assert history.smooth(np.array([1]), unmeasured)[0].tolist() == [4.0, 8.0]
    assert np.isnan(history.smooth(np.array([1]), unmeasured)).all()  # never carried on beyond it
    mixed = history.smooth(np.array([1]), np.array([[1.0, 2.0]]))
    assert mixed[0].tolist() == [1.0, 2.0]  # the mean of the window's measured frames only
    kept = TrackHistory(window=3)  # without expire, the last measurements stay (a size the border cuts)
    kept.smooth(np.array([1]), np.array([[4.0, 8.0]]))
    for _ in range(5):
        assert kept.smooth(np.array([1]), unmeasured)[0].tolist() == [4.0, 8.0]


def test_untracked_objects_are_not_averaged_and_tracks_are_bounded():
    history = TrackHistory(window=3, max_tracks=2)
    out = history.smooth(np.array([-1]), np.array([[4.0]]))
    assert out[0, 0] == 4.0 and not history.values
    for track in range(5):
        history.smooth(np.array([track]), np.array([[1.0]]))
    assert list(history.values) == [3, 4]  # the least recently seen go first


def crossing_boxes(frames_apart: int, frames_merged: int) -> list[np.ndarray]:
    """Boxes of two walkers 20 px wide approaching, seen as one blob for ``frames_merged`` frames
    (the left one's box grown over both), then apart again."""
    sequence = []
    for t in range(frames_apart):
        sequence.append(np.array([[10.0 + t, 50, 30 + t, 100], [100.0 - t, 50, 120 - t, 100]]))
    left, right = 10.0 + frames_apart, 100.0 - frames_apart
    for t in range(frames_merged):
        sequence.append(np.array([[left - 5, 48, right + 25, 102]]))
    for t in range(frames_apart):
        sequence.append(np.array([[left + t, 50, left + 20 + t, 100], [right - t, 50, right + 20 - t, 100]]))
    return sequence


def test_tracks_merged_into_one_blob_take_their_ids_back_when_it_parts():
    ids_after = {}
    for max_hidden in (0, 20):
        tracker = BoxTracker(match_iou=0.1, max_missed=5, max_hidden=max_hidden)
        ids = [tracker.update(boxes) for boxes in crossing_boxes(frames_apart=20, frames_merged=12)]
        first, merged, last = ids[19], ids[20:32], ids[-1]
        assert len(set(first)) == 2 and all(len(m) == 1 and m[0] in first for m in merged)
        ids_after[max_hidden] = (first.tolist(), last.tolist())
    first, last = ids_after[20]
    assert last == first  # both back, each on its own side
    first, last = ids_after[0]
    assert sorted(set(last) - set(first)) != []  # without hidden tracks one comes back as a new object


def test_a_hidden_track_is_kept_at_most_max_hidden_frames():
    tracker = BoxTracker(match_iou=0.1, max_missed=2, max_hidden=6)
    sequence = crossing_boxes(frames_apart=20, frames_merged=10)
    ids = [tracker.update(boxes) for boxes in sequence]
    assert len(set(ids[-1]) - set(ids[19])) == 1  # 10 merged frames > 6: one comes back new


def test_containment_matrix_handles_empty_and_degenerate_boxes():
    inner = np.array([[0, 0, 10, 10], [5, 5, 5, 9]], float)
    outer = np.array([[0, 0, 5, 10], [0, 0, 20, 20]], float)
    np.testing.assert_allclose(containment_matrix(inner, outer), [[0.5, 1.0], [0.0, 0.0]])
    assert containment_matrix(np.zeros((0, 4)), outer).shape == (0, 2)
    assert containment_matrix(inner, np.zeros((0, 4))).shape == (2, 0)
