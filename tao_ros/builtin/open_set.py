"""The open-set detector: a pretrained detector's objects, as people count them, plus every moving
region that no pretrained box explains.

A COCO detector knows what a person or a bicycle is, but it is blind to what it has no class for
(a cart, a thrown bag) and boxes a rider apart from the bicycle under them, where people (and the
ground truth) see one object. The motion detector sees anything that moves, but not what it is.
Composed, each covers the other's blind spot:

1. the motion detector's foreground and blobs (its background model, as ``detector: motion``);
2. the pretrained detector's boxes, one class per box (class-agnostic suppression), less those
   holding less foreground than the smallest moving region: the scene, not objects in it;
3. riders joined with what they ride (``join_riders``);
4. blobs whose foreground lies mostly outside every pretrained box, as objects labelled "object";
5. one id per object from a box tracker over all of them, and each track's label by majority vote,
   so that ids stay with the object through label flicker.

With ``objects: motion`` the moving regions are the objects instead and the pretrained boxes name
them: a blob holding a pretrained box takes its label (a cyclist's blob holds the joined rider and
bicycle), a blob holding several is a group the background model merged and becomes the boxes it
holds (people walking side by side), a blob that is a moving part of a box no blob holds becomes
that box (the arms of someone standing still: a pose needs the whole person), the rest stay
"object". An object's size and place are then measured on the same kind of box as in the
weight-free profile on every camera, where a COCO box and the blob of the same walker differ in
size and the detector finds small people in one frame and misses them in the next (on UCSD Ped1's
10-60 px people: benchmarks/generalization.py).

The frame's foreground stays in ``context.foreground``: the speed of a pretrained box is the flow
of the moving pixels inside it, not of the whole box.
"""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.motion import MotionDetector
from tao_ros.builtin.ultralytics_models import predict_boxes
from tao_ros.builtin.shared_models import shared_model
from tao_ros.builtin.weights import load_yolo
from tao_ros.core.geometry import box_area, clip_boxes, containment_matrix
from tao_ros.core.tracking import HELD_SHARE, BoxTracker, LabelVotes
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext

RIDDEN = ("bicycle", "motorcycle", "skateboard", "skis", "snowboard", "surfboard", "horse")
"""COCO classes a person rides (skateboarders seen from above are often boxed as 'skis')."""


def join_riders(xyxy: np.ndarray, labels: np.ndarray, moving: np.ndarray, ridden: tuple[str, ...],
                rider: str = "person") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join each ridden object with the person riding it into one box.

    ``xyxy`` [N, 4], ``labels`` [N], ``moving`` [N] bool (the box holds moving foreground) ->
    (xyxy [M, 4], labels [M], index [M] of the box each output row comes from), M <= N. A person
    rides a ridden object (label in ``ridden``) when both move and the person stands on it: they
    overlap over at least half of the narrower box's width, and the ridden box reaches into the
    lower half of the person's box. A person walking a bicycle beside them overlaps it far less
    sideways and stays apart. The joined box is the union of both and takes the ridden object's
    label (a rider on a bicycle is a cyclist, the bicycle's label); each person rides one object,
    the one it overlaps most.
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    keep = np.ones(len(xyxy), dtype=bool)
    out = xyxy.copy()
    people = np.flatnonzero((labels == rider) & moving)
    vehicles = np.flatnonzero(np.isin(labels, ridden) & moving)
    if len(people) and len(vehicles):
        p, v = xyxy[people][:, None], xyxy[vehicles][None]
        shared_width = np.minimum(p[..., 2], v[..., 2]) - np.maximum(p[..., 0], v[..., 0])
        narrower = np.minimum(p[..., 2] - p[..., 0], v[..., 2] - v[..., 0])
        person_middle = (p[..., 1] + p[..., 3]) / 2
        under = (v[..., 3] > person_middle) & (v[..., 1] < p[..., 3])
        fits = (shared_width >= 0.5 * np.maximum(narrower, 1e-9)) & under
        overlap = np.where(fits, shared_width, -np.inf)
        taken = np.zeros(len(people), dtype=bool)
        for j in np.argsort(-overlap.max(axis=0)):  # vehicles with the clearest rider first
            candidates = np.where(taken, -np.inf, overlap[:, j])
            if not np.isfinite(candidates.max()):
                continue
            i = int(np.argmax(candidates))
            taken[i] = True
            vehicle, person = vehicles[j], people[i]
            out[vehicle, :2] = np.minimum(xyxy[vehicle, :2], xyxy[person, :2])
            out[vehicle, 2:] = np.maximum(xyxy[vehicle, 2:], xyxy[person, 2:])
            keep[person] = False
    index = np.flatnonzero(keep)
    return out[index], np.asarray(labels)[index], index


def unexplained(blobs: np.ndarray, boxes: np.ndarray, foreground: np.ndarray, share: float) -> np.ndarray:
    """[B] bool: blobs ([B, 4]) of which less than ``share`` of the foreground pixels lie inside
    any of ``boxes`` ([K, 4]): moving regions no pretrained box explains."""
    if not len(blobs):
        return np.zeros(0, dtype=bool)
    covered = np.zeros(foreground.shape, dtype=bool)
    for x1, y1, x2, y2 in np.round(boxes).astype(int):
        covered[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = True
    result = np.zeros(len(blobs), dtype=bool)
    for b, (x1, y1, x2, y2) in enumerate(np.round(blobs).astype(int)):
        pixels = foreground[y1:y2, x1:x2]
        total = pixels.sum()
        result[b] = total > 0 and (pixels & covered[y1:y2, x1:x2]).sum() < share * total
    return result


def foreground_inside(blobs: np.ndarray, boxes: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """[B, K] share of each blob's ([B, 4]) foreground pixels that lies inside each box ([K, 4]); 0 for
    a blob without foreground."""
    share = np.zeros((len(blobs), len(boxes)))
    for b, (x1, y1, x2, y2) in enumerate(np.round(blobs).astype(int)):
        pixels = foreground[y1:y2, x1:x2]
        total = pixels.sum()
        if total == 0:
            continue
        for k, (u1, v1, u2, v2) in enumerate(np.round(boxes).astype(int)):
            share[b, k] = pixels[max(v1 - y1, 0):max(v2 - y1, 0), max(u1 - x1, 0):max(u2 - x1, 0)].sum() / total
    return share


def name_blobs(blobs: np.ndarray, boxes: np.ndarray, inside: np.ndarray, share: float,
               explained: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Blobs ([B, 4]) as objects named by pretrained boxes ([K, 4]), ``inside`` [B, K] the share of each
    blob's foreground inside each box (``foreground_inside``) -> ([M, 4] objects, [M] index of the box
    naming each, -1 for none). A blob that holds one box (``HELD_SHARE`` of a box inside it, boxes that
    lie inside a larger one it holds not counted) keeps its own box, named by the largest box it holds;
    a blob that holds two or more is a group that the background model merged (people walking side by
    side): its objects are the boxes it holds, where they hold ``share`` of its foreground (``explained``
    [B] bool, default all; else it stays one blob, so that no moving pixels are lost with the people the
    pretrained detector missed in it). A blob with ``share`` of its foreground inside a box no
    blob holds becomes that box (the moving arms of someone standing still), one object however many of
    the box's parts move; the other blobs stay as they are, unnamed."""
    holds = containment_matrix(boxes, blobs) >= HELD_SHARE  # [K, B]
    part_of = (inside >= share) & ~holds.any(axis=1)[None]  # [B, K]
    area = box_area(boxes)
    nested = (containment_matrix(boxes, boxes) >= HELD_SHARE) & (area[None] > area[:, None])  # [K, K]
    whole = ~nested.any(axis=1)  # [K] inside no larger box (a bag on a person is no second object)
    members = holds & whole[:, None]  # [K, B]
    group = members.sum(axis=0) >= 2  # [B]
    if explained is not None:
        group &= explained
    grouped = members[:, group].any(axis=1)  # [K] boxes that are a group's objects
    xyxy, naming = [], []
    for b in range(len(blobs)):
        if group[b]:
            for k in np.flatnonzero(members[:, b]).tolist():
                if k not in naming:
                    xyxy.append(boxes[k]), naming.append(k)
        elif (holds[:, b] & grouped).any():
            continue  # a blob overlapping a group holds one of its objects: that object is there already
        elif holds[:, b].any():
            xyxy.append(blobs[b]), naming.append(int(np.argmax(np.where(holds[:, b], area, -1.0))))
        elif part_of[b].any():
            k = int(np.argmax(np.where(part_of[b], inside[b], -1.0)))
            if k not in naming:
                xyxy.append(boxes[k]), naming.append(k)
        else:
            xyxy.append(blobs[b]), naming.append(-1)
    return np.array(xyxy, dtype=np.float64).reshape(-1, 4), np.array(naming, dtype=np.int64)


def moving_pixels(boxes: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """[K] number of foreground pixels inside each box ([K, 4]; 0 for an empty box)."""
    counts = np.zeros(len(boxes), dtype=np.int64)
    for k, (x1, y1, x2, y2) in enumerate(np.round(boxes).astype(int)):
        counts[k] = foreground[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)].sum()
    return counts


class OpenSetDetector:
    """Pretrained boxes (riders joined with what they ride) plus moving regions no box explains."""

    name = "open_set"
    params = {
        **MotionDetector.params,
        "weights": Param("", "Pretrained detector: ultralytics .pt state dict, trusted checkpoint, or an export "
                             "(.tflite, .onnx, .torchscript, .engine); .yaml = random weights (tests).",
                         content=True),
        "architecture": Param("yolov8n.yaml", "Model config a state dict belongs to."),
        "trust_checkpoint": Param(False, "Allow a pickled ultralytics checkpoint (runs code from the file)."),
        "device": Param("cpu", "'cpu', 'cuda' or 'cuda:N' (a .tflite model runs on the CPU)."),
        "threads": Param(2, "CPU threads of a .tflite model's runtime.", minimum=1, runtime=True),
        "confidence": Param(0.25, "Least confidence of a pretrained box.", minimum=0.0, maximum=1.0),
        "image_size": Param(640, "Inference size of the pretrained detector (an export has its own, fixed).",
                            minimum=32),
        "ridden": Param(list(RIDDEN), "Labels of things a person rides: joined with their rider into one object."),
        "explained_share": Param(0.5, "A moving blob is an object of its own when less than this share of its "
                                      "foreground lies inside pretrained boxes.", minimum=0.0, maximum=1.0),
        "keep_still": Param(False, "Keep pretrained boxes holding less foreground than the smallest moving region "
                                   "(min_area of the frame). Off: those are the scene, which the background model "
                                   "has absorbed (a bench, a parked bicycle, someone standing still for longer "
                                   "than its history), and their place, size and label say nothing of anomalies."),
        "objects": Param("pretrained", "What the objects are: 'pretrained', the pretrained boxes (riders joined) plus the "
                                       "moving regions none explains; 'motion', the motion detector's moving regions, each "
                                       "labelled by the pretrained box it holds ('object' where it holds none; a "
                                       "region holding several boxes is those boxes, a merged group's people).",
                         choices=("pretrained", "motion")),
        "detect_every": Param(1, "The pretrained detector runs on every this many frames (its cost dominates on a "
                                 "CPU); in between, its objects are carried along their tracks' motion, and the "
                                 "motion detector still sees every frame.", minimum=1),
    }

    def __init__(self, **params):
        self.p = params
        self.motion = MotionDetector(**{k: params[k] for k in MotionDetector.params})
        # one model for every camera of the process (builtin/shared_models.py)
        self.shared = shared_model(load_yolo, params["weights"], params["architecture"], params["trust_checkpoint"],
                                   params["device"], ("detect", "pose", "segment"), params["threads"])
        self.model = self.shared.model
        self.tracker = BoxTracker(params["match_iou"], params["max_missed"], params["max_hidden"])
        self.box_tracker = BoxTracker(params["match_iou"], params["max_missed"], params["max_hidden"])  # objects: motion
        self.labels = LabelVotes()
        self.reset()

    def reset(self) -> None:
        self.motion.reset()
        self.tracker.reset()
        self.box_tracker.reset()
        self.labels.reset()
        self.frames_detected = 0
        self.pretrained = Detections.empty()  # the last frame's pretrained objects, with their track ids

    def pretrained_objects(self, context: FrameContext, foreground: np.ndarray, tracker: BoxTracker) -> Detections:
        """This frame's pretrained objects, riders joined: from the detector every ``detect_every``-th
        frame, carried along their tracks' velocity (``tracker``'s) in between."""
        self.frames_detected += 1
        if (self.frames_detected - 1) % self.p["detect_every"] == 0:
            return self.detected(context, foreground)
        last = self.pretrained
        track = {int(i): k for k, i in enumerate(tracker.ids.tolist()) if tracker.missed[k] == 0}
        kept = np.array([i in track for i in last.ids.tolist()], dtype=bool)
        rows = np.array([track[i] for i in last.ids[kept].tolist()], dtype=np.int64)
        height, width = foreground.shape
        moved = clip_boxes(tracker.boxes[rows] + tracker.velocity[rows], width, height)
        # an object carried out of the frame has left it: its clipped box has no area
        inside = (moved[:, 2] > moved[:, 0]) & (moved[:, 3] > moved[:, 1])
        return Detections(moved[inside], last.confidence[kept][inside], last.labels[kept][inside])

    def detected(self, context: FrameContext, foreground: np.ndarray) -> Detections:
        """The pretrained detector's boxes of this frame that hold moving foreground, riders joined."""
        with self.shared.lock:
            found = predict_boxes(self.model, context.image, self.p["confidence"], self.p["image_size"],
                                  self.p["device"])
        moving = moving_pixels(found.xyxy, foreground)
        if not self.p["keep_still"]:
            moves = moving >= self.p["min_area"] * foreground.size
            found, moving = found[moves], moving[moves]
        xyxy, labels, index = join_riders(found.xyxy, found.labels, moving > 0, tuple(self.p["ridden"]))
        return Detections(xyxy, found.confidence[index], labels)

    def labelled_blobs(self, context: FrameContext, blobs: Detections) -> Detections:
        """The motion detector's blobs as objects named by this frame's pretrained boxes (``name_blobs``;
        the boxes tracked apart, so that they are carried between the detector's frames; a group split
        where all the boxes together hold ``explained_share`` of its foreground), "object" where none
        names them. Ids from a box tracker over the objects, labels by each track's
        majority (``LabelVotes``)."""
        boxes = self.pretrained_objects(context, context.foreground, self.box_tracker)
        self.pretrained = Detections(boxes.xyxy, boxes.confidence, boxes.labels, self.box_tracker.update(boxes.xyxy))
        inside = foreground_inside(blobs.xyxy, boxes.xyxy, context.foreground)
        xyxy, naming = name_blobs(blobs.xyxy, boxes.xyxy, inside, self.p["explained_share"],
                                  ~unexplained(blobs.xyxy, boxes.xyxy, context.foreground, self.p["explained_share"]))
        # index -1 (no box names the blob) reads the appended "object", at full confidence
        labels = np.append(boxes.labels.astype(np.str_), "object")[naming]
        confidence = np.append(boxes.confidence, 1.0)[naming]
        ids = self.tracker.update(xyxy)
        return Detections(xyxy, confidence, self.labels.vote(ids, labels), ids)

    def detect(self, context: FrameContext) -> Detections:
        blobs = self.motion.detect(context)
        foreground = context.foreground
        if self.motion.frames_seen <= self.p["warmup_frames"]:
            return Detections.empty()  # the background model is not ready: nothing moves yet
        if self.p["objects"] == "motion":
            return self.labelled_blobs(context, blobs)
        pretrained = self.pretrained_objects(context, foreground, self.tracker)
        alone = unexplained(blobs.xyxy, pretrained.xyxy, foreground, self.p["explained_share"])
        xyxy = np.concatenate([pretrained.xyxy, blobs.xyxy[alone]])
        labels = np.concatenate([pretrained.labels, np.full(int(alone.sum()), "object")])
        confidence = np.concatenate([pretrained.confidence, np.ones(int(alone.sum()))])
        ids = self.tracker.update(xyxy)
        labels = self.labels.vote(ids, labels)
        self.pretrained = Detections(pretrained.xyxy, pretrained.confidence, labels[:len(pretrained)],
                                     ids[:len(pretrained)])
        return Detections(xyxy, confidence, labels, ids)


@hookimpl
def tao_ros_add_detectors():
    return [OpenSetDetector]
