"""Per-track averaging: windowed, unknown until enough samples, bounded in tracks."""

from __future__ import annotations

import numpy as np

from tao_ros.core.tracking import TrackHistory


def test_track_mean_over_window_and_unknown_until_min_samples():
    history = TrackHistory(window=2, min_samples=2)
    first = history.smooth(np.array([1, 2]), np.array([[1.0], [5.0]]))
    assert np.isnan(first).all()
    second = history.smooth(np.array([1, 2]), np.array([[3.0], [np.nan]]))
    assert second[0, 0] == 2.0 and np.isnan(second[1, 0])  # track 2 has one valid sample only
    third = history.smooth(np.array([1]), np.array([[7.0]]))
    assert third[0, 0] == 5.0  # window of 2: (3 + 7) / 2


def test_untracked_objects_are_not_averaged_and_tracks_are_bounded():
    history = TrackHistory(window=3, max_tracks=2)
    out = history.smooth(np.array([-1]), np.array([[4.0]]))
    assert out[0, 0] == 4.0 and not history.values
    for track in range(5):
        history.smooth(np.array([track]), np.array([[1.0]]))
    assert list(history.values) == [3, 4]  # the least recently seen go first
