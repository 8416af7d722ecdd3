"""Turning merged anomalous boxes into segmenter prompts at fixed frame intervals."""

from __future__ import annotations

import numpy as np

from tao_ros.types import UNTRACKED, Detections, Prompt


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
