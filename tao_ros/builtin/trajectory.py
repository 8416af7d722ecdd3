"""Weight-free evidence of where an object is and how it moves there, for the kinds of anomaly people
name: *where* (position), *which way* (heading), *how fast for its size* (relative_speed) and *how
long it stays* (dwell).

Positions are fractions of the frame (the model records its frame size and refuses another), speeds
are scaled by the depth of the place (relative_speed) or by the box's height (dwell), so that a far
and a near person compare on a camera with strong perspective. Each is a plain vector: the density
model fitted on normal objects learns which values are normal where, with nothing set per scene.
"""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np

from tao_ros.builtin.features import (TrackAveragedFeature, border_cuts, dense_flow, objects_pixels,
                                     track_average_params)
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext


def ground_contact(context: FrameContext, detections: Detections) -> np.ndarray:
    """[N, 2] where each object meets the ground, as fractions of the frame: the middle of its box's
    bottom edge (x / width, y2 / height); NaN (unknown) where the box reaches the frame's bottom row,
    so that the image may hide where the object stands. [0, 2] for no objects.

    Unknown rather than the frame's edge: a person near the camera leaving through the bottom edge
    leaves a short box there, whose place, size for the place and speed for the place no normal
    object has (Ped1's highest-scoring normal objects were such boxes; a track's earlier, uncut
    measurements stand in along it for the feature's window, then the place is unknown: the object
    has moved on since)."""
    height, width = context.gray.shape
    x1, _, x2, y2 = detections.xyxy.T
    contact = np.column_stack([(x1 + x2) / 2.0 / width, y2 / height]).reshape(-1, 2)
    contact[border_cuts(context, detections)[:, 3]] = np.nan
    return contact


def mean_object_flow(context: FrameContext, detections: Detections, preset: str, min_pixels: int) -> np.ndarray:
    """[N, 2] mean optical flow vector (pixels per frame) of each object's own pixels: limb swing
    cancels, the whole body's motion stays. NaN rows on a stream's first frame."""
    flow = dense_flow(context, preset)
    means = np.full((len(detections), 2), np.nan)
    if flow is None:
        return means
    key = ("mean_object_flow", preset, min_pixels, detections.xyxy.tobytes())
    if key not in context.cache:
        for i, rows, cols, pixels in objects_pixels(context, detections, min_pixels):
            means[i] = flow[rows, cols][pixels].mean(axis=0)
        context.cache[key] = means
    return context.cache[key].copy()


class PlacedFeature(TrackAveragedFeature):
    """Base of the features measured at an object's ground contact (``ground_contact``): a place
    changes as the object moves, so a track's last one is never carried on past the window."""

    expires = True


FLOW_PARAMS = {
    "preset": Param("medium", "DIS optical flow preset.", choices=("ultrafast", "fast", "medium")),
    "min_pixels": Param(12, "Fewer foreground pixels than this in the box: use the whole box.", minimum=1),
}


class PositionFeature(PlacedFeature):
    """Where an object stands and how large it is there: its ground contact (bottom middle of the box)
    as fractions of the frame and its log height as a fraction of the frame's, averaged along its
    track. Against the normal objects' positions it finds someone on the grass beside a walkway, or
    an object too large or too small for where it stands. Unknown where the image cuts the box at
    the top or bottom: it shows neither the object's height nor (at the bottom) its ground contact."""

    name = "position"
    columns = ("ground_x", "ground_y", "log_height")
    params = track_average_params(8, "the position")

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        height = np.maximum(detections.height, 1.0) / context.gray.shape[0]
        height[border_cuts(context, detections)[:, 1]] = np.nan
        values = np.column_stack([ground_contact(context, detections), np.log(height)])
        return self.history.smooth(detections.ids, values.reshape(-1, 3))


class HeadingFeature(PlacedFeature):
    """Which way an object goes where it is: its ground contact and the direction of its mean flow,
    (x, y, u_x, u_y) with u = v / sqrt(|v|^2 + noise^2), a unit vector for a mover that shrinks to 0
    for an object whose motion is within the optical flow's noise (a still object has no direction).
    Against the normal objects it finds someone going against the flow at that place. Unknown where
    the ground contact is (``ground_contact``)."""

    name = "heading"
    columns = ("ground_x", "ground_y", "direction_x", "direction_y")
    params = {
        **track_average_params(5, "the direction"),
        "noise": Param(0.5, "Optical flow noise, pixels per frame: DIS flow resolves motion to about half a "
                            "pixel; slower motion counts as no direction.", minimum=1e-3),
        **FLOW_PARAMS,
    }

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        flow = mean_object_flow(context, detections, self.p["preset"], self.p["min_pixels"])
        length = np.sqrt((flow ** 2).sum(axis=1, keepdims=True) + self.p["noise"] ** 2)
        values = np.column_stack([ground_contact(context, detections), flow / length])
        return self.history.smooth(detections.ids, values.reshape(-1, 4))


class RelativeSpeedFeature(PlacedFeature):
    """How fast an object moves for where it is: its ground contact (as ``position``) and the log of
    its mean flow's length (pixels per frame) times its depth, averaged along its track. With the
    ground plane the speed is in heights of a normal object standing there (times a constant), with a
    depth image metres per frame (times the focal length). The depth of the place is used rather than
    the box's own height, which a blob cut by the border or split by the detector does not show.

    Scaling by depth makes lateral motion of far and near objects compare, but not motion along the
    line of sight: on a ground plane a step towards the camera covers more image rows the nearer it
    is (Ped1's normal walkers: pixel speed x7 from the far end to the near, size x2, speed times
    depth still x3). The place is therefore part of the vector, so that the density model learns from
    the normal objects how fast is normal where, whatever the camera's geometry. The log (of the
    speed plus the flow's noise) makes the speed's axis relative: twice as fast is as far at a walking
    pace as at a crawl. Unknown where the depth or the ground contact is."""

    name = "relative_speed"
    columns = ("ground_x", "ground_y", "log_speed_times_depth")
    params = {
        **track_average_params(6, "the speed"),
        "noise": Param(0.5, "Optical flow noise, pixels per frame (as heading's): speeds within it count as "
                            "still, and the log of the speed is taken with it added.", minimum=1e-3),
        **FLOW_PARAMS,
    }

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        flow = mean_object_flow(context, detections, self.p["preset"], self.p["min_pixels"])
        speed = np.hypot(flow[:, 0], flow[:, 1]) * np.asarray(depth, np.float64).reshape(-1)
        values = np.column_stack([ground_contact(context, detections), np.log(speed + self.p["noise"])])
        return self.history.smooth(detections.ids, values.reshape(-1, 3))


class DwellFeature:
    """How long an object stays: the frames since its track began (log) and how far it got over its
    last ``window`` frames, in box heights per frame (net displacement, so that someone moving in
    place, gesturing or dancing, counts as staying). A walker crosses the scene; someone loitering,
    or a thing left standing, stays."""

    name = "dwell"
    columns = ("log_frames_tracked", "net_heights_per_frame")
    params = {
        "window": Param(30, "Frames over which the net displacement is measured.", minimum=2),
        "max_tracks": Param(4096, "Tracks remembered (least recently seen forgotten first).", minimum=1),
    }

    def __init__(self, **params):
        self.p = params
        self.tracks: OrderedDict[int, tuple[int, deque]] = OrderedDict()

    def reset(self) -> None:
        self.tracks.clear()

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        values = np.full((len(detections), 2), np.nan)
        centres = np.column_stack([detections.xyxy[:, [0, 2]].mean(axis=1), detections.xyxy[:, [1, 3]].mean(axis=1)])
        for i, track_id in enumerate(detections.ids.tolist()):
            if track_id < 0:
                continue
            first, path = self.tracks.pop(track_id, (context.frame_index, deque(maxlen=self.p["window"])))
            if path and path[-1][0] >= context.frame_index:  # the frame numbers restarted: a new stream
                first, path = context.frame_index, deque(maxlen=self.p["window"])
            path.append((context.frame_index, *centres[i], max(detections.height[i], 1.0)))
            self.tracks[track_id] = (first, path)
            frames, xs, ys, heights = np.array(path).T
            span = max(frames[-1] - frames[0], 1.0)
            moved = np.hypot(xs[-1] - xs[0], ys[-1] - ys[0]) / heights.mean() / span
            values[i] = np.log1p(context.frame_index - first), moved
        while len(self.tracks) > self.p["max_tracks"]:
            self.tracks.popitem(last=False)
        return values


@hookimpl
def tao_ros_add_features():
    return [PositionFeature, HeadingFeature, RelativeSpeedFeature, DwellFeature]
