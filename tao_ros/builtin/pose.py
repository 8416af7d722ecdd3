"""Body pose, the paper's second kind of evidence ("speed, pose and depth"): how a person holds
themselves, from a real pose model.

Keypoints come from MediaPipe's BlazePose landmark model (a ``.tflite`` file, run with LiteRT on
person crops, batched), from an ultralytics pose model matched to the boxes, or from the detector's
own keypoints. Either way the feature is the 17 COCO keypoints relative to the body: around the
hips' midpoint, in units of the person's height, each keypoint the model does not see at the hips
(visibility-masked). People too small to hold a pose, or partly behind another person, get no pose
(unknown), never a wrong one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tao_ros.builtin.features import TrackAveragedFeature
from tao_ros.builtin.shared_models import shared_model
from tao_ros.builtin.weights import exported_metadata, load_yolo, require_file, require_runtime
from tao_ros.core.geometry import covered_share, iou_matrix
from tao_ros.errors import PluginError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext, MaskCrop

COCO_KEYPOINTS = 17
LEFT_HIP, RIGHT_HIP = 11, 12
BLAZEPOSE_TO_COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
"""BlazePose landmark index of each COCO keypoint (nose, eyes, ears, shoulders, elbows, wrists, hips,
knees, ankles): the COCO 17 are a subset of BlazePose's 33."""


def square_crops(image: np.ndarray, xyxy: np.ndarray, size: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """[N, 4] boxes -> ([N, size, size, 3] uint8 crops, [N, 3] (x0, y0, pixels per crop pixel)): each
    box padded to a square of its longer side plus ``margin`` of it on every side, centred on the box,
    scaled to ``size``; outside the image is black."""
    import cv2

    crops = np.zeros((len(xyxy), size, size, 3), np.uint8)
    frames = np.zeros((len(xyxy), 3))
    for i, (x1, y1, x2, y2) in enumerate(xyxy):
        side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
        scale = size / max(side, 1.0)
        x0, y0 = (x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2
        to_crop = np.float32([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
        crops[i] = cv2.warpAffine(image, to_crop, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
        frames[i] = x0, y0, 1.0 / scale
    return crops, frames


class BlazePose:
    """MediaPipe BlazePose landmark model ("lite", "full" or "heavy" ``.tflite``) on person crops.

    Input [B, 256, 256, 3] RGB in [0, 1]; outputs per crop 39 landmarks x (x, y, z, visibility,
    presence) in crop pixels (the first 33 the body's; visibility a logit), a pose-present score
    and a person segmentation (logits over the crop, > 0 = the person).
    """

    def __init__(self, path: str, threads: int, margin: float, batch: int = 16):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(path, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        outputs = {tuple(o["shape"][1:]): o["index"] for o in self.interpreter.get_output_details()}
        shape = tuple(self.input["shape"])
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or (195,) not in outputs or (1,) not in outputs:
            raise PluginError(f"{path} is not a BlazePose landmark model (input {shape}, outputs "
                              f"{sorted(outputs)}); expected input [1, 256, 256, 3] and a [1, 195] landmark output")
        self.size, self.margin, self.batch_size = shape[1], margin, batch
        self.landmarks, self.present = outputs[(195,)], outputs[(1,)]
        self.segmentation = outputs.get((self.size, self.size, 1))  # None: a model without one
        self.allocated = 1
        # FrameContext.cache key of the person segmentations this model file gave in a frame, by box:
        # one inference gives landmarks and segmentation, and a person segmenter running the same file
        # reads what the pose feature computed instead of running the model again
        self.shared_key = ("blazepose", str(Path(path).resolve()))

    def _batches(self, image: np.ndarray, xyxy: np.ndarray):
        """Run the model on [N, 4] boxes' square crops, a batch at a time -> (slice of the boxes, [B, 3]
        crop frames (x0, y0, frame pixels per crop pixel)) per batch; the outputs are then read."""
        import cv2

        for start in range(0, len(xyxy), self.batch_size):
            boxes = xyxy[start:start + self.batch_size]
            crops, frames = square_crops(image, boxes, self.size, self.margin)
            rgb = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in crops]).astype(np.float32) / 255.0
            if len(boxes) != self.allocated:  # one call per batch of crops: resize the input once per size
                self.interpreter.resize_tensor_input(self.input["index"], [len(boxes), self.size, self.size, 3])
                self.interpreter.allocate_tensors()
                self.allocated = len(boxes)
            self.interpreter.set_tensor(self.input["index"], rgb)
            self.interpreter.invoke()
            yield slice(start, start + len(boxes)), frames

    def keypoints(self, image: np.ndarray, xyxy: np.ndarray, shared: dict | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """[H, W, 3] BGR frame and [N, 4] person boxes -> ([N, 17, 3] COCO keypoints (x, y in frame
        pixels, visibility in [0, 1]), [N] pose-present score). ``shared``: the frame's
        ``FrameContext.cache``, where each box's segmentation from the same inference is left under
        ``shared_key`` for ``masks``."""
        from scipy.special import expit

        keypoints, present = np.zeros((len(xyxy), COCO_KEYPOINTS, 3)), np.zeros(len(xyxy))
        segmentations = {} if shared is None or self.segmentation is None else shared.setdefault(self.shared_key, {})
        for part, frames in self._batches(image, xyxy):
            landmarks = self.interpreter.get_tensor(self.landmarks).reshape(len(frames), 39, 5)[:, BLAZEPOSE_TO_COCO]
            keypoints[part, :, :2] = frames[:, None, :2] + landmarks[..., :2] * frames[:, None, 2:]
            keypoints[part, :, 2] = expit(landmarks[..., 3])  # visibility is a logit
            present[part] = self.interpreter.get_tensor(self.present).reshape(-1)
            if shared is not None and self.segmentation is not None:
                logits = self.interpreter.get_tensor(self.segmentation)[..., 0]
                segmentations.update({box_key(box): (frame, crop.copy())
                                      for box, frame, crop in zip(xyxy[part], frames, logits)})
        return keypoints, present

    def masks(self, image: np.ndarray, xyxy: np.ndarray, shared: dict | None = None) -> list[MaskCrop]:
        """[H, W, 3] BGR frame and [N, 4] person boxes -> each person's segmentation logits over its
        box (in the frame, clipped to it): a mask never leaves its box. ``shared``: the frame's
        ``FrameContext.cache``; boxes the pose feature ran this model on this frame are read from it,
        the model runs on the others only."""
        if self.segmentation is None:
            raise PluginError("this BlazePose model has no segmentation output: use pose_landmark_full or "
                              "pose_landmark_heavy")
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        known = {} if shared is None else shared.get(self.shared_key, {})
        found = [known.get(box_key(box)) for box in xyxy]
        missing = np.array([f is None for f in found], dtype=bool)
        if missing.any():
            at = iter(np.flatnonzero(missing).tolist())
            for part, frames in self._batches(image, xyxy[missing]):
                for frame, crop in zip(frames, self.interpreter.get_tensor(self.segmentation)[..., 0]):
                    found[next(at)] = frame, crop
        return [mask_in_box(box, frame, crop, image.shape[:2]) for box, (frame, crop) in zip(xyxy, found)]


def box_key(box: np.ndarray) -> tuple[float, ...]:
    """A box as a key of shared per-frame results: its corners to a hundredth of a pixel."""
    return tuple(np.round(np.asarray(box, dtype=np.float64), 2).tolist())


def mask_in_box(box: np.ndarray, frame: np.ndarray, crop: np.ndarray, shape: tuple[int, int]) -> MaskCrop:
    """A person's segmentation logits over its model crop ([S, S], the crop's ``frame`` (x0, y0, frame
    pixels per crop pixel)) -> the logits over its box ([4] xyxy) in a frame of ``shape`` (H, W),
    clipped to it."""
    import cv2

    height, width = shape
    x0, y0, step = frame
    x1, y1 = int(np.clip(np.floor(box[0]), 0, width)), int(np.clip(np.floor(box[1]), 0, height))
    x2, y2 = int(np.clip(np.ceil(box[2]), x1, width)), int(np.clip(np.ceil(box[3]), y1, height))
    # frame pixel (x1 + i, y1 + j) is crop pixel ((x1 + i - x0) / step, (y1 + j - y0) / step)
    to_crop = np.float32([[1 / step, 0, (x1 - x0) / step], [0, 1 / step, (y1 - y0) / step]])
    inside = np.zeros((y2 - y1, x2 - x1), np.float32)
    if x2 > x1 and y2 > y1:
        inside = cv2.warpAffine(crop, to_crop, (x2 - x1, y2 - y1), borderValue=-1.0,
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    return MaskCrop((x1, y1, x2, y2), inside.reshape(y2 - y1, x2 - x1))


def covered_by_people(detections: Detections, labels: list[str]) -> np.ndarray:
    """[N] largest share of each person's box (an object with one of ``labels``) that another person's
    box covers; 0 for the other objects."""
    people = np.isin(detections.labels, labels)
    covered = np.zeros(len(detections))
    covered[people] = covered_share(detections.xyxy[people])
    return covered


def body_relative(keypoints: np.ndarray, xyxy: np.ndarray, min_visibility: float) -> np.ndarray:
    """[N, 17, 3] keypoints (x, y, visibility) of [N, 4] boxes -> [N, 34] (x, y) of each keypoint
    relative to the hips' midpoint (the box's centre where a hip is unseen), in units of the box
    height; keypoints less visible than ``min_visibility`` sit at the origin (0, 0); rows of objects
    without keypoints (NaN) stay NaN."""
    seen = keypoints[..., 2] >= min_visibility
    hips_seen = seen[:, LEFT_HIP] & seen[:, RIGHT_HIP]
    origin = np.where(hips_seen[:, None], keypoints[:, [LEFT_HIP, RIGHT_HIP], :2].mean(axis=1),
                      (xyxy[:, :2] + xyxy[:, 2:]) / 2)
    height = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1.0)
    relative = (keypoints[..., :2] - origin[:, None]) / height[:, None, None]
    relative[~seen] = 0.0
    relative[~np.isfinite(keypoints[:, :, :2]).all(axis=(1, 2))] = np.nan  # no pose: unknown
    return relative.reshape(len(keypoints), 2 * keypoints.shape[1])


class PoseFeature(TrackAveragedFeature):
    """Body pose: the 17 COCO keypoints relative to the hips, in person heights, averaged along the
    track (see the module docstring). Unknown for objects that are no person, too small, covered by
    another person, or where the model finds no pose."""

    name = "pose"
    expires = True  # a pose measured once is no pose frames later (the person moved, or left the crop)
    columns = tuple(f"{axis}{k}" for k in range(COCO_KEYPOINTS) for axis in ("x", "y"))
    params = {
        "weights": Param("", "Pose model: a BlazePose landmark .tflite, an ultralytics pose model (.pt state dict, "
                             "trusted checkpoint, export or .yaml); '' = the detector's keypoints.", content=True),
        "architecture": Param("yolov8n-pose.yaml", "Model config an ultralytics state dict belongs to."),
        "trust_checkpoint": Param(False, "Allow a pickled ultralytics checkpoint (runs code from the file)."),
        "device": Param("cpu", "'cpu', 'cuda' or 'cuda:N' (ultralytics models; BlazePose runs on the CPU)."),
        "threads": Param(2, "CPU threads of the BlazePose runtime.", minimum=1, runtime=True),
        "labels": Param(["person", "object"], "Labels of the objects a pose is looked for ('object': the motion "
                                             "detector's unlabelled blobs, kept where the model finds a pose)."),
        "min_height": Param(128, "Boxes lower than this (pixels) get no pose: below it a pose model's landmarks "
                                 "are noise that outscores real pose anomalies (on Avenue's normal clips, people from 123 "
                                 "px up are no noisier than taller ones: benchmarks/pose_reliability.py).",
                            minimum=1),
        "max_covered": Param(0.1, "People whose box another person's box covers by more than this share get no pose: "
                                  "the crop holds two people, whose limbs the pose model mixes (on Avenue's normal clips, "
                                  "poses are noisier from a tenth covered on: benchmarks/pose_reliability.py).",
                             minimum=0.0, maximum=1.0),
        "min_presence": Param(0.5, "Least BlazePose pose-present score for a crop to have a pose.",
                              minimum=0.0, maximum=1.0),
        "min_visibility": Param(0.5, "Keypoints less visible than this are treated as unseen.", minimum=0.0),
        "margin": Param(0.25, "Crops are the box padded to a square plus this share of it on each side.",
                        minimum=0.0),
        "match_iou": Param(0.3, "Least IoU between an ultralytics pose box and a detection.", minimum=0.0,
                           maximum=1.0),
        "window": Param(3, "Frames over which the pose is averaged along the object's track.", minimum=1),
        "min_samples": Param(1, "The pose is unknown until the track has this many measurements.", minimum=1),
        "every": Param(1, "The pose model runs on every this many frames (its cost grows with the people in view); "
                          "in between, a track's poses of its last 'window' frames stand.", minimum=1),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.blazepose = self.model = self.shared = None
        weights = params["weights"]
        # one model for every camera of the process, and for the person segmenter (builtin/shared_models.py)
        if weights.endswith(".tflite") and exported_metadata(require_file(weights)).get("task") is None:
            path = require_file(weights)  # no ultralytics metadata: a BlazePose landmark model
            require_runtime(path)
            self.shared = shared_model(BlazePose, str(path), params["threads"], params["margin"])
            self.blazepose = self.shared.model
        elif weights:
            self.shared = shared_model(load_yolo, weights, params["architecture"], params["trust_checkpoint"],
                                       params["device"], ("pose",))
            self.model = self.shared.model

    def _keypoints(self, context: FrameContext, detections: Detections) -> np.ndarray:
        """[N, 17, 3] keypoints per detection in frame pixels, NaN where there is no pose."""
        keypoints = np.full((len(detections), COCO_KEYPOINTS, 3), np.nan)
        people = np.isin(detections.labels, self.p["labels"])
        wanted = people & (detections.height >= self.p["min_height"]) \
            & (covered_by_people(detections, self.p["labels"]) <= self.p["max_covered"])
        if not wanted.any():
            return keypoints
        if self.blazepose is not None:
            with self.shared.lock:
                found, present = self.blazepose.keypoints(context.image, detections.xyxy[wanted], context.cache)
            found[present < self.p["min_presence"]] = np.nan
            keypoints[wanted] = found
        elif self.model is not None:
            with self.shared.lock:
                result = self.model.predict(context.image, device=self.p["device"], verbose=False)[0]
            if result.keypoints is not None and len(result.boxes):
                iou = iou_matrix(detections.xyxy, result.boxes.xyxy.cpu().numpy())
                best = iou.argmax(axis=1)
                matched = wanted & (iou[np.arange(len(detections)), best] >= self.p["match_iou"])
                keypoints[matched] = result.keypoints.data.cpu().numpy()[best[matched]]
        elif detections.keypoints is not None:
            keypoints[wanted] = detections.keypoints[wanted, :COCO_KEYPOINTS]
        else:
            raise PluginError("pose feature has no keypoints: set pose.weights (BlazePose .tflite or an ultralytics "
                              "pose model) or use a pose detector")
        return keypoints

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        if self.measures_now():
            keypoints = self._keypoints(context, detections)
        else:
            keypoints = np.full((len(detections), COCO_KEYPOINTS, 3), np.nan)
        return self.history.smooth(detections.ids, body_relative(keypoints, detections.xyxy, self.p["min_visibility"]))


@hookimpl
def tao_ros_add_features():
    return [PoseFeature]
