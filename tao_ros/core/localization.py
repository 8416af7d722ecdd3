"""Where objects are in metres: their own pixels back-projected with the aligned depth image.

Pure numpy, no ROS. The camera's optical frame is the ROS one (REP 103): x right, y down, z forward
along the optical axis, metres; pixel (u, v) = (column, row), the centre of pixel (0, 0) at (0, 0),
as in sensor_msgs/CameraInfo and OpenCV.

The depth under an object's pixels mixes the object with what lies behind it (the ground between
a walker's legs, the wall behind a thin pole, pixels that bleed past a mask's edge) and with
invalid readings (0, NaN, out of the sensor's range). Only the object's visible surface is kept:
the nearest substantial mode of the log-depth histogram (at least half as many pixels as the
largest: what is behind an object is farther, what passes in front of it is smaller), grown over the bins around it that still
hold a tenth of the mode's pixels, so that a surface spanning several bins (a car seen obliquely)
is kept whole while the background, separated from it by nearly empty bins, is not. An object
with too few valid pixels gets no position rather than a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tao_ros.core.instances import instance_pixels, instance_regions
from tao_ros.errors import InputError
from tao_ros.types import FrameResult

DEPTH_BIN = float(np.log(1.05))
"""Width of a log-depth histogram bin: 5% of the depth, about the noise of a structured-light or
stereo sensor at a few metres, so one flat surface falls into one or two bins."""
MODE_SHARE = 0.5
"""A mode is substantial when its bin and neighbours hold this share of the largest such mass. An
object owns most of its own pixels: a nearer surface inside them (a walker passing in front of a
crate, merged into its mask) is taken only when it is comparable, never a few stray pixels.
(At 0.25, walkers in front of a crate were taken for it: benchmarks/localization.py, README.)"""
SURFACE_SHARE = 0.1
"""Bins next to the mode are part of the surface while they hold this share of the mode's bin."""
EXTENT_PERCENTILES = (2.0, 98.0)
"""The extent spans these percentiles of the surface points on each axis: a few pixels at a
mask's edge (mixed depth, 'flying pixels') do not stretch it."""


def depth_in_metres(depth: np.ndarray) -> np.ndarray:
    """[H, W] depth image -> [H, W] float32 metres, NaN where unknown.

    uint16 images are millimetres (ROS 16UC1) and 0 means unknown; float images are metres
    (ROS 32FC1) and 0, NaN and inf mean unknown.
    """
    depth = np.asarray(depth)
    if depth.dtype == np.uint16:
        metres = depth.astype(np.float32) / 1000.0
    elif np.issubdtype(depth.dtype, np.floating):
        metres = depth.astype(np.float32, copy=True)
    else:
        raise InputError(f"depth image of dtype {depth.dtype}: expected uint16 millimetres (16UC1) or "
                         "float metres (32FC1)")
    metres[~np.isfinite(metres) | (metres <= 0)] = np.nan
    return metres


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a rectified image: focal lengths and principal point in pixels, and
    the image size they belong to."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self):
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(np.isfinite(values)) or self.fx <= 0 or self.fy <= 0:
            raise InputError(f"camera intrinsics fx={self.fx}, fy={self.fy}, cx={self.cx}, cy={self.cy}: the "
                             "focal lengths must be positive and all finite; calibrate the camera")
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"camera intrinsics for a {self.width}x{self.height} image: give the calibrated "
                             "image size")

    @classmethod
    def from_matrix(cls, matrix, width: int, height: int) -> Intrinsics:
        """Camera matrix (3x3 ``K``, or the 3x4 projection ``P``, flat or nested) -> Intrinsics."""
        values = np.asarray(matrix, dtype=np.float64).reshape(-1)
        if values.size not in (9, 12):
            raise InputError(f"a camera matrix has 9 (K) or 12 (P) values, got {values.size}")
        rows = values.reshape(3, -1)
        return cls(float(rows[0, 0]), float(rows[1, 1]), float(rows[0, 2]), float(rows[1, 2]), int(width), int(height))

    def back_project(self, rows: np.ndarray, cols: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """[P] pixel rows, columns and their depths (metres) -> [P, 3] points in the optical frame."""
        return np.stack([(cols - self.cx) * depth / self.fx, (rows - self.cy) * depth / self.fy, depth], axis=1)

    def check_image(self, shape: tuple[int, ...]) -> None:
        """InputError unless an image of ``shape`` ([H, W, ...]) is the one these intrinsics describe."""
        if tuple(shape[:2]) != (self.height, self.width):
            raise InputError(f"camera intrinsics are for {self.width}x{self.height} images but the depth image is "
                             f"{shape[1]}x{shape[0]}: publish camera_info of the depth-aligned image")


@dataclass(frozen=True)
class Located:
    """3D positions of N objects in the camera's optical frame, columnar.

    Attributes:
        centre: [N, 3] float64 centre of each object's axis-aligned extent, metres; NaN where not located.
        size: [N, 3] float64 extent along x, y, z (of the visible surface), metres; NaN where not located.
        pixels: [N] int64 valid depth pixels the position was taken from (0 where not located).
    """

    centre: np.ndarray
    size: np.ndarray
    pixels: np.ndarray

    @property
    def located(self) -> np.ndarray:
        """[N] bool: the object has a position."""
        return self.pixels > 0

    def __len__(self) -> int:
        return len(self.pixels)


@dataclass(frozen=True)
class DepthRange:
    """Valid depth readings of a sensor, and how many an object needs for a position."""

    min_depth: float = 0.1
    max_depth: float = 50.0
    min_pixels: int = 20

    @classmethod
    def of(cls, options) -> DepthRange:
        """From the configuration's ``depth_min``, ``depth_max`` and ``min_depth_pixels``."""
        return cls(options["depth_min"], options["depth_max"], options["min_depth_pixels"])

    def __post_init__(self):
        if not 0 <= self.min_depth < self.max_depth:
            raise InputError(f"depth range {self.min_depth}..{self.max_depth} m: need 0 <= depth_min < depth_max")
        if self.min_pixels < 1:
            raise InputError(f"min_depth_pixels {self.min_pixels}: an object needs at least one pixel")


def surface_depths(depths: np.ndarray) -> np.ndarray:
    """[P] valid depths (metres, > 0) of one object's pixels -> [P] bool, those on its visible
    surface: the nearest substantial mode of the log-depth histogram and the bins around it that
    still hold a tenth of it (see the module docstring). All False for no depths."""
    depths = np.asarray(depths, dtype=np.float64).reshape(-1)
    if depths.size == 0:
        return np.zeros(0, bool)
    logs = np.log(depths)
    bins = np.floor((logs - logs.min()) / DEPTH_BIN).astype(np.int64)
    counts = np.bincount(bins)
    mass = np.convolve(counts, np.ones(3), mode="same")  # a surface on a bin edge splits over two bins
    padded = np.pad(mass, 1, constant_values=-1.0)
    peak = (mass >= padded[:-2]) & (mass >= padded[2:])
    substantial = peak & (mass >= MODE_SHARE * mass.max())
    mode = int(np.flatnonzero(substantial)[0])  # nearest: bins grow with depth
    mode = max(range(max(mode - 1, 0), min(mode + 2, len(counts))), key=lambda b: counts[b])
    low = high = mode
    floor = SURFACE_SHARE * counts[mode]
    while low > 0 and counts[low - 1] >= floor:
        low -= 1
    while high < len(counts) - 1 and counts[high + 1] >= floor:
        high += 1
    return (bins >= low) & (bins <= high)


def locate(regions: list[tuple[np.ndarray, np.ndarray]], depth_m: np.ndarray, intrinsics: Intrinsics,
           depth_range: DepthRange = DepthRange()) -> Located:
    """Each object's pixels -> its 3D centre and extent.

    Args:
        regions: per object, (rows, cols) int arrays of its pixels (``object_regions``).
        depth_m: [H, W] float depth in metres aligned to the image, NaN where unknown (``depth_in_metres``).
        intrinsics: of that image; InputError if its size differs.
        depth_range: readings outside it are invalid; objects with fewer valid pixels get no position.

    Returns:
        Located for the N objects.
    """
    intrinsics.check_image(depth_m.shape)
    n = len(regions)
    centre, size = np.full((n, 3), np.nan), np.full((n, 3), np.nan)
    pixels = np.zeros(n, np.int64)
    for i, (rows, cols) in enumerate(regions):
        z = depth_m[rows, cols].astype(np.float64)
        valid = np.isfinite(z) & (z >= depth_range.min_depth) & (z <= depth_range.max_depth)
        if valid.sum() < depth_range.min_pixels:
            continue
        rows, cols, z = rows[valid], cols[valid], z[valid]
        surface = surface_depths(z)
        if surface.sum() < depth_range.min_pixels:
            continue
        rows, cols, z = rows[surface], cols[surface], z[surface]
        points = intrinsics.back_project(rows, cols, z)
        low, high = np.percentile(points, EXTENT_PERCENTILES, axis=0)
        centre[i], size[i], pixels[i] = (low + high) / 2, high - low, len(z)
    return Located(centre, size, pixels)


def object_regions(boxes: np.ndarray, ids: np.ndarray, shape: tuple[int, int], instance_mask: np.ndarray | None = None,
                   foreground: np.ndarray | None = None, min_pixels: int = 1,
                   crops: dict[int, np.ndarray | None] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The pixels of each object, as (rows, cols): its segmenter mask (``instance_mask == id``) where
    it has one; else the foreground inside its box where that holds ``min_pixels``; else the whole
    box (``locate`` keeps the nearest surface of it).

    Args:
        boxes: [N, 4] xyxy boxes, x2/y2 exclusive (clipped to the image).
        ids: [N] object ids (the instance mask's values).
        shape: (H, W) of the image.
        instance_mask: optional [H, W] uint16 instance image.
        foreground: optional [H, W] bool foreground mask.
        crops: optional id -> [4] box of each drawn instance's crop (``instances.instance_regions``):
            which ids the instance mask holds and where, so that each is found in its box, not the
            frame (None: read from the mask, at the frame's cost).
    """
    height, width = shape
    if crops is None:
        crops = {} if instance_mask is None else dict.fromkeys(set(np.unique(instance_mask).tolist()) - {0})
    regions = []
    for box, object_id in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(ids).reshape(-1)):
        if int(object_id) in crops:
            regions.append(instance_pixels(instance_mask, int(object_id), crops[int(object_id)]))
            continue
        x1, y1 = int(np.clip(np.floor(box[0]), 0, width)), int(np.clip(np.floor(box[1]), 0, height))
        x2, y2 = int(np.clip(np.ceil(box[2]), 0, width)), int(np.clip(np.ceil(box[3]), 0, height))
        inside = np.ones((y2 - y1, x2 - x1), bool)
        if foreground is not None and foreground[y1:y2, x1:x2].sum() >= min_pixels:
            inside = foreground[y1:y2, x1:x2]
        rows, cols = np.nonzero(inside)
        regions.append((rows + y1, cols + x1))
    return regions


def locate_objects(result: FrameResult, boxes: np.ndarray, ids: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics,
                   depth_range: DepthRange = DepthRange()) -> Located:
    """3D positions of the frame's objects given by [N, 4] ``boxes`` and [N] ``ids``: their pixels
    (``object_regions`` from the result's instance mask and foreground) and the frame's aligned
    ``depth`` image (16UC1 millimetres or 32FC1 metres)."""
    metres = depth_in_metres(depth)
    crops = instance_regions(result) if result.instance_mask is not None else None
    regions = object_regions(boxes, ids, metres.shape[:2], result.instance_mask, result.foreground,
                             depth_range.min_pixels, crops)
    return locate(regions, metres, intrinsics, depth_range)
