"""Debug overlay: instance masks, anomalous boxes and scores drawn on a frame."""

from __future__ import annotations

import numpy as np

from tao_ros.types import FrameResult


def instance_colours(ids: np.ndarray) -> np.ndarray:
    """[K] instance ids -> [K, 3] uint8 BGR colours, stable per id."""
    ids = np.asarray(ids, dtype=np.int64)
    hue = (ids * 47) % 180
    import cv2

    hsv = np.stack([hue, np.full_like(hue, 220), np.full_like(hue, 255)], axis=1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]


def draw_overlay(image: np.ndarray, result: FrameResult, alpha: float = 0.5) -> np.ndarray:
    """[H, W, 3] uint8 BGR frame + its result -> [H, W, 3] uint8 BGR: masks tinted per instance,
    normal objects in thin green boxes, anomalous (merged) boxes in red with their scores."""
    import cv2

    canvas = image.copy()
    if result.instance_mask is not None and result.instance_ids is not None and len(result.instance_ids):
        colours = instance_colours(result.instance_ids)
        tint = canvas.copy()
        for instance_id, colour in zip(result.instance_ids, colours):
            tint[result.instance_mask == instance_id] = colour
        canvas = cv2.addWeighted(tint, alpha, canvas, 1 - alpha, 0)
    for box in result.detections.xyxy[~result.anomalous].astype(int):
        cv2.rectangle(canvas, tuple(box[:2]), tuple(box[2:] - 1), (0, 200, 0), 1)
    for box, score in zip(result.merged.xyxy.astype(int), result.merged_scores):
        cv2.rectangle(canvas, tuple(box[:2]), tuple(box[2:] - 1), (0, 0, 255), 2)
        cv2.putText(canvas, f"{score:.1f}", (int(box[0]), max(10, int(box[1]) - 3)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 255), 1, cv2.LINE_AA)
    return canvas
