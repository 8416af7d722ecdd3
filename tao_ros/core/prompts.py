"""Which anomalous objects the segmenter is given: objects held anomalous along their tracks between
the frames that find them so, and their merged boxes turned into prompts at fixed frame intervals."""

from __future__ import annotations

import numpy as np

from tao_ros.types import UNTRACKED, Detections, Prompt

DECORRELATED = float(np.exp(-1.0))
"""Autocorrelation at which an object's score is taken to have forgotten its past (its e-folding lag)."""


def score_memory(scores: np.ndarray, tracks: np.ndarray, frames: np.ndarray, max_lag: int = 300) -> int:
    """Frames after which an object's anomaly score no longer remembers its past, from normal objects.

    ``scores`` [N] held-out scores of normal objects, ``tracks`` [N] the track of each (-1: untracked),
    ``frames`` [N] the frame it is on. Returns the smallest lag (frames) at which the autocorrelation
    of the scores' deviations from their track's mean, each track's in units of its own spread, pooled
    over the tracks, falls to 1/e or below: an object's score is an average of evidence over several
    frames, so a dip of it lasts about this long by chance (what sets one object apart from the others
    for its whole track is no dip, and is left out). In units of each track's own spread, so that one
    track whose score drifts far over its life (a person who stays rare for a while) does not stand
    for all: on Avenue's normal footage one such track made it 41-43 frames fitted on all of it and 6-8
    on its first 300 frames; in units of each track's spread, 3-4 on both.
    ``max_lag`` where it never falls within it, 0 where no track spans two frames with different scores.
    """
    scores, tracks, frames = (np.asarray(a).ravel() for a in (scores, tracks, frames))
    keep = (tracks >= 0) & np.isfinite(scores)
    scores, tracks, frames = scores[keep], tracks[keep].astype(np.int64), frames[keep].astype(np.int64)
    if len(scores) < 2:
        return 0
    _, track_of, sizes = np.unique(tracks, return_inverse=True, return_counts=True)
    deviation = scores - (np.bincount(track_of, scores) / sizes)[track_of]
    spread = np.sqrt(np.bincount(track_of, deviation ** 2) / sizes)[track_of]
    varies = spread > 0  # a track of one object, or of one score all along, shows no dip
    if not varies.any():
        return 0
    scores, tracks, frames = deviation[varies] / spread[varies], tracks[varies], frames[varies]
    # one sorted key per object, track-major: the same track's object ``lag`` frames later is key + lag
    keys = (tracks - tracks.min()) * (frames.max() - frames.min() + max_lag + 1) + (frames - frames.min())
    order = np.argsort(keys, kind="stable")
    keys, scores = keys[order], scores[order]
    for lag in range(1, max_lag + 1):
        at = np.minimum(np.searchsorted(keys, keys + lag), len(keys) - 1)
        pairs = keys[at] == keys + lag
        if not pairs.any():
            return 0 if lag == 1 else lag
        if np.mean(scores[pairs] * scores[at[pairs]]) <= DECORRELATED:
            return lag
    return max_lag


class AnomalyHold:
    """Keeps an object anomalous along its track for ``frames`` frames after the last frame it was
    found anomalous, with that frame's score: a dip of its score below the threshold shorter than the
    score's own memory (``score_memory``) is chance, not the object turning normal, and the segmenter
    keeps following it (as SAM2 follows a prompted object) instead of letting it blink. 0: off."""

    def __init__(self, frames: int):
        self.frames = frames
        self.last: dict[int, tuple[int, float]] = {}  # id -> (last anomalous frame, its score)

    def reset(self) -> None:
        self.last.clear()

    def update(self, frame_index: int, ids: np.ndarray, scores: np.ndarray, anomalous: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """[N] track ids, scores and anomalous flags of a frame's objects -> ([N] scores, [N] anomalous)
        with the held objects' scores and flags set."""
        scores, anomalous = scores.copy(), anomalous.copy()
        if self.frames <= 0:
            return scores, anomalous
        for i, object_id in enumerate(ids.tolist()):
            if object_id == UNTRACKED:
                continue
            if anomalous[i]:
                self.last[object_id] = frame_index, float(scores[i])
            elif object_id in self.last and frame_index - self.last[object_id][0] <= self.frames:
                scores[i], anomalous[i] = self.last[object_id][1], True
        for object_id in [k for k, (seen, _) in self.last.items() if frame_index - seen > self.frames]:
            del self.last[object_id]  # bounded: only objects anomalous within the last ``frames`` frames
        return scores, anomalous


class PromptScheduler:
    """Emits a prompt for every anomalous box every ``interval`` frames, and at once for an object
    that was not anomalous in the previous frame: a new object, or one anomalous again after a gap
    (the segmenter may have dropped it meanwhile), need not wait for the next interval."""

    def __init__(self, interval: int, forget_after: int | None = None):
        self.interval = interval
        self.forget_after = forget_after or 10 * interval
        self.last_seen: dict[int, int] = {}  # id -> last frame it was anomalous
        self.last_frame: int | None = None

    def reset(self) -> None:
        self.last_seen.clear()
        self.last_frame = None

    def update(self, frame_index: int, boxes: Detections, scores: np.ndarray) -> list[Prompt]:
        """Anomalous ``boxes`` of frame ``frame_index`` with [M] ``scores`` -> prompts for this frame."""
        # the first frame of each interval: frames skipped upstream must not skip a round of prompts
        previous, self.last_frame = self.last_frame, frame_index
        periodic = previous is None or frame_index // self.interval != previous // self.interval
        prompts = []
        for i in range(len(boxes)):
            object_id = int(boxes.ids[i])
            turned_anomalous = object_id != UNTRACKED and (
                previous is None or self.last_seen.get(object_id) != previous)
            if periodic or turned_anomalous:
                prompts.append(Prompt(frame_index, tuple(float(v) for v in boxes.xyxy[i]), str(boxes.labels[i]),
                                      float(scores[i]), object_id))
            if object_id != UNTRACKED:
                self.last_seen[object_id] = frame_index
        stale = [k for k, seen in self.last_seen.items() if frame_index - seen > self.forget_after]
        for k in stale:  # bounded: ids gone for long are forgotten (and prompted again if they return)
            del self.last_seen[k]
        return prompts
