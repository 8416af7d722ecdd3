"""Data types passed between pipeline stages and plugins.

All per-object data is columnar: one numpy array per attribute, first axis = object.
Boxes are ``xyxy`` pixel corners with ``x2, y2`` exclusive (a box ``[0, 0, 2, 2]`` covers 4 pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tao_ros.errors import InputError

UNTRACKED = -1
"""Value of ``Detections.ids`` for an object that no tracker has named."""


def _column(name: str, values, dtype, n: int) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.shape != (n,):
        raise InputError(f"Detections.{name} must have shape ({n},), got {array.shape}")
    return array


@dataclass(frozen=True)
class Detections:
    """Objects found in one frame.

    Attributes:
        xyxy: [N, 4] float64 boxes, pixel corners, x2/y2 exclusive, x1 <= x2, y1 <= y2.
        confidence: [N] float64 detector confidence in [0, 1].
        labels: [N] str class label ("object" where the detector has no classes).
        ids: [N] int64 track id, ``UNTRACKED`` (-1) where none.
        keypoints: optional [N, K, 3] float64 (x, y, visibility) per object.
    """

    xyxy: np.ndarray
    confidence: np.ndarray = None
    labels: np.ndarray = None
    ids: np.ndarray = None
    keypoints: np.ndarray | None = None

    def __post_init__(self):
        xyxy = np.asarray(self.xyxy, dtype=np.float64)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise InputError(f"Detections.xyxy must have shape [N, 4], got {xyxy.shape}")
        if not np.all(np.isfinite(xyxy)):
            raise InputError("Detections.xyxy holds NaN or inf: drop or fix those boxes first")
        if np.any(xyxy[:, 2] < xyxy[:, 0]) or np.any(xyxy[:, 3] < xyxy[:, 1]):
            raise InputError("Detections.xyxy needs x1 <= x2 and y1 <= y2 for every box")
        n = len(xyxy)
        conf = np.ones(n) if self.confidence is None else self.confidence
        labels = np.full(n, "object") if self.labels is None else self.labels
        ids = np.full(n, UNTRACKED) if self.ids is None else self.ids
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", _column("confidence", conf, np.float64, n))
        object.__setattr__(self, "labels", _column("labels", labels, np.str_, n))
        object.__setattr__(self, "ids", _column("ids", ids, np.int64, n))
        if self.keypoints is not None:
            kp = np.asarray(self.keypoints, dtype=np.float64)
            if kp.ndim != 3 or kp.shape[0] != n or kp.shape[2] != 3:
                raise InputError(f"Detections.keypoints must have shape [{n}, K, 3], got {kp.shape}")
            object.__setattr__(self, "keypoints", kp)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        """Select objects by integer array, slice or boolean mask; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.labels[index],
            self.ids[index],
            None if self.keypoints is None else self.keypoints[index],
        )

    @property
    def foot_row(self) -> np.ndarray:
        """[N] row of each box's bottom edge (last covered row)."""
        return self.xyxy[:, 3] - 1.0

    @property
    def height(self) -> np.ndarray:
        """[N] box heights in pixels."""
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @property
    def width(self) -> np.ndarray:
        """[N] box widths in pixels."""
        return self.xyxy[:, 2] - self.xyxy[:, 0]


@dataclass(frozen=True)
class MaskCrop:
    """One object's mask where it lies, so that its cost is its box's, not the frame's.

    Attributes:
        box: (x1, y1, x2, y2) int pixel corners in the frame, x2/y2 exclusive.
        logits: [y2 - y1, x2 - x1] float mask logits (> 0 = object) or bool mask over ``box``.
    """

    box: tuple[int, int, int, int]
    logits: np.ndarray

    def __post_init__(self):
        box = tuple(int(v) for v in self.box)
        if len(box) != 4 or box[2] < box[0] or box[3] < box[1]:
            raise InputError(f"MaskCrop.box must be (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2, got {self.box}")
        logits = np.asarray(self.logits)
        if logits.shape != (box[3] - box[1], box[2] - box[0]):
            raise InputError(f"MaskCrop.logits must have the box's shape {(box[3] - box[1], box[2] - box[0])}, "
                             f"got {logits.shape}")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "logits", logits)

    @classmethod
    def of_frame(cls, logits: np.ndarray) -> MaskCrop:
        """[H, W] full-frame logits or bool mask -> the crop around its pixels > 0 (empty box if none)."""
        logits = np.asarray(logits)
        rows, cols = np.flatnonzero((logits > 0).any(axis=1)), np.flatnonzero((logits > 0).any(axis=0))
        if len(rows) == 0:
            return cls((0, 0, 0, 0), logits[:0, :0])
        y1, y2, x1, x2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        return cls((x1, y1, x2, y2), logits[y1:y2, x1:x2])

    def in_frame(self, shape: tuple[int, int]) -> np.ndarray:
        """The [H, W] bool mask of the frame (``shape``), the crop's pixels > 0 set."""
        crop = self.clipped(shape)
        x1, y1, x2, y2 = crop.box
        mask = np.zeros(shape, bool)
        mask[y1:y2, x1:x2] = crop.logits > 0
        return mask

    def clipped(self, shape: tuple[int, int]) -> MaskCrop:
        """The part of the crop inside a frame of ``shape`` (H, W)."""
        height, width = shape
        x1, y1, x2, y2 = self.box
        cx1, cy1 = min(max(x1, 0), width), min(max(y1, 0), height)
        cx2, cy2 = max(min(x2, width), cx1), max(min(y2, height), cy1)
        if (cx1, cy1, cx2, cy2) == self.box:
            return self
        return MaskCrop((cx1, cy1, cx2, cy2), self.logits[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1])


@dataclass(frozen=True)
class Prompt:
    """A box prompt for the segmenter: the paper's tuple (frame, box, label), plus score and id."""

    frame_index: int
    box: tuple[float, float, float, float]
    label: str
    score: float
    object_id: int


@dataclass
class FrameContext:
    """What feature and depth plugins may read about the current frame.

    Attributes:
        frame_index: 0-based index in the stream (or clip).
        image: [H, W, 3] uint8 BGR frame.
        gray: [H, W] uint8 grey version of ``image``.
        previous_gray: [H, W] uint8 previous frame of the same stream, None on the first frame.
        depth_image: optional [H, W] float32 metres, NaN where unknown.
        foreground: optional [H, W] bool foreground mask if the detector produced one.
        cache: per-frame scratch space so that plugins share expensive results (e.g. optical flow).
        elapsed_frames: source frames from ``previous_gray`` to this one: more than 1 where frames in
            between were skipped (undecodable, or dropped by a node busy with an earlier frame).
    """

    frame_index: int
    image: np.ndarray
    gray: np.ndarray
    previous_gray: np.ndarray | None = None
    depth_image: np.ndarray | None = None
    foreground: np.ndarray | None = None
    cache: dict = field(default_factory=dict)
    elapsed_frames: int = 1


@dataclass
class FrameResult:
    """The object-level stage's output for one frame.

    Attributes:
        frame_index: 0-based frame index.
        detections: all objects of the frame.
        scores: [N] smoothed anomaly score of each object (higher = more anomalous); an object held
            anomalous (see ``anomalous``) has the score of its last frame above the threshold.
        feature_scores: feature name -> [N] standardized score of each object.
        anomalous: [N] bool, ``scores > threshold`` (strictly above: a score every normal object shares is
            never anomalous), or above it within the last ``hold_frames`` frames of the object's track
            (``core.prompts.AnomalyHold``).
        merged: anomalous boxes after IoU merging, with merged ids/labels.
        merged_scores: [M] score of each merged box.
        prompts: prompts emitted at this frame (may be empty).
        instance_mask: optional [H, W] uint16 from the segmenter: each pixel the id of the object it
            belongs to (as in ``detections.ids``), 0 = background.
        instance_ids: optional [K] ids of the objects present in ``instance_mask``.
        instance_scores: optional [K] anomaly score of each instance (its object's latest score).
        instance_labels: optional [K] label of each instance (its object's latest detector label, kept
            while the segmenter follows an object the detector lost).
        instance_regions: optional [K, 4] int box of each instance's crop: its pixels in
            ``instance_mask`` lie inside it, so that per-object work scans the box, not the frame.
        foreground: optional [H, W] bool foreground mask of the detector (the pixels of objects
            without a segmenter mask, for their 3D position).
    """

    frame_index: int
    detections: Detections
    scores: np.ndarray
    feature_scores: dict
    anomalous: np.ndarray
    merged: Detections
    merged_scores: np.ndarray
    prompts: list
    instance_mask: np.ndarray | None = None
    instance_ids: np.ndarray | None = None
    instance_scores: np.ndarray | None = None
    instance_labels: list[str] | None = None
    instance_regions: np.ndarray | None = None
    foreground: np.ndarray | None = None
