"""Depth sources: an aligned depth image, or a ground-plane model learned for a fixed camera."""

from __future__ import annotations

import numpy as np

from tao_ros.core.localization import depth_in_metres
from tao_ros.errors import InputError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext


class DepthImageSource:
    """Median depth of the central part of each box in an aligned depth image."""

    name = "depth_image"
    params = {
        "inner_fraction": Param(0.5, "Central fraction of the box (per side) whose pixels are used; the "
                                     "rim is mostly background.", minimum=0.05, maximum=1.0),
        "min_valid_fraction": Param(0.05, "Below this share of valid pixels the depth is unknown (NaN).",
                                    minimum=0.0, maximum=1.0),
    }

    def __init__(self, **params):
        self.p = params

    def fit(self, detections, image_shape):
        """Nothing to learn: the depth image is measured."""

    def state(self):
        return {}

    def load_state(self, state):
        """Stateless."""

    def estimate(self, context: FrameContext, detections: Detections) -> np.ndarray:
        depth = np.full(len(detections), np.nan)
        if context.depth_image is None or len(detections) == 0:
            return depth
        metres = depth_in_metres(context.depth_image)
        if metres.shape[:2] != context.gray.shape[:2]:
            raise InputError(f"depth image is {metres.shape[1]}x{metres.shape[0]} but the frame is "
                             f"{context.gray.shape[1]}x{context.gray.shape[0]}: align depth to the camera")
        shrink = (1.0 - self.p["inner_fraction"]) / 2.0
        for i, (x1, y1, x2, y2) in enumerate(detections.xyxy):
            dx, dy = (x2 - x1) * shrink, (y2 - y1) * shrink
            patch = metres[int(y1 + dy):int(np.ceil(y2 - dy)), int(x1 + dx):int(np.ceil(x2 - dx))]
            valid = patch[np.isfinite(patch)]
            if patch.size and valid.size >= self.p["min_valid_fraction"] * patch.size and valid.size:
                depth[i] = float(np.median(valid))
        return depth


class GroundPlaneSource:
    """Relative depth from the row of a box's foot, for a fixed camera looking at a ground plane.

    On a flat ground, an upright object's image height grows linearly with its foot row below the
    horizon, and its distance is inversely proportional to that height. ``fit`` learns the line
    height = slope * foot_row + intercept from normal objects (median height per row band, so that
    merged or split blobs do not bend it); ``estimate`` returns reference_height / expected height,
    i.e. distance in units where the median normal object is at depth 1.
    """

    name = "ground_plane"
    params = {
        "bands": Param(12, "Row bands in which the median object height is taken when fitting.", minimum=2),
        "min_aspect": Param(1.5, "Least height/width of the boxes the plane is learned from.", minimum=0.0),
        "max_aspect": Param(4.0, "Largest height/width of the boxes the plane is learned from.", minimum=0.0),
        "min_objects_per_band": Param(20, "Bands with fewer normal objects are ignored.", minimum=1),
    }

    def __init__(self, **params):
        self.p = params
        self.line = None  # (slope, intercept, reference_height, min_height)

    def fit(self, detections: list[Detections], image_shape: tuple[int, int]) -> None:
        boxes = np.concatenate([d.xyxy for d in detections]) if detections else np.zeros((0, 4))
        heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
        # Upright single objects only: blobs of merged or split objects have other proportions.
        aspect = heights / np.maximum(widths, 1.0)
        upright = (aspect >= self.p["min_aspect"]) & (aspect <= self.p["max_aspect"])
        rows, heights = boxes[upright, 3] - 1.0, heights[upright]
        if len(rows) < 2 * self.p["min_objects_per_band"]:
            raise InputError(f"ground_plane needs at least {2 * self.p['min_objects_per_band']} normal objects "
                             f"to learn the ground plane, got {len(rows)}: fit on more normal footage")
        edges = np.linspace(0, image_shape[0], self.p["bands"] + 1)
        band = np.clip(np.digitize(rows, edges) - 1, 0, self.p["bands"] - 1)
        centres, medians, counts = [], [], []
        for b in range(self.p["bands"]):
            in_band = band == b
            if in_band.sum() >= self.p["min_objects_per_band"]:
                centres.append(np.median(rows[in_band]))
                medians.append(np.median(heights[in_band]))
                counts.append(in_band.sum())
        reference = float(np.median(heights))
        if len(centres) >= 2:
            slope, intercept = np.polyfit(centres, medians, 1, w=np.sqrt(counts))
        else:  # normal objects all in one band: no perspective can be seen, assume none
            slope, intercept = 0.0, reference
        if slope < 0:  # objects grow smaller towards the camera: not a ground plane, assume none
            slope, intercept = 0.0, reference
        self.line = np.array([slope, intercept, reference, max(1.0, 0.25 * min(medians or [reference]))])

    def state(self):
        return {} if self.line is None else {"line": self.line}

    def load_state(self, state):
        self.line = np.asarray(state["line"], dtype=np.float64)

    def estimate(self, context: FrameContext, detections: Detections) -> np.ndarray:
        if self.line is None:
            raise InputError("ground_plane is not fitted: run 'tao-ros fit' on normal footage first")
        slope, intercept, reference, min_height = self.line
        expected = np.maximum(slope * detections.foot_row + intercept, min_height)
        return reference / expected


@hookimpl
def tao_ros_add_depth_sources():
    return [DepthImageSource, GroundPlaneSource]
