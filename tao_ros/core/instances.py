"""Segmenter-side bookkeeping shared by segmenter plugins: which objects are tracked, when they are
dropped, and how per-object masks become one instance-id image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tao_ros.core.geometry import mask_to_box
from tao_ros.types import UNTRACKED, Detections, FrameResult, Prompt


@dataclass
class TrackedObject:
    """An object the segmenter follows."""

    object_id: int
    box: np.ndarray  # [4] xyxy, last known
    label: str
    score: float
    prompted_at: int
    last_anomalous: int  # last frame the object was among the anomalous detections
    empty_frames: int = 0  # consecutive frames with an empty mask


class ObjectRegistry:
    """Tracked objects keyed by id, bounded by ``max_objects``.

    An object is added or re-prompted by a prompt, kept while it stays anomalous, and dropped
    once it has not been anomalous for ``patience`` frames or its mask stayed empty for
    ``patience`` frames (no empty ghosts).
    """

    def __init__(self, patience: int, max_objects: int):
        self.patience = patience
        self.max_objects = max_objects
        self.objects: dict[int, TrackedObject] = {}
        self._next_untracked = -2  # ids for prompts whose detector gave none: -2, -3, ...

    def reset(self) -> None:
        self.objects.clear()

    def apply_prompts(self, frame_index: int, prompts: list[Prompt]) -> list[TrackedObject]:
        """Add new objects / refresh known ones from ``prompts``; returns the prompted objects.
        When full, the lowest-scoring objects make room."""
        prompted = []
        for prompt in prompts:
            object_id = prompt.object_id
            if object_id == UNTRACKED:
                object_id, self._next_untracked = self._next_untracked, self._next_untracked - 1
            obj = self.objects.get(object_id)
            if obj is None:
                obj = TrackedObject(object_id, np.array(prompt.box, dtype=np.float64), prompt.label, prompt.score,
                                    frame_index, frame_index)
                self.objects[object_id] = obj
            obj.box = np.array(prompt.box, dtype=np.float64)
            obj.score, obj.label, obj.prompted_at, obj.last_anomalous = prompt.score, prompt.label, frame_index, frame_index
            prompted.append(obj)
        while len(self.objects) > self.max_objects:
            self.remove(self.lowest_priority())
        return prompted

    def lowest_priority(self) -> int:
        """Id of the object to drop first: lowest score, then oldest prompt."""
        return min(self.objects.values(), key=lambda o: (o.score, o.prompted_at)).object_id

    def observe(self, frame_index: int, detections: Detections) -> None:
        """Note which tracked objects are among this frame's anomalous ``detections`` (by id)."""
        for i, object_id in enumerate(detections.ids.tolist()):
            obj = self.objects.get(object_id)
            if obj is not None:
                obj.last_anomalous = frame_index
                obj.box = detections.xyxy[i].copy()

    def update_masks(self, frame_index: int, non_empty: dict[int, bool]) -> list[int]:
        """Count empty masks; drop objects empty or not anomalous for ``patience`` frames. Returns dropped ids."""
        for object_id, has_pixels in non_empty.items():
            if object_id in self.objects:
                obj = self.objects[object_id]
                obj.empty_frames = 0 if has_pixels else obj.empty_frames + 1
        dropped = [o.object_id for o in self.objects.values()
                   if o.empty_frames >= self.patience or frame_index - o.last_anomalous >= self.patience]
        for object_id in dropped:
            self.remove(object_id)
        return dropped

    def remove(self, object_id: int) -> None:
        self.objects.pop(object_id, None)


MONO16_MAX = 65535


def compose_instances(shape: tuple[int, int], logits: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-object [H, W] mask logits (> 0 = object) or bool masks -> ([H, W] uint16 instance image
    whose pixels hold the object's id, [K] ids of the objects present in it). Where objects overlap,
    the pixel goes to the highest logit (the first object, for equal values). Object ids are
    1..65535 (``tracking.ObjectIds``), so they are the instance values themselves; an id outside
    that range (a third-party segmenter's) cannot be drawn and raises ValueError."""
    image = np.zeros(shape, np.uint16)
    object_ids = np.array(list(logits), dtype=np.int64)
    if not len(object_ids):
        return image, object_ids
    if object_ids.min() < 1 or object_ids.max() > MONO16_MAX:
        raise ValueError(f"object ids {object_ids.tolist()} outside 1..{MONO16_MAX} cannot be instance values")
    stack = np.stack([np.asarray(logits[o], dtype=np.float32).reshape(shape) for o in logits])
    best = stack.argmax(axis=0)
    foreground = stack.max(axis=0) > 0
    image[foreground] = object_ids[best[foreground]].astype(np.uint16)
    return image, object_ids[np.isin(object_ids, np.unique(image[foreground]))]


def instance_boxes(result: FrameResult) -> list[tuple[int, np.ndarray, float]]:
    """(object id, [4] xyxy box of its pixels, its score) of each object drawn in the frame's
    instance mask; empty without one."""
    if result.instance_mask is None:
        return []
    found = []
    for object_id, score in zip(result.instance_ids.tolist(), result.instance_scores):
        box = mask_to_box(result.instance_mask == object_id)
        if box is not None:
            found.append((object_id, box, float(score)))
    return found
