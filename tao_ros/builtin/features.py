"""Weight-free features: speed from dense optical flow, physical size from depth."""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.resolution import working_size
from tao_ros.core.tracking import TrackHistory
from tao_ros.errors import ConfigError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext


def dense_flow(context: FrameContext, preset: str = "fast") -> np.ndarray | None:
    """[H, W, 2] float32 DIS optical flow from the previous to the current frame, in pixels of the
    frame (computed at the working resolution, see builtin.resolution) per source frame: where frames
    in between were skipped (``context.elapsed_frames``), the displacement is divided among them, so
    that speeds learned on every frame hold on a node that drops frames while busy. Relative to the
    scene: the camera's own image translation (shake, a robot turning), taken as the median flow of
    the background (every 4th pixel outside the detector's foreground), is removed.

    Computed once per frame and shared through ``context.cache``; None on a stream's first frame.
    """
    import cv2

    if context.previous_gray is None or context.previous_gray.shape != context.gray.shape:
        return None
    key = ("dis_flow", preset)
    if key not in context.cache:
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        dis = context.cache.setdefault(("dis", preset), cv2.DISOpticalFlow_create(presets[preset]))
        size = working_size(context.gray.shape)
        if size is None:
            flow = dis.calc(context.previous_gray, context.gray, None)
        else:
            small = [cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (context.previous_gray, context.gray)]
            height, width = context.gray.shape
            flow = cv2.resize(dis.calc(*small, None), (width, height), interpolation=cv2.INTER_LINEAR)
            flow *= height / size[1]  # in pixels of the frame
        flow -= camera_translation(context, flow)
        flow /= context.elapsed_frames
        context.cache[key] = flow
    return context.cache[key]


def camera_translation(context: FrameContext, flow: np.ndarray) -> np.ndarray:
    """[2] image translation of the whole scene between the two frames: the median flow of the most
    textured quarter of the background (every 4th pixel, outside the detector's foreground), where
    optical flow is reliable; flow on uniform surfaces is filled in from moving neighbours."""
    import cv2

    gray = context.gray[::4, ::4]
    texture = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    still = ~context.foreground[::4, ::4] if context.foreground is not None else np.ones(gray.shape, bool)
    if not still.any():
        return np.zeros(2, np.float32)
    textured = still & (texture > 0) & (texture >= np.quantile(texture[still], 0.75))
    if textured.sum() < 16:
        return np.zeros(2, np.float32)
    return np.median(flow[::4, ::4][textured], axis=0)


def border_cuts(context: FrameContext, detections: Detections) -> np.ndarray:
    """[N, 4] bool: each box reaches into the frame's outermost (left, top, right, bottom) pixel
    column or row, so the image may cut the object there. [0, 4] for no objects."""
    height, width = context.gray.shape
    x1, y1, x2, y2 = detections.xyxy.T
    return np.column_stack([x1 < 1, y1 < 1, x2 > width - 1, y2 > height - 1]).reshape(-1, 4)


def object_pixels(context: FrameContext, box: np.ndarray, min_pixels: int, others: np.ndarray | None = None
                  ) -> tuple[slice, slice, np.ndarray]:
    """Rows/cols slices of ``box`` and the [h, w] bool mask of the object's pixels inside it
    (the detector's foreground where it has enough pixels, else the whole box). With ``others``
    ([K, 4] boxes of the frame's other objects), pixels inside them are left out where at least
    ``min_pixels`` remain: where boxes overlap a pixel may be the neighbour's, and a walker whose box
    takes in the front of a passing van must not get the van's speed."""
    height, width = context.gray.shape
    # clamped to the image, at least one pixel: a box reaching past the border (or carried onto it)
    # has only the pixels the image holds
    x1, y1, x2, y2 = box.astype(int)
    x1, y1 = min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)
    x2, y2 = min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)
    rows, cols = slice(y1, y2), slice(x1, x2)
    pixels = np.ones((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
    if context.foreground is not None and context.foreground[rows, cols].sum() >= min_pixels:
        pixels = context.foreground[rows, cols].copy()
    if others is not None and len(others):
        others = others.astype(int)
        # only the boxes reaching into this one: on a crowded frame most do not, and this runs for
        # every pair of objects
        overlapping = others[(others[:, 0] < x2) & (others[:, 2] > x1) & (others[:, 1] < y2) & (others[:, 3] > y1)]
        if len(overlapping):
            own = pixels.copy()
            for ox1, oy1, ox2, oy2 in np.maximum(overlapping - [x1, y1, x1, y1], 0).tolist():
                own[oy1:oy2, ox1:ox2] = False
            if own.sum() >= min_pixels:
                pixels = own
    return rows, cols, pixels


def objects_pixels(context: FrameContext, detections: Detections, min_pixels: int
                   ) -> list[tuple[int, slice, slice, np.ndarray]]:
    """For each detection: (index, rows, cols, [h, w] bool own pixels), as ``object_pixels`` gives them
    with the frame's other boxes left out; kept in the frame's cache for the other flow features."""
    key = ("objects_pixels", min_pixels, detections.xyxy.tobytes())
    if key not in context.cache:
        context.cache[key] = [(i, *object_pixels(context, box, min_pixels, np.delete(detections.xyxy, i, axis=0)))
                              for i, box in enumerate(detections.xyxy)]
    return context.cache[key]


def track_average_params(window: int, what: str) -> dict[str, Param]:
    """The ``window`` and ``min_samples`` parameters of a ``TrackAveragedFeature`` measuring ``what``."""
    return {"window": Param(window, f"Frames over which {what} is averaged along the object's track.", minimum=1),
            "min_samples": Param(1, f"{what.capitalize()} is unknown until the track has this many measurements.",
                                 minimum=1)}


class TrackAveragedFeature:
    """Base of features averaged along each object's track over the last ``window`` frames.
    ``expires``: a measurement of something that changes (a pose) is not carried on past its window
    when the track stops giving new ones (see ``TrackHistory``). A feature with an ``every``
    parameter (a costly model) measures on every ``every``-th frame only (``measures_now``); its
    tracks' averages stand in between."""

    expires = False

    def __init__(self, **params):
        if params["min_samples"] > params["window"]:
            raise ConfigError(f"{self.name}.min_samples ({params['min_samples']}) exceeds {self.name}.window "
                              f"({params['window']}): the value would never be known; lower min_samples or "
                              "raise window")
        if self.expires and params.get("every", 1) > params["window"]:
            raise ConfigError(f"{self.name}.every ({params['every']}) exceeds {self.name}.window ({params['window']}): "
                              "the value would be unknown between measurements; raise window or lower every")
        self.p = params
        self.history = TrackHistory(params["window"], min_samples=params["min_samples"], expire=self.expires)
        self.frames_seen = 0

    def reset(self) -> None:
        self.history.reset()
        self.frames_seen = 0

    def measures_now(self) -> bool:
        """Count this frame of the stream; True on its first frame and every ``every``-th after."""
        self.frames_seen += 1
        return (self.frames_seen - 1) % self.p.get("every", 1) == 0


class SpeedFeature(TrackAveragedFeature):
    """Object speed from DIS optical flow inside the object, averaged over time.

    Flow of the object's own pixels ignores box jitter (box edges move with the segmentation,
    pixels move with the object). By default the average is taken per pixel along the flow, not per
    track id: in a crowd, blobs merge and part and ids change hands, and a cyclist whose blob took a
    walker's id would otherwise start over from the walker's history. Optionally multiplied by depth
    for cameras with strong perspective.
    """

    name = "speed"
    columns = ("speed",)
    params = {
        "window": Param(6, "Frames over which the speed is averaged (per pixel along the flow, or along the "
                           "object's track).", minimum=1),
        "preset": Param("medium", "DIS optical flow preset (medium: flow bleeds less from fast objects onto "
                                   "their neighbours than fast).", choices=("ultrafast", "fast", "medium")),
        "min_pixels": Param(12, "Fewer foreground pixels than this in the box: use the whole box.", minimum=1),
        "part_size": Param(0.0, "Window over which flow is averaged, as a fraction of image height (at least "
                                "3 pixels; 0.05, a body part, averages out limb swing).", minimum=0.0, maximum=1.0),
        "min_samples": Param(1, "The speed is unknown until the object's track has been seen this many times.",
                             minimum=1),
        "perspective": Param("none", "'none': speed in pixels per frame; 'depth': times the object's depth, so "
                                     "that far and near objects compare (for cameras with strong perspective).",
                             choices=("none", "depth")),
        "percentile": Param(90.0, "Percentile of the local speeds inside the object taken as its speed.",
                            minimum=0.0, maximum=100.0),
        "smoothing": Param("advected", "'advected': the local speeds are averaged per pixel along the optical "
                                       "flow (a moving average carried with the motion), so that an object keeps its "
                                       "history through merges, splits and id changes; 'track': each object's speed "
                                       "is averaged over its track's last 'window' frames.",
                           choices=("advected", "track")),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.speed_map = None
        self.grid = None  # [H, W] pixel columns and rows, made once per frame size

    def reset(self) -> None:
        super().reset()
        self.speed_map = None

    def advected(self, local: np.ndarray, flow: np.ndarray, elapsed: int) -> np.ndarray:
        """[H, W] local speeds of this frame -> [H, W] their moving average along the flow: the
        previous average is moved with the motion (each pixel takes the value from where it came
        from), then updated with weight 2 / (window + 1), the exponential average as long as the window."""
        import cv2

        if self.speed_map is None or self.speed_map.shape != local.shape:
            self.speed_map = local.copy()
            return self.speed_map
        if self.grid is None or self.grid[0].shape != local.shape:
            height, width = local.shape
            self.grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        came_from_x = self.grid[0] - flow[..., 0] * elapsed
        came_from_y = self.grid[1] - flow[..., 1] * elapsed
        moved = cv2.remap(self.speed_map, came_from_x, came_from_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        weight = 2.0 / (self.p["window"] + 1.0)
        self.speed_map = (1.0 - weight) * moved + weight * local
        return self.speed_map

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        speed = np.full((len(detections), 1), np.nan)
        flow = dense_flow(context, self.p["preset"])
        if flow is None:
            return speed
        local = local_motion(context, flow, self.p["part_size"])
        if self.p["smoothing"] == "advected":
            local = self.advected(local, flow, context.elapsed_frames)
        for i, rows, cols, pixels in objects_pixels(context, detections, self.p["min_pixels"]):
            magnitudes = local[rows, cols][pixels]
            if len(magnitudes):
                speed[i, 0] = np.percentile(magnitudes, self.p["percentile"])
        if self.p["perspective"] == "depth":
            speed *= depth[:, None]
        if self.p["smoothing"] == "advected":  # averaged already; the track history only counts sightings
            seen = self.history.smooth(detections.ids, np.ones((len(detections), 1)))[:, 0]
            speed[~np.isfinite(seen)] = np.nan
            return speed
        return self.history.smooth(detections.ids, speed)


def local_motion(context: FrameContext, flow: np.ndarray, part_size: float) -> np.ndarray:
    """[H, W] speed of the foreground around each pixel: the mean flow vector of the foreground
    pixels in a window of ``part_size`` x image height (at least 3 x 3 pixels), then its length.

    Averaging vectors over a body-part-sized window cancels noise and limb swing; taking the
    fastest part of an object keeps a cyclist fast when its blob merged with walkers.
    """
    import cv2

    key = ("local_motion", part_size)
    if key not in context.cache:
        size = max(3, int(round(part_size * flow.shape[0])) | 1)
        weight = context.foreground.astype(np.float32) if context.foreground is not None \
            else np.ones(flow.shape[:2], np.float32)
        total = cv2.boxFilter(flow * weight[..., None], -1, (size, size), normalize=False)
        count = cv2.boxFilter(weight, -1, (size, size), normalize=False)
        mean = total / np.maximum(count, 1.0)[..., None]
        context.cache[key] = cv2.magnitude(np.ascontiguousarray(mean[..., 0]), np.ascontiguousarray(mean[..., 1]))
    return context.cache[key]


class VelocityFeature(TrackAveragedFeature):
    """Direction and speed of an object's motion: the flow of its pixels as a histogram over
    8 directions, each bin the summed flow magnitude of the pixels moving that way divided
    by the number of pixels (so the bins add up to the mean speed), averaged along its track.

    Unlike the scalar speed it tells a walker from a runner *and* from someone going against the
    usual direction, and it needs no statistic chosen per scene (as Reiss & Hoshen's velocity
    feature, AccI-VAD).
    """

    name = "velocity"
    columns = tuple(f"direction_{i}" for i in range(8))
    params = {
        "window": Param(5, "Frames over which the histogram is averaged along the object's track.", minimum=1),
        "min_samples": Param(1, "The histogram is unknown until the track has this many measurements.",
                             minimum=1),
        "preset": Param("medium", "DIS optical flow preset.", choices=("ultrafast", "fast", "medium")),
        "min_pixels": Param(12, "Fewer foreground pixels than this in the box: use the whole box.", minimum=1),
    }

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        bins = len(self.columns)
        histograms = np.full((len(detections), bins), np.nan)
        flow = dense_flow(context, self.p["preset"])
        if flow is None:
            return histograms
        for i, rows, cols, pixels in objects_pixels(context, detections, self.p["min_pixels"]):
            vectors = flow[rows, cols][pixels]  # the objects' pixels only: most of a frame is background
            if len(vectors):
                weights = np.hypot(vectors[:, 0], vectors[:, 1])
                # bins centred on the image axes (bin 4: rightwards), where walkways and corridors mostly run
                direction = ((np.arctan2(vectors[:, 1], vectors[:, 0]) + np.pi) / (2 * np.pi) * bins + 0.5
                             ).astype(int) % bins
                histograms[i] = np.bincount(direction, weights, minlength=bins) / len(weights)
        return self.history.smooth(detections.ids, histograms)


class DepthFeature(TrackAveragedFeature):
    """An object's size for where it stands: log box height and width with its depth.

    The density model learns which sizes are normal at which depth, so odd-sized objects (carts,
    vehicles, a person carrying something large) stand out at any distance from the camera.
    """

    name = "depth"
    columns = ("log_height", "log_width", "depth")
    params = track_average_params(8, "the size")

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        size = np.stack([detections.height, detections.width], axis=1)
        size[border_cuts(context, detections).any(axis=1)] = np.nan  # a cut object does not show its size
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log(np.where(size > 0, size, np.nan))
        return self.history.smooth(detections.ids, np.column_stack([values.reshape(-1, 2), depth]))


@hookimpl
def tao_ros_add_features():
    return [SpeedFeature, VelocityFeature, DepthFeature]
