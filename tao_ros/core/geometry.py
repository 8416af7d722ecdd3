"""Pure numpy box geometry. Boxes are [N, 4] ``xyxy`` with x2/y2 exclusive; every function accepts N = 0."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components


def box_area(xyxy: np.ndarray) -> np.ndarray:
    """[N, 4] boxes -> [N] areas (0 for degenerate boxes)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, 4] and [M, 4] boxes -> [N, M] areas of their intersections."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    return wh[..., 0] * wh[..., 1]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, 4] and [M, 4] boxes -> [N, M] intersection over union (0 where the union is empty)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter = intersection_matrix(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def containment_matrix(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """[N, 4] and [M, 4] boxes -> [N, M] share of each ``inner`` box's area inside each ``outer`` box
    (0 for degenerate inner boxes)."""
    inner = np.asarray(inner, dtype=np.float64).reshape(-1, 4)
    shared = intersection_matrix(inner, outer)
    area = box_area(inner)[:, None]
    return np.divide(shared, area, out=np.zeros_like(shared), where=area > 0)


def covered_share(xyxy: np.ndarray) -> np.ndarray:
    """[N, 4] boxes -> [N] largest share of each box's area that one other box of them covers (0 for a
    box that overlaps no other)."""
    share = containment_matrix(xyxy, xyxy)
    np.fill_diagonal(share, 0.0)
    return share.max(axis=1, initial=0.0)


def enclosing_box(xyxy: np.ndarray) -> np.ndarray:
    """[N, 4] boxes (N >= 1) -> [4] smallest box containing them all."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xyxy[:, :2].min(axis=0), xyxy[:, 2:].max(axis=0)])


def merge_overlapping(xyxy: np.ndarray, iou_threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Replace groups of boxes overlapping with IoU > ``iou_threshold`` by their enclosing box.

    Repeats until no pair of output boxes exceeds the threshold (an enclosing box can reach new
    boxes). Each round merges whole connected components of the overlap graph, so the result does
    not depend on input order.

    Args:
        xyxy: [N, 4] boxes.
        iou_threshold: pairs strictly above it are merged (the paper's tau = 0.3).

    Returns:
        merged: [M, 4] boxes, M <= N, sorted lexicographically by (x1, y1, x2, y2).
        group: [N] index into ``merged`` of the box that absorbed each input box.
    """
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    group = np.arange(len(boxes))
    while len(boxes) > 1:
        overlap = iou_matrix(boxes, boxes) > iou_threshold
        n_groups, labels = connected_components(csr_matrix(overlap), directed=False)
        if n_groups == len(boxes):
            break
        boxes = np.stack([enclosing_box(boxes[labels == g]) for g in range(n_groups)])
        group = labels[group]
    order = np.lexsort(boxes.T[::-1]) if len(boxes) else np.zeros(0, dtype=np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return boxes[order], rank[group] if len(group) else group


def clip_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """[N, 4] boxes -> [N, 4] boxes clipped to a ``width`` x ``height`` image."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
    xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, width)
    xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, height)
    return xyxy


def mask_to_box(mask: np.ndarray) -> np.ndarray | None:
    """[H, W] bool mask -> [4] xyxy box of its set pixels (x2/y2 exclusive), None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)
