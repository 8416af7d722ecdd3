"""Segmenter-side bookkeeping shared by segmenter plugins: which objects are tracked, when they are
dropped, and how per-object masks become one instance-id image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tao_ros.types import UNTRACKED, Detections, FrameResult, MaskCrop, Prompt


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


def compose_instances(shape: tuple[int, int], masks: dict[int, MaskCrop | np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-object masks -> ([H, W] uint16 instance image whose pixels hold the object's id, [K] ids
    of the objects present in it, [K, 4] int box of each one's crop, inside which its pixels lie).

    A mask is a ``MaskCrop`` (box + local logits > 0 = object, or bool), or a full-frame [H, W]
    array (cropped first). Each object costs its crop's area, never the frame's. Where objects
    overlap, the pixel goes to the highest logit (the first object, for equal values). Object ids
    are 1..65535 (``tracking.ObjectIds``), so they are the instance values themselves; an id outside
    that range (a third-party segmenter's) cannot be drawn and raises ValueError."""
    image = np.zeros(shape, np.uint16)
    object_ids = np.array(list(masks), dtype=np.int64)
    if not len(object_ids):
        return image, object_ids, np.zeros((0, 4), np.int64)
    if object_ids.min() < 1 or object_ids.max() > MONO16_MAX:
        raise ValueError(f"object ids {object_ids.tolist()} outside 1..{MONO16_MAX} cannot be instance values")
    crops = {}
    for object_id, mask in masks.items():
        if not isinstance(mask, MaskCrop):
            mask = MaskCrop.of_frame(np.asarray(mask).reshape(shape))
        crops[object_id] = mask.clipped(shape)
    boxes = np.array([crop.box for crop in crops.values()], dtype=np.int64).reshape(-1, 4)
    overlaps = _overlapping(boxes)
    # the highest logit so far per pixel, kept only over crops that overlap another: elsewhere
    # an object's pixels are its own
    best = np.full(shape, -np.inf, np.float32) if overlaps.any() else None
    drawn = []
    for k, (object_id, crop) in enumerate(crops.items()):
        x1, y1, x2, y2 = crop.box
        wins = crop.logits > 0
        if overlaps[k]:
            logits = crop.logits.astype(np.float32)
            wins &= logits > best[y1:y2, x1:x2]
            best[y1:y2, x1:x2][wins] = logits[wins]
        image[y1:y2, x1:x2][wins] = object_id
        drawn.append(bool(wins.any()))
    present = []
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        # an object drawn over by others (only where crops overlap) may have no pixel left
        if drawn[k] and (not overlaps[k] or (image[y1:y2, x1:x2] == object_ids[k]).any()):
            present.append(k)
    return image, object_ids[present], boxes[present]


def _overlapping(boxes: np.ndarray) -> np.ndarray:
    """[K, 4] int xyxy boxes -> [K] bool, whether each shares area with another."""
    x1, y1, x2, y2 = (boxes[:, None, i] for i in range(4))
    shared = (np.minimum(x2, x2.T) > np.maximum(x1, x1.T)) & (np.minimum(y2, y2.T) > np.maximum(y1, y1.T))
    np.fill_diagonal(shared, False)
    return shared.any(axis=1)


def instance_pixels(instance_mask: np.ndarray, object_id: int, region=None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of ``object_id``'s pixels in ``instance_mask`` ([H, W] uint16); ``region``: the
    [4] xyxy box of its crop (``compose_instances``), the only part scanned; None: the whole frame."""
    if region is None:
        return np.nonzero(instance_mask == object_id)
    x1, y1, x2, y2 = (int(v) for v in region)
    rows, cols = np.nonzero(instance_mask[y1:y2, x1:x2] == object_id)
    return rows + y1, cols + x1


def instance_regions(result: FrameResult) -> dict[int, np.ndarray | None]:
    """Object id -> the [4] box of its crop (None where the result records none) of each instance."""
    if result.instance_ids is None:
        return {}
    regions = result.instance_regions if result.instance_regions is not None else [None] * len(result.instance_ids)
    return dict(zip(result.instance_ids.tolist(), regions))


def instance_boxes(result: FrameResult) -> list[tuple[int, np.ndarray, float]]:
    """(object id, [4] xyxy box of its pixels, its score) of each object drawn in the frame's
    instance mask; empty without one."""
    if result.instance_mask is None:
        return []
    found, regions = [], instance_regions(result)
    for object_id, score in zip(result.instance_ids.tolist(), result.instance_scores):
        rows, cols = instance_pixels(result.instance_mask, object_id, regions[object_id])
        if len(rows):
            found.append((object_id, np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float64),
                          float(score)))
    return found
