"""Ultralytics YOLO plugins: a detector with ultralytics' own trackers, a pose feature, and an
appearance feature from the YOLO backbone.

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

from tao_ros.builtin.features import TrackAveragedFeature
from tao_ros.builtin.learned import Reservoir
from tao_ros.builtin.weights import load_strictly, load_tensors
from tao_ros.core.geometry import iou_matrix
from tao_ros.errors import InputError, PluginError
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


class AppearanceFeature(TrackAveragedFeature):
    """What an object looks like: the YOLO backbone's feature map averaged inside the object's box
    (RoI align), unit length, projected on the principal components of normal objects' embeddings
    (learned in 'fit'), averaged along the track.

    Deep appearance is the second kind of evidence of the object-level methods this pipeline follows
    (Reiss & Hoshen's AccI-VAD use CLIP features): it tells a cyclist from a walker at walking pace.
    It is only as good as the weights: with pretrained YOLO weights (``weights``) it describes
    objects; a model config (random weights) is for tests. The projection is stored in the model
    file as arrays, the backbone is read from ``weights`` (recorded with the model's settings).
    """

    name = "appearance"
    columns = tuple(f"component_{i}" for i in range(16))  # for the default 'components'; each instance its own
    params = {
        "weights": Param("", "YOLO weights file (.pt state dict, or a trusted checkpoint) or model config "
                             "(.yaml, random weights: for tests only)."),
        "architecture": Param("yolov8n.yaml", "Model config the state-dict weights belong to."),
        "trust_checkpoint": Param(False, "Allow a pickled ultralytics checkpoint (runs code from the file)."),
        "device": Param("cpu", "'cpu', 'cuda' or 'cuda:N'."),
        "layer": Param(6, "Backbone layer whose output is pooled (yolov8: 4 at 1/8 resolution, 6 at 1/16, "
                          "9 at 1/32).", minimum=0),
        "image_size": Param(640, "The frame is scaled so that its longer side has this many pixels (YOLO's "
                                 "training scale) before the backbone.", minimum=32),
        "components": Param(16, "Principal components of normal embeddings kept.", minimum=1),
        "window": Param(5, "Frames over which the description is averaged along the object's track.", minimum=1),
        "min_samples": Param(1, "The description is unknown until the track has this many measurements.",
                             minimum=1),
        "max_samples": Param(20000, "At most this many normal objects are kept to learn the projection "
                                    "(reservoir).", minimum=2),
        "seed": Param(0, "Seed of the reservoir sampling.", minimum=0),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.columns = tuple(f"component_{i}" for i in range(params["components"]))
        self.backbone = self._backbone(load_yolo(params["weights"], params["architecture"],
                                                 params["trust_checkpoint"], params["device"]))
        self.samples = Reservoir(params["max_samples"], params["seed"])
        self.mean: np.ndarray | None = None
        self.axes: np.ndarray | None = None  # [components, C]

    def _backbone(self, model):
        """The layers up to ``layer``: they must run one after the other (no skip inputs)."""
        layers = model.model.model
        layer = self.p["layer"]
        if layer >= len(layers) or any(m.f != -1 for m in layers[1:layer + 1]):
            raise PluginError(f"appearance.layer {layer} is not in the backbone of {self.p['weights']!r} (its layers "
                              "up to there must run in sequence): choose a lower layer, e.g. 6 for yolov8")
        return layers[:layer + 1].eval()

    def embed(self, context: FrameContext, detections: Detections) -> np.ndarray:
        """[N, C] unit-length backbone features averaged inside each box."""
        import cv2
        import torch
        from torchvision.ops import roi_align

        height, width = context.image.shape[:2]
        scale = self.p["image_size"] / max(height, width)
        # sides a multiple of 32, the backbone's largest stride, so that every layer sees whole cells
        size = (max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32))
        rgb = cv2.cvtColor(cv2.resize(context.image, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        device = self.p["device"]
        with torch.inference_mode():
            features = self.backbone(torch.from_numpy(rgb).to(device).permute(2, 0, 1)[None].float() / 255.0)
            to_input = np.tile([size[0] / width, size[1] / height], 2)
            boxes = torch.from_numpy(detections.xyxy * to_input).float().to(device)
            pooled = roi_align(features.float(), [boxes], output_size=2, spatial_scale=features.shape[-1] / size[0],
                               sampling_ratio=2, aligned=True).mean(dim=(2, 3))
            return torch.nn.functional.normalize(pooled, dim=1).cpu().numpy().astype(np.float64)

    def collect(self, context: FrameContext, detections: Detections) -> None:
        if len(detections):
            for embedding in self.embed(context, detections):
                self.samples.add(embedding)

    def fit(self) -> None:
        from sklearn.decomposition import PCA

        samples = self.samples.take()
        if len(samples) <= self.p["components"]:
            raise InputError(f"appearance needs more than {self.p['components']} normal objects to learn from, got "
                             f"{len(samples)}: fit on more normal footage or lower appearance.components")
        pca = PCA(self.p["components"], random_state=self.p["seed"]).fit(np.stack(samples))
        self.mean, self.axes = pca.mean_, pca.components_

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.axes is None else {"mean": self.mean, "axes": self.axes}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        axes = np.asarray(state["axes"])
        if axes.shape[0] != self.p["components"]:
            raise InputError(f"appearance projection in the model file has {axes.shape[0]} components, "
                             f"appearance.components is {self.p['components']}: refit, or set it as it was")
        self.mean, self.axes = np.asarray(state["mean"]), axes

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        if self.axes is None:
            raise InputError("appearance is not fitted: run 'tao-ros fit' on normal footage first")
        if not len(detections):
            return np.zeros((0, len(self.columns)))
        projected = (self.embed(context, detections) - self.mean) @ self.axes.T
        return self.history.smooth(detections.ids, projected)


@hookimpl
def tao_ros_add_detectors():
    return [UltralyticsDetector]


@hookimpl
def tao_ros_add_features():
    return [PoseFeature, AppearanceFeature]
