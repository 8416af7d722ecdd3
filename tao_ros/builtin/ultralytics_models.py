"""Ultralytics YOLO plugins: a detector with ultralytics' own trackers, and a pose feature.

Weights are never downloaded. ``weights`` is either
- a model config (``yolov8n.yaml``): the architecture with random weights, for tests;
- a state dict saved with ``torch.save(model.state_dict(), path)``, loaded with
  ``torch.load(weights_only=True)`` into the architecture named by ``architecture``;
- an official ultralytics checkpoint (a pickle): only with ``trust_checkpoint: true``, because
  loading it runs code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tao_ros.builtin.weights import load_strictly, load_tensors
from tao_ros.core.geometry import iou_matrix
from tao_ros.errors import PluginError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext

COCO_KEYPOINTS = 17


def load_yolo(weights: str, architecture: str, trust_checkpoint: bool, device: str):
    """Build an ultralytics YOLO model as the module docstring describes; PluginError naming the path."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # ultralytics must never reach for the network
    if not weights:
        raise PluginError("no weights configured: set the plugin's 'weights' to a .pt file (or a model .yaml "
                          "for random weights)")
    from ultralytics import YOLO

    if weights.endswith((".yaml", ".yml")):
        model = YOLO(weights)
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise PluginError(f"weights file {path} not found; nothing is downloaded: copy the file there or "
                              "set the plugin's 'weights' parameter to its path")
        if trust_checkpoint:
            model = YOLO(str(path))
        else:
            state = load_tensors(path, "if it is an official ultralytics checkpoint you trust, set "
                                       "'trust_checkpoint: true'")
            model = YOLO(architecture)
            load_strictly(model.model, state, path, architecture, "architecture")
    model.to(device)
    return model


class UltralyticsDetector:
    """YOLO detections with track ids from ultralytics' trackers (ByteTrack or BoT-SORT)."""

    name = "ultralytics"
    params = {
        "weights": Param("", "Weights file (.pt) or model config (.yaml, random weights)."),
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
        self.model = load_yolo(params["weights"], params["architecture"], params["trust_checkpoint"], params["device"])

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
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        cls = boxes.cls.cpu().numpy().astype(int)
        ids = boxes.id.cpu().numpy().astype(np.int64) if boxes.id is not None else None
        keypoints = result.keypoints.data.cpu().numpy() if result.keypoints is not None else None
        return Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(),
                          np.array([result.names[c] for c in cls]), ids, keypoints)


class PoseFeature:
    """Body pose: COCO keypoints relative to the box (x, y in [0, 1]), from the detector's keypoints or
    from an ultralytics pose model matched to the boxes. Invisible keypoints sit at the box centre."""

    name = "pose"
    columns = tuple(f"{axis}{k}" for k in range(COCO_KEYPOINTS) for axis in ("x", "y"))
    params = {
        "weights": Param("", "Pose model weights (.pt) or config (.yaml); '' = use the detector's keypoints."),
        "architecture": Param("yolov8n-pose.yaml", "Model config the state-dict weights belong to."),
        "trust_checkpoint": Param(False, "Allow a pickled ultralytics checkpoint (runs code from the file)."),
        "device": Param("cpu", "'cpu', 'cuda' or 'cuda:N'."),
        "min_visibility": Param(0.5, "Keypoints less visible than this are treated as unseen.", minimum=0.0),
        "match_iou": Param(0.3, "Least IoU between a pose box and a detection.", minimum=0.0, maximum=1.0),
    }

    def __init__(self, **params):
        self.p = params
        self.model = None
        if params["weights"]:
            self.model = load_yolo(params["weights"], params["architecture"], params["trust_checkpoint"],
                                   params["device"])

    def reset(self) -> None:
        """Stateless across frames."""

    def _keypoints(self, context: FrameContext, detections: Detections) -> np.ndarray:
        """[N, 17, 3] keypoints per detection, NaN where none matched."""
        keypoints = np.full((len(detections), COCO_KEYPOINTS, 3), np.nan)
        if self.model is None:
            if detections.keypoints is None:
                raise PluginError("pose feature has no keypoints: use a pose detector or set pose.weights")
            keypoints[:, :detections.keypoints.shape[1]] = detections.keypoints[:, :COCO_KEYPOINTS]
            return keypoints
        result = self.model.predict(context.image, device=self.p["device"], verbose=False)[0]
        if result.keypoints is None or len(result.boxes) == 0:
            return keypoints
        iou = iou_matrix(detections.xyxy, result.boxes.xyxy.cpu().numpy())
        best = iou.argmax(axis=1) if iou.size else np.zeros(len(detections), dtype=int)
        found = iou[np.arange(len(detections)), best] >= self.p["match_iou"] if iou.size else best.astype(bool)
        keypoints[found] = result.keypoints.data.cpu().numpy()[best[found]]
        return keypoints

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        keypoints = self._keypoints(context, detections)
        xy = keypoints[..., :2] - detections.xyxy[:, None, :2]
        size = np.maximum(detections.xyxy[:, None, 2:] - detections.xyxy[:, None, :2], 1.0)
        relative = xy / size
        unseen = ~(keypoints[..., 2] >= self.p["min_visibility"])
        relative[unseen & np.isfinite(keypoints[..., 0])] = 0.5
        return relative.reshape(len(detections), -1)


@hookimpl
def tao_ros_add_detectors():
    return [UltralyticsDetector]


@hookimpl
def tao_ros_add_features():
    return [PoseFeature]
