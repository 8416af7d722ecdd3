"""Accuracy of 3D positions against exact ground truth: every pixel of a ground-truth instance
back-projected with the exact depth gives the object's true visible extent."""

from __future__ import annotations

import numpy as np

from tao_ros.core.localization import Intrinsics


def true_extent(mask: np.ndarray, depth_m: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """[H, W] bool pixels of one object (non-empty) and the exact [H, W] depth (metres) -> ([3]
    centre, [3] size) of the axis-aligned box around their back-projections."""
    rows, cols = np.nonzero(mask)
    points = intrinsics.back_project(rows, cols, depth_m[rows, cols].astype(np.float64))
    low, high = points.min(axis=0), points.max(axis=0)
    return (low + high) / 2, high - low


def true_extents(instances: np.ndarray, depth_m: np.ndarray, intrinsics: Intrinsics) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """[H, W] instance ids (0 = none) and exact [H, W] depth (metres) -> id -> ([3] centre, [3] size)
    of the axis-aligned box around the instance's visible surface."""
    return {int(i): true_extent(instances == i, depth_m, intrinsics) for i in np.unique(instances[instances > 0])}


def box_mask(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[4] xyxy box -> [H, W] bool of its pixels (clipped to the image)."""
    mask = np.zeros(shape, bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = True
    return mask


def instance_under(boxes: np.ndarray, instances: np.ndarray, min_share: float = 0.3) -> np.ndarray:
    """[N, 4] xyxy boxes -> [N] the ground-truth instance with most pixels in each box (0 where none
    fills ``min_share`` of it)."""
    found = np.zeros(len(boxes), np.int64)
    height, width = instances.shape
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        patch = instances[int(max(y1, 0)):int(min(y2, height)), int(max(x1, 0)):int(min(x2, width))]
        ids, counts = np.unique(patch[patch > 0], return_counts=True)
        if len(ids) and counts.max() >= min_share * patch.size:
            found[i] = ids[counts.argmax()]
    return found


def location_errors(centre: np.ndarray, size: np.ndarray, true_centre: np.ndarray, true_size: np.ndarray
                    ) -> tuple[float, float, float]:
    """-> (distance to the true centre in metres, centre error relative to that distance, mean
    absolute extent error in metres over x and y; z is the depth of a surface, not compared)."""
    distance = float(np.linalg.norm(true_centre))
    error = float(np.linalg.norm(np.asarray(centre) - true_centre))
    return distance, error / distance, float(np.abs(np.asarray(size)[:2] - true_size[:2]).mean())
