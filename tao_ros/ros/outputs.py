"""Output messages of one processed frame, each stamped with the header of the input it came from."""

from __future__ import annotations

import numpy as np

from tao_ros.core.instances import instance_boxes
from tao_ros.core.localization import DepthRange, Intrinsics, Located, locate_objects
from tao_ros.core.pipeline import AnomalyPipeline
from tao_ros.io.messages import MessageTypes, detections_to_msg, numpy_to_image
from tao_ros.io.messages3d import detections3d_to_msg, markers_msg
from tao_ros.ros.handoff import FrameOutputs
from tao_ros.types import FrameResult


def output_messages(outputs: FrameOutputs, pipeline: AnomalyPipeline, types: MessageTypes, overlay: bool = False,
                    intrinsics: Intrinsics | None = None, depth_range: DepthRange = DepthRange(),
                    markers: bool = False, marker_lifetime: float = 0.5, masks: bool = True
                    ) -> tuple[dict[str, object], Located | None]:
    """(output topic relative to the node -> message, the anomalous objects' 3D positions or None).

    Always the detections; with ``masks`` the instance and anomaly masks (full-frame images: made
    only for a subscriber); with ``overlay`` the annotated image; where the frame has depth and
    ``intrinsics`` are known, the 3D detections, and with ``markers`` their RViz markers."""
    result, header = outputs.result, outputs.header
    height, width = outputs.image.shape[:2]
    boxes, ids, labels, scores = anomalous_objects(result)
    # hypothesis.score: the share of normal training objects scoring lower, a confidence in [0, 1]
    # (the raw summed score is in objects.csv and on the overlay)
    confidence = pipeline.normal_share(scores)
    messages = {"~/detections": detections_to_msg(types, header, boxes, ids, labels, confidence)}
    if masks:
        instance = result.instance_mask if result.instance_mask is not None else np.zeros((height, width), np.uint16)
        # pixels of the objects with a mask, and the boxes of those without one (all, with no segmenter)
        masked = set() if result.instance_ids is None else set(result.instance_ids.tolist())
        unmasked = np.array([int(i) not in masked for i in ids], dtype=bool)
        anomaly = (instance > 0) | boxes_mask(boxes[unmasked], (height, width))
        messages["~/instance_mask"] = numpy_to_image(types, header, instance, "mono16")
        messages["~/anomaly_mask"] = numpy_to_image(types, header, anomaly.astype(np.uint8) * 255, "mono8")
    if overlay:
        from tao_ros.io.overlay import draw_overlay

        messages["~/overlay"] = numpy_to_image(types, header, draw_overlay(outputs.image, result), "bgr8")
    located = None
    if outputs.depth is not None and intrinsics is not None:
        located = locate_objects(result, boxes, ids, outputs.depth, intrinsics, depth_range)
        messages["~/detections_3d"] = detections3d_to_msg(types, header, located, ids, labels, confidence)
        if markers:
            messages["~/markers"] = markers_msg(types, header, located, ids, labels, confidence, marker_lifetime)
    return messages, located


def anomalous_objects(result: FrameResult) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """Boxes, ids, labels and scores of the frame's anomalous objects: the merged anomalous boxes,
    and when the pipeline segments, the segmented objects with boxes from their masks (an
    instance's pixels holding its object id, its label the object's last detector label) in place
    of their merged boxes. An anomalous object the segmenter gives no mask (a still object under
    the foreground segmenter) keeps its merged box: every anomalous object is published."""
    merged = result.merged
    if result.instance_mask is None:
        return merged.xyxy, merged.ids, list(merged.labels), result.merged_scores
    labels_by_id = dict(zip(result.instance_ids.tolist(), result.instance_labels or []))
    found = instance_boxes(result)
    segmented = {object_id for object_id, _, _ in found}
    unmasked = [k for k, object_id in enumerate(merged.ids.tolist()) if object_id not in segmented]
    boxes = np.concatenate([np.array([box for _, box, _ in found]).reshape(-1, 4), merged.xyxy[unmasked]])
    ids = np.concatenate([np.array([i for i, _, _ in found], dtype=np.int64), merged.ids[unmasked]])
    labels = [labels_by_id.get(i, "object") for i, _, _ in found] + [str(merged.labels[k]) for k in unmasked]
    scores = np.concatenate([np.array([score for _, _, score in found]), result.merged_scores[unmasked]])
    return boxes, ids, labels, scores


def boxes_mask(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[N, 4] boxes -> [H, W] bool mask covering them."""
    mask = np.zeros(shape, bool)
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4).astype(int):
        mask[max(y1, 0):y2, max(x1, 0):x2] = True
    return mask
