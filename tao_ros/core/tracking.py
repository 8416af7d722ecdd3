"""Per-track state shared by plugins and the pipeline: bounded histories keyed by track id."""

from __future__ import annotations

from collections import deque

import numpy as np


class TrackHistory:
    """Last ``window`` values of each track id, to average a per-object measurement along its track.
    The average is NaN (unknown) until a track has ``min_samples`` values."""

    def __init__(self, window: int, max_tracks: int = 4096, min_samples: int = 1):
        self.window = window
        self.min_samples = min_samples
        self.max_tracks = max_tracks
        self.values: dict[int, deque] = {}

    def reset(self) -> None:
        self.values.clear()

    def smooth(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Append [N, D] ``values`` (NaN rows skipped) to their tracks; return [N, D] track means."""
        out = values.copy()
        for i, track_id in enumerate(ids):
            if track_id < 0:
                continue
            history = self.values.pop(int(track_id), None) or deque(maxlen=self.window)
            if np.all(np.isfinite(values[i])):
                history.append(values[i])
            self.values[int(track_id)] = history  # re-insert: dict order = least recently seen first
            out[i] = np.mean(history, axis=0) if len(history) >= self.min_samples else np.nan
        while len(self.values) > self.max_tracks:  # bounded memory on endless streams
            self.values.pop(next(iter(self.values)))
        return out
