"""Weight-free detector for fixed cameras: background subtraction, connected components, box tracking."""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.resolution import REFERENCE_ROWS, working_size
from tao_ros.core.geometry import containment_matrix
from tao_ros.core.tracking import HELD_SHARE, BoxTracker
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext


class MotionDetector:
    """Moving objects seen by a fixed camera (OpenCV MOG2 background model + connected components)."""

    name = "motion"
    params = {
        "history": Param(300, "Frames the background model remembers.", minimum=1),
        "var_threshold": Param(16.0, "MOG2 squared Mahalanobis distance for a pixel to be foreground.",
                               minimum=0.0),
        "shadows": Param(False, "Leave out cast shadows (MOG2 shadow detection). Off by default: it also takes "
                                "dark clothing on a light ground for shadow."),
        "min_area": Param(0.0006, "Smallest object, as a fraction of the image area.", minimum=0.0, maximum=1.0),
        "close_size": Param(5, "Morphological closing kernel (pixels at 240 rows; scaled with image "
                               "height) that joins an object's parts.", minimum=1),
        "absorb_gap": Param(4.0, "A small blob this close (pixels at 240 rows, scaled with image height) to a "
                                 "much larger one is taken as its fragment (a wheel, a limb) and joined to it.",
                            minimum=0.0),
        "absorb_ratio": Param(0.3, "Blobs smaller than this fraction of a neighbour's area count as fragments.",
                              minimum=0.0, maximum=1.0),
        "split_merged": Param(True, "A blob that covers the expected boxes of several objects tracked apart "
                                    "until the last frame (people walking into each other) is split between "
                                    "them, so that each keeps its own box and id."),
        "match_iou": Param(0.1, "Tracker: least IoU between a box and a track's predicted box.", minimum=0.0,
                           maximum=1.0),
        "max_missed": Param(5, "Tracker: frames a lost track is kept for re-identification.", minimum=0),
        "max_hidden": Param(20, "Tracker: frames a lost track is kept while its predicted box lies inside "
                                "another object's blob (merged with it in a crowd).", minimum=0),
        "learning_rate": Param(-1.0, "Background learning rate after init_frames; -1 = MOG2's automatic "
                                     "1/min(frames, history). A slow fixed rate keeps slow, uniform objects from "
                                     "fading into the background but leaves ghosts of objects seen at start-up."),
        "init_frames": Param(10, "First frames learned at MOG2's automatic (fast) rate.", minimum=0),
        "warmup_frames": Param(2, "First frames of a stream used only to learn the background.", minimum=0),
        "stabilize": Param(True, "Undo camera shake before background subtraction: each frame is shifted onto "
                                 "the background model by the image translation of the background's corners "
                                 "(a shaking camera otherwise turns every edge of the scene into foreground)."),
    }

    def __init__(self, **params):
        self.p = params
        self.tracker = BoxTracker(params["match_iou"], params["max_missed"], params["max_hidden"])
        self.reset()

    def reset(self) -> None:
        import cv2

        self.background = cv2.createBackgroundSubtractorMOG2(
            history=self.p["history"], varThreshold=self.p["var_threshold"], detectShadows=self.p["shadows"])
        self.frames_seen = 0
        self.tracker.reset()

    def foreground(self, gray: np.ndarray) -> np.ndarray:
        """[H, W] uint8 frame -> [H, W] bool foreground after morphological clean-up (background
        subtraction at the working resolution, see builtin.resolution)."""
        import cv2

        full_size, working = gray.shape[::-1], working_size(gray.shape)
        if working is not None:
            gray = cv2.resize(gray, working, interpolation=cv2.INTER_AREA)
        rate = -1.0 if self.frames_seen < self.p["init_frames"] else self.p["learning_rate"]
        shift = self.camera_shift(gray) if self.p["stabilize"] and self.frames_seen >= self.p["init_frames"] \
            else None
        if shift is None:
            fg = self.background.apply(gray, learningRate=rate) == 255  # shadows are marked 127
        else:
            onto_background = np.float32([[1, 0, -shift[0]], [0, 1, -shift[1]]])
            aligned = cv2.warpAffine(gray, onto_background, gray.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
            fg = self.background.apply(aligned, learningRate=rate) == 255
            back = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
            fg = cv2.warpAffine(fg.astype(np.uint8), back, gray.shape[::-1], flags=cv2.INTER_NEAREST).astype(bool)
        scale = gray.shape[0] / REFERENCE_ROWS
        open_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        size = max(1, round(self.p["close_size"] * scale)) | 1
        close_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        # Close first: MOG2 marks an object's pixels sparsely, and opening first would erase them.
        fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_CLOSE, close_k)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, open_k)
        if working is not None:
            fg = cv2.resize(fg, full_size, interpolation=cv2.INTER_NEAREST)
        return fg.astype(bool)

    def camera_shift(self, gray: np.ndarray) -> tuple[float, float] | None:
        """(dx, dy) pixels the frame is shifted against the background model: the median displacement
        of the background's corners tracked into the frame (pyramidal Lucas-Kanade; the median ignores
        the moving objects). None when the corners do not agree on one shift, or below half a pixel,
        the least shift that moves an edge by a pixel: on a still camera the estimate wavers by tenths
        of a pixel, and warping frames by that noise did not pay (Ped2 development clips, RBDC / mean
        IoU: 0.940 / 0.607 from half a pixel, 0.942 / 0.598 from 0.1 px, 0.931 / 0.601 from three
        standard errors of the estimate)."""
        import cv2

        background = self.background.getBackgroundImage()
        if background is None or background.shape[:2] != gray.shape:
            return None
        if background.ndim == 3:
            background = cv2.cvtColor(background, cv2.COLOR_BGR2GRAY)
        corners = cv2.goodFeaturesToTrack(background, maxCorners=200, qualityLevel=0.01, minDistance=8)
        if corners is None or len(corners) < 10:
            return None
        moved, found, _ = cv2.calcOpticalFlowPyrLK(background, gray, corners, None)
        found = found.reshape(-1).astype(bool)
        if found.sum() < 10:
            return None
        shifts = (moved - corners).reshape(-1, 2)[found]
        dx, dy = np.median(shifts, axis=0)
        if np.hypot(dx, dy) < 0.5:
            return None
        # trust it only where a quarter of the corners agree within a pixel, a clear mode: corners on
        # repeated patterns (tiles, railings) or along edges slide to wrong matches, each its own way
        # (normal Ped2 training clips shaken by 2 pixels: at least 35% agree with a right shift in 95%
        # of frames, at most 6% with a wrong one in most)
        agree = np.hypot(*(shifts - [dx, dy]).T) < 1.0
        return (float(dx), float(dy)) if agree.mean() >= 0.25 else None

    def detect(self, context: FrameContext) -> Detections:
        import cv2

        fg = self.foreground(context.gray)
        self.frames_seen += 1
        context.foreground = fg
        if self.frames_seen <= self.p["warmup_frames"]:
            return Detections.empty()
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
        min_area = self.p["min_area"] * fg.size
        stats = stats[1:][stats[1:, cv2.CC_STAT_AREA] >= min_area]
        x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
        xyxy = np.stack([x, y, x + stats[:, cv2.CC_STAT_WIDTH], y + stats[:, cv2.CC_STAT_HEIGHT]], axis=1)
        xyxy = self.absorb_fragments(xyxy.astype(np.float64).reshape(-1, 4), stats[:, cv2.CC_STAT_AREA],
                                     self.p["absorb_gap"] * fg.shape[0] / REFERENCE_ROWS)
        if self.p["split_merged"]:
            xyxy = split_merged(xyxy, self.tracker.recent(), fg, min_area)
        return Detections(xyxy, ids=self.tracker.update(xyxy))

    def absorb_fragments(self, xyxy: np.ndarray, areas: np.ndarray, gap: float) -> np.ndarray:
        """[N, 4] blob boxes with [N] pixel areas -> [M, 4] boxes, M <= N: each blob much smaller than a
        blob within ``gap`` pixels is joined to the largest such neighbour (its box grows to cover it)."""
        if len(xyxy) < 2:
            return xyxy
        grown = xyxy + np.array([-gap, -gap, gap, gap])
        near = (grown[:, None, 0] < xyxy[None, :, 2]) & (xyxy[None, :, 0] < grown[:, None, 2]) & \
               (grown[:, None, 1] < xyxy[None, :, 3]) & (xyxy[None, :, 1] < grown[:, None, 3])
        much_larger = areas[None, :] * self.p["absorb_ratio"] > areas[:, None]
        candidates = np.where(near & much_larger, areas[None, :], -1)
        host = candidates.argmax(axis=1)
        is_fragment = candidates.max(axis=1) > 0
        boxes = xyxy.copy()
        for fragment in np.flatnonzero(is_fragment):
            target = host[fragment]
            while is_fragment[target]:  # a fragment of a fragment joins the final host
                target = host[target]
            boxes[target, :2] = np.minimum(boxes[target, :2], xyxy[fragment, :2])
            boxes[target, 2:] = np.maximum(boxes[target, 2:], xyxy[fragment, 2:])
        return boxes[~is_fragment]


def split_merged(xyxy: np.ndarray, expected: np.ndarray, foreground: np.ndarray, min_area: float,
                 containment: float = HELD_SHARE) -> np.ndarray:
    """[N, 4] blob boxes -> [M, 4] boxes, M >= N: a blob that holds at least ``containment`` of each
    of two or more ``expected`` [T, 4] track boxes standing side by side is split between them (tracks
    stacked one above the other are more often parts of one body tracked apart for a while, and one
    in front of the other cannot be told apart by boxes). Each foreground pixel of
    the blob goes to the expected box it lies in (the one with the nearest centre where several
    overlap, the nearest box where none), and each part's box is the extent of its pixels; parts
    smaller than ``min_area`` pixels are left out of the split (their pixels stay with no part)."""
    if len(xyxy) == 0 or len(expected) < 2:
        return xyxy
    out = []
    for box in xyxy:
        x1, y1, x2, y2 = box.astype(int)
        held = expected[containment_matrix(expected, box.astype(int))[:, 0] >= containment]
        if len(held) < 2 or not side_by_side(held):
            out.append(box)
            continue
        ys, xs = np.nonzero(foreground[y1:y2, x1:x2])
        xs, ys = xs + x1 + 0.5, ys + y1 + 0.5
        # distance of each pixel to each held box (0 inside), ties broken by distance to its centre
        dx = np.maximum(np.maximum(held[None, :, 0] - xs[:, None], xs[:, None] - held[None, :, 2]), 0)
        dy = np.maximum(np.maximum(held[None, :, 1] - ys[:, None], ys[:, None] - held[None, :, 3]), 0)
        centre_x, centre_y = (held[:, 0] + held[:, 2]) / 2, (held[:, 1] + held[:, 3]) / 2
        centre = np.hypot(xs[:, None] - centre_x, ys[:, None] - centre_y)
        owner = np.argmin(np.hypot(dx, dy) * 1e6 + centre, axis=1)
        parts = [np.flatnonzero(owner == k) for k in range(len(held))]
        parts = [part for part in parts if len(part) >= min_area]
        if len(parts) < 2:
            out.append(box)
            continue
        for part in parts:
            out.append([xs[part].min() - 0.5, ys[part].min() - 0.5, xs[part].max() + 0.5, ys[part].max() + 0.5])
    return np.array(out, dtype=np.float64).reshape(-1, 4)


def side_by_side(xyxy: np.ndarray) -> bool:
    """True if no two of the [K, 4] boxes share more than half of the narrower one's width."""
    left, right = xyxy[:, 0], xyxy[:, 2]
    shared = np.minimum(right[:, None], right[None, :]) - np.maximum(left[:, None], left[None, :])
    narrower = np.minimum((right - left)[:, None], (right - left)[None, :])
    np.fill_diagonal(shared, 0.0)
    return bool((shared <= 0.5 * narrower).all())


@hookimpl
def tao_ros_add_detectors():
    return [MotionDetector]
