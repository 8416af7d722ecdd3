"""Per-track state shared by plugins and the pipeline: bounded histories keyed by track id, a box
tracker, and the public object ids every output uses."""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np
from scipy.optimize import linear_sum_assignment

from tao_ros.core.geometry import box_area, containment_matrix, iou_matrix
from tao_ros.types import UNTRACKED, Detections


class TrackHistory:
    """Last ``window`` values of each track id, to average a per-object measurement along its track.
    The average is NaN (unknown) until a track has ``min_samples`` values.

    A frame without a measurement (NaN row) is skipped: the last ``window`` measurements stay, which
    suits what an object keeps (its size while the image border cuts it). With ``expire``, such a
    frame still takes its place in the window, so that a measurement of what changes (a pose) is
    never carried on more than ``window`` frames after the track stopped giving one."""

    def __init__(self, window: int, max_tracks: int = 4096, min_samples: int = 1, expire: bool = False):
        self.window = window
        self.min_samples = min_samples
        self.max_tracks = max_tracks
        self.expire = expire
        self.values: dict[int, deque] = {}

    def reset(self) -> None:
        self.values.clear()

    def smooth(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Append [N, D] ``values`` (NaN rows: no measurement this frame) to their tracks; return
        [N, D] means of each track's measurements in its window."""
        out = values.copy()
        finite = np.isfinite(values).all(axis=1).tolist()
        for i, track_id in enumerate(np.asarray(ids).tolist()):
            if track_id < 0:
                continue
            history = self.values.pop(track_id, None) or deque(maxlen=self.window)
            if self.expire or finite[i]:
                history.append(values[i] if finite[i] else None)  # None: a frame without a measurement
            self.values[track_id] = history  # re-insert: dict order = least recently seen first
            measured = [row for row in history if row is not None]
            # the rows added one by one, as np.mean adds them along axis 0, without stacking them:
            # this runs for every object of every track-averaged feature on every frame
            out[i] = sum(measured) / len(measured) if len(measured) >= self.min_samples else np.nan
        while len(self.values) > self.max_tracks:  # bounded memory on endless streams
            self.values.pop(next(iter(self.values)))
        return out


class LabelVotes:
    """Each track's label as the label it was given most often (the latest among equals), so that a
    detector's label flicker (one cyclist: motorcycle 52, bicycle 51, person 15 frames) does not
    change what the object is. ``unknown`` (a detector's "no class") is a track's label only while
    it has had no other. Bounded to the ``max_tracks`` tracks seen most recently."""

    def __init__(self, max_tracks: int = 4096, unknown: str = "object"):
        self.max_tracks = max_tracks
        self.unknown = unknown
        self.counts: dict[int, dict[str, int]] = {}

    def reset(self) -> None:
        self.counts.clear()

    def vote(self, ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """[N] track ids and this frame's [N] labels -> [N] each track's most frequent label so far.
        Objects without a track id keep their label."""
        out = np.asarray(labels).astype(object)
        for i, (track_id, label) in enumerate(zip(ids.tolist(), out.tolist())):
            if track_id < 0:
                continue
            counts = self.counts.pop(track_id, {})
            counts[label] = counts.pop(label, 0) + 1  # re-inserted last: the latest wins a tie
            self.counts[track_id] = counts
            known = [k for k in reversed(counts) if k != self.unknown] or [self.unknown]
            out[i] = max(known, key=counts.get)
        while len(self.counts) > self.max_tracks:
            self.counts.pop(next(iter(self.counts)))
        return out.astype(np.str_)


HELD_SHARE = 0.6
"""Share of a box's area inside a blob for the blob to hold that object (merged with others in it)."""


def centre(xyxy: np.ndarray) -> np.ndarray:
    """[N, 4] boxes -> [N, 2] centres."""
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2


class BoxTracker:
    """Gives boxes stable ids across frames by optimal IoU matching against predicted track boxes.

    A track that finds no box of its own is kept ``max_missed`` frames at its predicted place, and
    up to ``max_hidden`` frames while that place lies (``containment`` of its area) inside another
    object's box: people walking past each other, a cyclist passing walkers, merge into one blob
    that keeps one of their ids, and the others take theirs back when the blob parts, instead of
    coming out as new objects without a history.

    Written here rather than taken from ultralytics' BYTETracker because that tracker only reports
    confirmed tracks (it drops an object's first frame) and needs detector confidences; every
    detection of the motion detector must keep an id from the frame it appears.
    """

    def __init__(self, match_iou: float = 0.1, max_missed: int = 5, max_hidden: int = 20,
                 containment: float = HELD_SHARE):
        self.match_iou = match_iou
        self.max_missed = max_missed
        self.max_hidden = max_hidden
        self.containment = containment
        self.reset()

    def reset(self) -> None:
        self.boxes = np.zeros((0, 4))
        self.velocity = np.zeros((0, 4))
        self.ids = np.zeros(0, dtype=np.int64)
        self.missed = np.zeros(0, dtype=np.int64)
        self.next_id = 1

    def _match_by_distance(self, xyxy, predicted, rows, cols):
        """Second pass for boxes IoU could not match: a fast object's boxes in consecutive frames may
        not overlap at all. Matches by centre distance (within one box diagonal) between boxes of
        similar size."""
        free_rows = np.setdiff1d(np.arange(len(xyxy)), rows)
        free_cols = np.setdiff1d(np.arange(len(predicted)), cols)
        if not len(free_rows) or not len(free_cols):
            return rows, cols
        a, b = xyxy[free_rows], predicted[free_cols]
        centre_a, centre_b = centre(a), centre(b)
        diagonal = np.hypot(*(a[:, 2:] - a[:, :2]).T)[:, None] / 2 + np.hypot(*(b[:, 2:] - b[:, :2]).T)[None, :] / 2
        distance = np.linalg.norm(centre_a[:, None] - centre_b[None], axis=2) / np.maximum(diagonal, 1e-9)
        area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)[:, None]
        area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)[None, :]
        similar = (area_a < 2 * area_b) & (area_b < 2 * area_a)
        cost = np.where(similar & (distance <= 1.0), distance, 1e6)
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < 1e6
        return np.concatenate([rows, free_rows[r[ok]]]), np.concatenate([cols, free_cols[c[ok]]])

    def recent(self) -> np.ndarray:
        """[T, 4] where the tracks seen in the last frame are expected in the next one."""
        seen = self.missed == 0
        return (self.boxes + self.velocity)[seen]

    def update(self, xyxy: np.ndarray) -> np.ndarray:
        """[N, 4] boxes of this frame -> [N] int64 track ids (new ids for unmatched boxes)."""
        predicted = self.boxes + self.velocity
        iou = iou_matrix(xyxy, predicted)
        rows, cols = linear_sum_assignment(-iou) if iou.size else (np.zeros(0, int), np.zeros(0, int))
        keep = iou[rows, cols] >= self.match_iou
        rows, cols = rows[keep], cols[keep]
        rows, cols = self._match_by_distance(xyxy, predicted, rows, cols)
        ids = np.empty(len(xyxy), dtype=np.int64)
        ids[rows] = self.ids[cols]
        new = np.setdiff1d(np.arange(len(xyxy)), rows)
        ids[new] = np.arange(self.next_id, self.next_id + len(new))
        self.next_id += len(new)

        velocity = np.zeros((len(xyxy), 4))
        velocity[rows] = self.velocity[cols]
        # a track's velocity is its centre's: boxes growing or shrinking as blobs merge and part are no
        # motion, and a jump of the centre with such a change of size (above 1.5x) is none either
        moved = centre(xyxy[rows]) - centre(self.boxes[cols])
        area_ratio = box_area(xyxy[rows]) / np.maximum(box_area(self.boxes[cols]), 1e-9)
        steady = (area_ratio < 1.5) & (area_ratio > 1 / 1.5)
        velocity[rows[steady]] = 0.5 * self.velocity[cols[steady]] + 0.5 * np.tile(moved[steady], 2)
        lost = np.setdiff1d(np.arange(len(self.ids)), cols)
        hidden = (containment_matrix(predicted[lost], xyxy) >= self.containment).any(axis=1)
        lost = lost[np.where(hidden, self.missed[lost] < self.max_hidden, self.missed[lost] < self.max_missed)]
        self.boxes = np.concatenate([xyxy, predicted[lost]])
        self.velocity = np.concatenate([velocity, self.velocity[lost]])
        self.ids = np.concatenate([ids, self.ids[lost]])
        self.missed = np.concatenate([np.zeros(len(xyxy), dtype=np.int64), self.missed[lost] + 1])
        return ids


class ObjectIds:
    """The public id of each object, the same in every output (``Detection2D.id``, the value of its
    pixels in the mono16 instance mask, ``object_id`` in objects.csv): 1..65535, stable while the
    object is tracked, never shared by two objects of one frame.

    A detector's track id maps to a public id the first time it is seen; ids run up to 65535 and
    then wrap around to 1, skipping ids held by the objects of the last ``max_tracks`` tracks.
    Detections without a track id get one from an IoU tracker, so they too keep one id.
    """

    LIMIT = 65535

    def __init__(self, max_tracks: int = 4096):
        self.max_tracks = max_tracks
        self.tracker = BoxTracker()
        self.reset()

    def reset(self) -> None:
        self.tracker.reset()
        self.public: OrderedDict[tuple[str, int], int] = OrderedDict()  # least recently seen first
        self._next = 1

    def assign(self, detections: Detections) -> Detections:
        """``detections`` with their ids replaced by public ids."""
        keys = [("detector", int(i)) for i in detections.ids]
        untracked = np.flatnonzero(detections.ids == UNTRACKED)
        if len(untracked) or len(self.tracker.ids):  # keep the tracker's predictions moving
            for k, track in zip(untracked, self.tracker.update(detections.xyxy[untracked])):
                keys[k] = ("untracked", int(track))
        ids = np.empty(len(keys), dtype=np.int64)
        for k, key in enumerate(keys):
            if key in self.public:
                self.public.move_to_end(key)
            else:
                self.public[key] = self._free_id()
            ids[k] = self.public[key]
        while len(self.public) > self.max_tracks:
            self.public.popitem(last=False)
        return Detections(detections.xyxy, detections.confidence, detections.labels, ids, detections.keypoints)

    def _free_id(self) -> int:
        held = set(self.public.values())
        while self._next in held:
            self._next = self._next % self.LIMIT + 1
        number, self._next = self._next, self._next % self.LIMIT + 1
        return number
