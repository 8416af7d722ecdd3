"""The ultralytics YOLO detector, tracked by ultralytics' own trackers (ByteTrack, BoT-SORT), and
the conversion of its results that the other pretrained plugins share. Weights in every form
``builtin.weights`` loads (state dicts, trusted checkpoints, exports, configs)."""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.weights import load_yolo
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext


def predict_boxes(model, image: np.ndarray, confidence: float, image_size: int, device: str) -> Detections:
    """One frame's boxes from an ultralytics model, one class per object (class-agnostic suppression:
    a cyclist is boxed once, as bicycle or motorcycle, not twice)."""
    result = model.predict(image, conf=confidence, imgsz=image_size, device=device, agnostic_nms=True,
                           verbose=False)[0]
    return result_detections(result)


def result_detections(result) -> Detections:
    """An ultralytics ``Results`` -> Detections (labels from the model's class names, keypoints of a
    pose model, track ids where a tracker gave them)."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty()
    cls = boxes.cls.cpu().numpy().astype(int)
    ids = boxes.id.cpu().numpy().astype(np.int64) if boxes.id is not None else None
    keypoints = result.keypoints.data.cpu().numpy() if result.keypoints is not None else None
    return Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), np.array([result.names[c] for c in cls]),
                      ids, keypoints)


class UltralyticsDetector:
    """YOLO detections with track ids from ultralytics' trackers (ByteTrack or BoT-SORT)."""

    name = "ultralytics"
    params = {
        "weights": Param("", "Weights file (.pt) or model config (.yaml, random weights).", content=True),
        "architecture": Param("yolov8n.yaml", "Model config the state-dict weights belong to."),
        "trust_checkpoint": Param(False, "Allow a pickled ultralytics checkpoint (runs code from the file)."),
        "classes": Param([-1], "Class indices to keep; [-1] keeps all."),
        "confidence": Param(0.25, "Least detection confidence.", minimum=0.0, maximum=1.0),
        "image_size": Param(640, "Inference image size (pixels).", minimum=32),
        "device": Param("cpu", "'cpu', 'cuda' or 'cuda:N'."),
        "tracker": Param("bytetrack.yaml", "Ultralytics tracker config.", choices=("bytetrack.yaml", "botsort.yaml")),
    }

    def __init__(self, **params):
        self.p = params
        self.model = load_yolo(params["weights"], params["architecture"], params["trust_checkpoint"], params["device"],
                               ("detect", "pose", "segment"))

    def reset(self) -> None:
        predictor = getattr(self.model, "predictor", None)
        if predictor is not None and getattr(predictor, "trackers", None):
            for tracker in predictor.trackers:
                tracker.reset()

    def detect(self, context: FrameContext) -> Detections:
        classes = None if -1 in self.p["classes"] else self.p["classes"]
        result = self.model.track(context.image, persist=True, tracker=self.p["tracker"], conf=self.p["confidence"],
                                  classes=classes, imgsz=self.p["image_size"], device=self.p["device"],
                                  verbose=False)[0]
        return result_detections(result)


@hookimpl
def tao_ros_add_detectors():
    return [UltralyticsDetector]


