"""Weight-free segmenter: the prompted object's pixels inside its box (background subtraction and
optical flow), refined by morphology or GrabCut, carried from frame to frame with the detector's
track ids."""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.features import dense_flow
from tao_ros.builtin.resolution import REFERENCE_ROWS
from tao_ros.core.geometry import clip_boxes
from tao_ros.core.instances import ObjectRegistry
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext, MaskCrop, Prompt


class ForegroundSegmenter:
    """Weight-free masks: the foreground pixels in each tracked box that move with the object.

    Moving with the object is judged by optical flow; masks are closed and hole-filled (or refined
    by GrabCut) and keep out bystanders.

    Between prompts an object's box follows the anomalous detection with the same id; an object
    that is not anomalous (or whose mask stays empty) for ``patience`` frames is dropped.
    """

    name = "foreground"
    params = {
        "refine": Param("close", "Mask refinement: 'close' (morphological closing of the foreground), 'grabcut' "
                                 "(OpenCV GrabCut colour model of object vs. surroundings: for colour footage with "
                                 "contrast; it fails on low-contrast grey video) or 'none'.",
                        choices=("close", "grabcut", "none")),
        "iterations": Param(2, "GrabCut iterations per object and frame.", minimum=1),
        "margin": Param(0.15, "Background margin around the box given to GrabCut, as a fraction of box size.",
                        minimum=0.0),
        "motion_tolerance": Param(0.3, "Pixels whose optical flow differs from the object's by more than this "
                                       "fraction of its speed are left out (0 = off).", minimum=0.0),
        "fill_moving": Param(True, "Add pixels within the object's extent that move like it although background "
                                   "subtraction missed them."),
        "min_speed": Param(1.0, "Objects slower than this (pixels per frame) are not split by motion.", minimum=0.0),
        "flow_preset": Param("medium", "DIS optical flow preset (shared with the speed feature when equal).",
                             choices=("ultrafast", "fast", "medium")),
        "dilate": Param(0.0, "Pixels (at 240 rows, scaled with image height) the final mask is grown by.",
                        minimum=0.0),
        "min_part_ratio": Param(0.4, "Foreground parts smaller than this fraction of the object's largest part "
                                     "are left out (bystanders inside its box).", minimum=0.0, maximum=1.0),
        "patience": Param(1, "Frames an object may be lost (not anomalous, or an empty mask) before it is "
                              "dropped. 1: masks only for this frame's anomalous boxes, as the foreground inside "
                              "a box the detector no longer reports (the object left, or merged into another's "
                              "blob) is what is left behind, not the object.", minimum=1),
        "max_objects": Param(32, "Most objects tracked at once; the lowest-scoring make room.", minimum=1),
    }

    def __init__(self, **params):
        self.p = params
        self.objects = ObjectRegistry(params["patience"], params["max_objects"])

    def reset(self) -> None:
        self.objects.reset()

    def update(self, context: FrameContext, prompts: list[Prompt], detections: Detections) -> dict[int, MaskCrop]:
        frame = context.frame_index
        self.objects.apply_prompts(frame, prompts)
        self.objects.observe(frame, detections)
        height, width = context.gray.shape
        ids = list(self.objects.objects)
        boxes = clip_boxes(np.array([self.objects.objects[i].box for i in ids]).reshape(-1, 4), width, height)
        masks = self.masks(context, ids, boxes)
        dropped = self.objects.update_masks(frame, {k: bool((m.logits > 0).any()) for k, m in masks.items()})
        return {k: v for k, v in masks.items() if k not in dropped}

    def masks(self, context: FrameContext, ids: list[int], boxes: np.ndarray) -> dict[int, MaskCrop]:
        """Object id -> mask of each tracked object (``ids``, [N, 4] boxes clipped to the frame)."""
        return {object_id: self.segment(context, box) for object_id, box in zip(ids, boxes)}

    def segment(self, context: FrameContext, box: np.ndarray) -> MaskCrop:
        """The object's mask in ``box`` (xyxy), as a bool crop of the box and its margin."""
        import cv2
        from scipy.ndimage import binary_fill_holes

        height, width = context.gray.shape
        x1, y1, x2, y2 = box.astype(int)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return MaskCrop((x1, y1, x1, y1), np.zeros((0, 0), bool))
        mx, my = int(round((x2 - x1) * self.p["margin"])) + 1, int(round((y2 - y1) * self.p["margin"])) + 1
        X1, Y1, X2, Y2 = max(0, x1 - mx), max(0, y1 - my), min(width, x2 + mx), min(height, y2 + my)
        inside = np.zeros((Y2 - Y1, X2 - X1), bool)
        inside[y1 - Y1:y2 - Y1, x1 - X1:x2 - X1] = True
        foreground = context.foreground[Y1:Y2, X1:X2] & inside if context.foreground is not None else inside
        if self.p["motion_tolerance"] > 0:
            foreground = self.moving_with_object(context, foreground, (slice(Y1, Y2), slice(X1, X2)))
        if self.p["refine"] == "grabcut" and foreground.any() and (~inside).any():
            labels = np.where(inside, cv2.GC_PR_BGD, cv2.GC_BGD).astype(np.uint8)
            labels[foreground] = cv2.GC_PR_FGD
            background_model, foreground_model = np.zeros((1, 65)), np.zeros((1, 65))
            try:
                cv2.grabCut(np.ascontiguousarray(context.image[Y1:Y2, X1:X2]), labels, None, background_model,
                            foreground_model, self.p["iterations"], cv2.GC_INIT_WITH_MASK)
                foreground = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)) & inside
            except cv2.error:  # GrabCut needs both classes present; keep the plain foreground
                pass
        elif self.p["refine"] == "close" and foreground.any():
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
            foreground = cv2.morphologyEx(foreground.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool) & inside
        foreground = self.main_parts(binary_fill_holes(foreground))
        if self.p["dilate"] > 0:  # background subtraction misses an object's soft, low-contrast rim
            size = 2 * round(self.p["dilate"] * height / REFERENCE_ROWS) + 1
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
            foreground = cv2.dilate(foreground.astype(np.uint8), kernel).astype(bool) & inside
        return MaskCrop((X1, Y1, X2, Y2), foreground)

    def moving_with_object(self, context: FrameContext, foreground: np.ndarray, window: tuple) -> np.ndarray:
        """The pixels that move like the object's fastest part.

        A fast object whose blob merged with slower bystanders (a cyclist passing walkers) keeps
        only its own pixels: those whose optical flow is within ``motion_tolerance`` (relative) of
        the velocity of the fastest quarter of the blob. With ``fill_moving``, pixels within the
        blob's extent that move alike are added even where background subtraction missed them
        (uniform surfaces fade into a background model). Slow objects are left as they are.
        """
        flow = dense_flow(context, self.p["flow_preset"])
        if flow is None or foreground.sum() < 8:
            return foreground
        vectors = flow[window][foreground]
        speed = np.linalg.norm(vectors, axis=1)
        reference = np.median(vectors[speed >= np.percentile(speed, 75)], axis=0)
        reference_speed = float(np.linalg.norm(reference))
        if reference_speed < self.p["min_speed"]:
            return foreground
        moving_alike = np.linalg.norm(flow[window] - reference, axis=2) <= self.p["motion_tolerance"] * reference_speed
        if not self.p["fill_moving"]:
            return foreground & moving_alike
        rows, cols = np.nonzero(foreground)
        extent = np.zeros_like(foreground)
        extent[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        return moving_alike & extent

    def main_parts(self, foreground: np.ndarray) -> np.ndarray:
        """[h, w] bool -> the largest connected part and those at least ``min_part_ratio`` of its size:
        a box that grew over bystanders (merged boxes, a carried box) keeps only its object."""
        import cv2

        n, labels, stats, _ = cv2.connectedComponentsWithStats(foreground.astype(np.uint8), connectivity=8)
        if n <= 2:
            return foreground
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = np.flatnonzero(areas >= self.p["min_part_ratio"] * areas.max()) + 1
        return np.isin(labels, keep)


@hookimpl
def tao_ros_add_segmenters():
    return [ForegroundSegmenter]
