"""Features learned from normal footage during 'fit': a small motion auto-encoder (torch, CPU is enough)."""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.features import TrackAveragedFeature, dense_flow
from tao_ros.errors import InputError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext

CROP = 16  # pixels per side of the flow crop the network sees


def flow_crops(flow: np.ndarray, detections: Detections) -> np.ndarray:
    """[H, W, 2] flow and N boxes -> [N, 2, CROP, CROP] float32 flow inside each box, resized, in box
    heights per frame (so that near and far objects compare)."""
    import cv2

    crops = np.zeros((len(detections), 2, CROP, CROP), np.float32)
    height, width = flow.shape[:2]
    boxes = np.clip(detections.xyxy, 0, [width, height, width, height]).astype(int)  # negative would wrap
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        patch = flow[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
        if patch.size:
            crops[i] = cv2.resize(patch, (CROP, CROP), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
            crops[i] /= max(y2 - y1, 1)
    return crops


class Reservoir:
    """A uniform random sample of at most ``capacity`` items of a stream of unknown length (reservoir
    sampling): what a learned feature keeps of the normal footage, in bounded memory however long."""

    def __init__(self, capacity: int, seed: int):
        self.capacity = capacity
        self.items: list = []
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def add(self, item) -> None:
        self.seen += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
        else:
            slot = self.rng.integers(self.seen)
            if slot < self.capacity:
                self.items[slot] = item

    def take(self) -> list:
        """The sample; the reservoir is empty afterwards."""
        items, self.items, self.seen = self.items, [], 0
        return items


def build_autoencoder(code_size: int):
    """Convolutional auto-encoder [B, 2, 16, 16] -> [B, 2, 16, 16] through a ``code_size`` bottleneck."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(2, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 4 * 4, code_size), nn.ReLU(),
        nn.Linear(code_size, 32 * 4 * 4), nn.ReLU(), nn.Unflatten(1, (32, 4, 4)),
        nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 2, 4, stride=2, padding=1),
    )


class MotionAutoencoderFeature(TrackAveragedFeature):
    """How unlike normal motion an object's motion pattern is: the reconstruction error of a small
    convolutional auto-encoder trained during 'fit' on the optical flow inside normal objects' boxes
    (in box heights per frame, 16x16), averaged along the object's track.

    It sees the layout of the motion, not only its amount: limbs swinging against a rigidly gliding
    body, a thrown object leaving a person, motion against the usual direction. Its weights are
    stored in the model file as arrays (no pickled code).
    """

    name = "motion_ae"
    columns = ("reconstruction_error",)
    params = {
        "window": Param(5, "Frames over which the error is averaged along the object's track.", minimum=1),
        "min_samples": Param(1, "The error is unknown until the track has this many measurements.", minimum=1),
        "preset": Param("medium", "DIS optical flow preset.", choices=("ultrafast", "fast", "medium")),
        "code_size": Param(16, "Width of the auto-encoder's bottleneck.", minimum=1),
        "epochs": Param(10, "Training passes over the normal objects.", minimum=1),
        "max_samples": Param(40000, "At most this many normal objects are kept for training (reservoir).",
                             minimum=64),
        "seed": Param(0, "Seed of the sampling and of the network's initial weights.", minimum=0),
        "device": Param("cpu", "Device the network runs on ('cpu', 'cuda')."),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.network = None
        self.scale = 1.0
        self.samples = Reservoir(params["max_samples"], params["seed"])

    def collect(self, context: FrameContext, detections: Detections) -> None:
        flow = dense_flow(context, self.p["preset"])
        if flow is None or not len(detections):
            return
        for crop in flow_crops(flow, detections):
            self.samples.add(crop)

    def fit(self) -> None:
        import torch

        samples = self.samples.take()
        if len(samples) < 64:
            raise InputError(f"motion_ae needs at least 64 moving normal objects to learn from, got "
                             f"{len(samples)}: fit on more normal footage")
        data = np.stack(samples)
        self.scale = float(data.std()) or 1.0
        torch.manual_seed(self.p["seed"])
        network = build_autoencoder(self.p["code_size"]).to(self.p["device"])
        tensor = torch.from_numpy(data / self.scale).float().to(self.p["device"])
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(self.p["seed"])
        for _ in range(self.p["epochs"]):
            for batch in torch.randperm(len(tensor), generator=generator).split(256):
                optimizer.zero_grad()
                loss = torch.mean((network(tensor[batch]) - tensor[batch]) ** 2)
                loss.backward()
                optimizer.step()
        self.network = network.eval()

    def state(self) -> dict[str, np.ndarray]:
        if self.network is None:
            return {}
        arrays = {f"weights/{k}": v.detach().cpu().numpy() for k, v in self.network.state_dict().items()}
        arrays["scale"] = np.array([self.scale])
        return arrays

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        import torch

        network = build_autoencoder(self.p["code_size"])
        weights = {k[len("weights/"):]: torch.from_numpy(np.asarray(v)) for k, v in state.items()
                   if k.startswith("weights/")}
        try:
            network.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise InputError(f"motion_ae weights in the model file do not fit code_size {self.p['code_size']}: "
                             f"refit, or set motion_ae.code_size as it was ({str(exc).splitlines()[0]})") from None
        self.network = network.to(self.p["device"]).eval()
        self.scale = float(np.asarray(state["scale"]).reshape(-1)[0])

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        import torch

        if self.network is None:
            raise InputError("motion_ae is not fitted: run 'tao-ros fit' on normal footage first")
        errors = np.full((len(detections), 1), np.nan)
        flow = dense_flow(context, self.p["preset"])
        if flow is not None and len(detections):
            crops = torch.from_numpy(flow_crops(flow, detections) / self.scale).to(self.p["device"])
            with torch.inference_mode():
                errors[:, 0] = torch.mean((self.network(crops) - crops) ** 2, dim=(1, 2, 3)).cpu().numpy()
        return self.history.smooth(detections.ids, errors)


@hookimpl
def tao_ros_add_features():
    return [MotionAutoencoderFeature]
