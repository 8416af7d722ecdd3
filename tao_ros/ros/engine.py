"""The node's work without rclpy: newest-frame hand-off, message decoding, the pipeline, output
messages, counters and diagnostics, learning normal on the robot, run-time parameters.

The rclpy node (``node.py``) only wires subscriptions, publishers, services and a worker thread
to this class, so everything here is tested without ROS.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tao_ros.config import OPTIONS, Config, coerce
from tao_ros.core.geometry import mask_to_box
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
from tao_ros.errors import ConfigError, InputError
from tao_ros.io.pairing import StampPairer
from tao_ros.io.messages import (MessageTypes, compressed_to_bgr, detections_to_msg, header_stamp_ns, image_to_bgr,
                                 image_to_numpy, numpy_to_image)
from tao_ros.types import FrameResult

log = logging.getLogger(__name__)

RUNTIME_PARAMETERS = ("threshold", "threshold_quantile", "prompt_interval")
"""Parameters that may change while the node runs; the others need a restart (reconfigure)."""

DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


@dataclass
class InputFrame:
    """Messages of one camera frame as received: image (raw or compressed) and optional depth."""

    image_msg: object
    depth_msg: object | None = None
    compressed: bool = False
    received: float = field(default_factory=time.monotonic)
    sequence: int | None = None  # number of the image among those received; None: numbered as processed


@dataclass
class FrameOutputs:
    """The result of one frame and the header (stamp, frame_id) of the input it came from."""

    header: object
    result: FrameResult
    image: np.ndarray


class LatestSlot:
    """A one-item hand-off where the newest item wins: a producer never waits and never queues."""

    def __init__(self):
        self._item = None
        self._condition = threading.Condition()
        self._closed = False

    def put(self, item) -> bool:
        """Store ``item``; True if it replaced one that was never taken (a dropped frame)."""
        with self._condition:
            dropped = self._item is not None
            self._item = item
            self._condition.notify()
            return dropped

    def take(self, timeout: float | None = None):
        """The newest item, waiting up to ``timeout`` seconds; None on time-out or once closed."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class ThrottledLog:
    """Logs a kind of problem at most once per ``period`` seconds, with how often it happened."""

    def __init__(self, period: float = 5.0):
        self.period = period
        self.last: dict[str, float] = {}
        self.suppressed: Counter = Counter()

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -1e9) >= self.period:
            extra = f" ({self.suppressed[kind]} more since last report)" if self.suppressed[kind] else ""
            log.warning("%s%s", message, extra)
            self.last[kind] = now
            self.suppressed[kind] = 0
        else:
            self.suppressed[kind] += 1


class AnomalyEngine:
    """Turns camera messages into output messages; survives any single bad message."""

    def __init__(self, config: Config, pipeline: AnomalyPipeline | None = None):
        self.config = config
        self.pipeline = pipeline or AnomalyPipeline(config)
        self.slot = LatestSlot()
        self.counts: Counter = Counter()
        self.bad_input: Counter = Counter()
        self.warnings = ThrottledLog()
        self.last_stamp: int | None = None
        self.latency: dict[str, float] = {}
        self.started = time.monotonic()
        self.calibration: list | None = None
        self.calibration_target = 0
        # live image and depth topics are paired here, as bags are (no message_filters)
        self.pairer_lock = threading.Lock()
        self.pairer = self._new_pairer()
        self.last_image: float | None = None
        self.last_depth: float | None = None
        self.status = "no model: call ~/calibrate or set model_path"
        if config.model_path and not Path(config.model_path).expanduser().exists():
            # where the calibrated model is to go: not an error, the robot has not learned normal yet
            self.status = f"no model yet: call ~/calibrate to create {config.model_path}"
            log.warning(self.status)
        elif config.model_path:
            self.pipeline.load(config.model_path)
            self.status = "detecting"

    # ---------------------------------------------------------------- input
    def submit(self, frame: InputFrame) -> None:
        """Hand a frame to the worker (never blocks); an unprocessed older frame is dropped. Frames are
        numbered as received, so that the pipeline knows how many the worker skipped."""
        if frame.sequence is None:
            frame.sequence = self.counts["received"]
        self.counts["received"] += 1
        if self.slot.put(frame):
            self.counts["dropped_stale"] += 1

    def _new_pairer(self) -> StampPairer:
        return StampPairer(self.config.use_depth, int(self.config.sync_slop * 1e9), max_pending=self.config.qos_depth)

    def restart_stream(self) -> None:
        """Forget the stream (after the worker stopped): frames waiting for depth or for the worker,
        tracked objects and their memories, the last stamp. Nothing of it can come back."""
        with self.pairer_lock:
            self.pairer = self._new_pairer()
        self.slot.take(timeout=0)
        self.pipeline.reset()
        self.last_stamp = None

    def submit_image(self, msg, compressed: bool = False) -> None:
        """A camera message from the live topic: handed on at once, or with use_depth once paired
        with the depth image of its stamp (or without it when none can come)."""
        self.last_image = time.monotonic()
        self._pair(lambda pairer: pairer.add_image(self._stamp(msg), (msg, compressed)))

    def submit_depth(self, msg) -> None:
        """A depth message from the live topic (use_depth)."""
        self.last_depth = time.monotonic()
        self._pair(lambda pairer: pairer.add_depth(self._stamp(msg), msg))

    def _stamp(self, msg) -> int:
        try:
            return header_stamp_ns(msg.header)
        except Exception:  # noqa: BLE001 - a message without a usable header is decoded (and dropped) later
            return -1

    def _pair(self, add) -> None:
        with self.pairer_lock:
            ready = add(self.pairer)
        for (image_msg, compressed), depth_msg in ready:
            if self.config.use_depth and depth_msg is None:
                self.counts["without_depth"] += 1
            self.submit(InputFrame(image_msg, depth_msg, compressed))

    def problems(self, silence: float = 2.0) -> list[str]:
        """Why nothing (or less than asked) comes out, for the diagnostics: no images, or images but no
        depth, for more than ``silence`` seconds."""
        now, problems = time.monotonic(), []
        if now - (self.last_image or self.started) > silence:
            problems.append(f"no camera image for {now - (self.last_image or self.started):.0f} s: check the "
                            "'image' remapping and qos_reliability")
        elif self.config.use_depth and now - (self.last_depth or self.started) > silence:
            problems.append(f"images arrive but no depth image for {now - (self.last_depth or self.started):.0f} s: "
                            "check the 'depth' remapping; frames are processed without depth")
        for problem in problems:
            self.warnings.warn(problem.split(":")[0], problem)
        return problems

    def step(self, timeout: float = 0.1) -> FrameOutputs | None:
        """Worker: process the newest submitted frame, if any."""
        frame = self.slot.take(timeout)
        return None if frame is None else self.process(frame)

    def _bad(self, kind: str, message: str) -> None:
        self.bad_input[kind] += 1
        self.warnings.warn(kind, f"dropped frame: {message}")

    def decode(self, frame: InputFrame) -> tuple[object, StreamFrame] | None:
        """Messages -> (header, StreamFrame); None (counted, logged) if the frame is unusable."""
        try:
            image = compressed_to_bgr(frame.image_msg) if frame.compressed else image_to_bgr(frame.image_msg)
        except InputError as exc:
            self._bad("compressed" if frame.compressed else "image", str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - a malformed message of any kind must not stop the node
            self._bad("malformed", f"{type(exc).__name__}: {exc}")
            return None
        depth = None
        if frame.depth_msg is not None:
            try:
                if str(frame.depth_msg.encoding) not in DEPTH_ENCODINGS:
                    raise InputError(f"depth encoding {frame.depth_msg.encoding!r}; expected one of {DEPTH_ENCODINGS}")
                depth = image_to_numpy(frame.depth_msg)
                if depth.shape[:2] != image.shape[:2]:
                    raise InputError(f"depth image is {depth.shape[1]}x{depth.shape[0]}, camera image "
                                     f"{image.shape[1]}x{image.shape[0]}: publish depth aligned to the camera")
            except InputError as exc:
                self._bad("depth", f"{exc}; frame processed without depth")
                depth = None
        return frame.image_msg.header, StreamFrame(image, depth, frame.sequence)

    def process(self, frame: InputFrame) -> FrameOutputs | None:
        """Decode and run one frame; None when it was dropped or consumed by calibration."""
        decoded = self.decode(frame)
        if decoded is None:
            return None
        header, stream_frame = decoded
        stamp = header_stamp_ns(header)
        if self.last_stamp is not None and stamp < self.last_stamp:
            self.counts["time_jumps_back"] += 1
            self.warnings.warn("time", "time went backwards (bag loop or clock reset): restarting the stream state")
            self.pipeline.reset()
        self.last_stamp = stamp
        if self.calibration is not None:
            self._record(stream_frame)
            return None
        if not self.pipeline.fitted:
            self.counts["not_fitted"] += 1
            self.warnings.warn("model", "no fitted model yet: call the ~/calibrate service or set model_path")
            return None
        start = time.perf_counter()
        try:
            result = self.pipeline.process(stream_frame)
        except InputError as exc:
            self._bad("frame", str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - keep the node alive; the error is counted and logged
            self.counts["pipeline_errors"] += 1
            self.warnings.warn("pipeline", f"pipeline failed on a frame: {type(exc).__name__}: {exc}")
            return None
        self.counts["processed"] += 1
        for stage, seconds in {**self.pipeline.timings, "total": time.perf_counter() - start,
                               "age": time.monotonic() - frame.received}.items():
            self.latency[stage] = seconds if stage not in self.latency else 0.9 * self.latency[stage] + 0.1 * seconds
        return FrameOutputs(header, result, stream_frame.image)

    # ---------------------------------------------------------------- calibration
    def start_calibration(self, frames: int | None = None) -> str:
        """Record the next ``frames`` frames as normal, then fit, save to model_path and detect."""
        self.calibration_target = frames or self.config.calibration_frames
        self.calibration = []
        self.status = f"calibrating: recording {self.calibration_target} normal frames"
        log.info(self.status)
        return self.status

    def _record(self, frame: StreamFrame) -> None:
        """Keep a calibration frame compressed: JPEG image, and the depth image (only where the depth
        source reads it) as 16-bit millimetre PNG; a few tens of kB a frame instead of megabytes.
        (Fitting reads the frames twice, the depth source learning first, so frames are kept.)"""
        import cv2

        from tao_ros.builtin.depth import depth_in_metres

        jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
        depth = None
        if frame.depth is not None and self.config.depth_source == "depth_image":
            millimetres = np.nan_to_num(depth_in_metres(frame.depth) * 1000.0, nan=0.0)
            depth = cv2.imencode(".png", np.clip(millimetres, 0, 65535).astype(np.uint16))[1]
        self.calibration.append((jpeg, depth, frame.index))
        if len(self.calibration) >= self.calibration_target:
            self._fit_calibration()

    def _fit_calibration(self) -> None:
        """Fit a new pipeline on the side, save it atomically, and only then use it: any failure (bad
        frames, too few objects, an unwritable model_path) leaves the previous model detecting."""
        import cv2

        recorded, self.calibration = self.calibration, None

        def frames():
            return (StreamFrame(cv2.imdecode(jpeg, cv2.IMREAD_COLOR),
                                None if depth is None else cv2.imdecode(depth, cv2.IMREAD_UNCHANGED), index)
                    for jpeg, depth, index in recorded)

        path = Path(self.config.model_path or default_model_path()).expanduser()
        candidate = AnomalyPipeline(self.config, self.pipeline.registry)
        try:
            candidate.fit([("calibration", frames)])
            candidate.save(path)
        except Exception as exc:  # noqa: BLE001 - whatever failed, detection goes on with what it had
            self.counts["calibration_failures"] += 1
            before = "detecting with the previous model" if self.pipeline.fitted else "still no model"
            self.status = f"calibration failed ({type(exc).__name__}: {exc}); {before}"
            log.error(self.status)
            return
        self.pipeline = candidate
        self.config.options["model_path"] = str(path)
        self.status = f"detecting (model fitted on {len(recorded)} frames, saved to {path})"
        log.info(self.status)

    # ---------------------------------------------------------------- parameters
    def set_parameter(self, name: str, value) -> str | None:
        """Change a parameter at run time; returns None if accepted, else why not."""
        if name not in RUNTIME_PARAMETERS:
            return f"{name} cannot change while running (only {', '.join(RUNTIME_PARAMETERS)}); reconfigure the node"
        try:
            value = coerce(name, value, OPTIONS[name])
        except ConfigError as exc:
            return str(exc)
        quantile = self.config.threshold_quantile
        if name == "threshold" and quantile > 0 and self.pipeline.training_totals is not None:
            return (f"threshold has no effect while threshold_quantile ({quantile:g}) sets the threshold "
                    f"({self.pipeline.threshold:.3g}): set threshold_quantile to 0 first")
        self.config.options[name] = value
        self.pipeline.config.options[name] = value
        if name == "prompt_interval":
            self.pipeline.prompts.interval = value
        return None

    # ---------------------------------------------------------------- outputs
    def messages(self, outputs: FrameOutputs, types: MessageTypes, overlay: bool = False) -> dict[str, object]:
        """Output topic (relative to the node) -> message, each stamped with the input's header."""
        result, header = outputs.result, outputs.header
        height, width = outputs.image.shape[:2]
        boxes, ids, labels, scores = anomalous_objects(result)
        instance = result.instance_mask if result.instance_mask is not None else np.zeros((height, width), np.uint16)
        anomaly = instance > 0 if result.instance_mask is not None else boxes_mask(boxes, (height, width))
        # hypothesis.score: the share of normal training objects scoring lower, a confidence in [0, 1]
        # (the raw summed score is in objects.csv and on the overlay)
        confidence = self.pipeline.normal_share(scores)
        messages = {
            "~/detections": detections_to_msg(types, header, boxes, ids, labels, confidence),
            "~/instance_mask": numpy_to_image(types, header, instance, "mono16"),
            "~/anomaly_mask": numpy_to_image(types, header, anomaly.astype(np.uint8) * 255, "mono8"),
        }
        if overlay:
            from tao_ros.io.overlay import draw_overlay

            messages["~/overlay"] = numpy_to_image(types, header, draw_overlay(outputs.image, result), "bgr8")
        return messages

    def diagnostics(self) -> dict[str, str]:
        """Key -> value of the node's state for /diagnostics."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        problems = self.problems()
        values = {
            "status": "; ".join([self.status, *problems]),
            "input_rate_hz": f"{self.counts['received'] / elapsed:.2f}",
            "processed_rate_hz": f"{self.counts['processed'] / elapsed:.2f}",
            "received": str(self.counts["received"]),
            "processed": str(self.counts["processed"]),
            "dropped_stale": str(self.counts["dropped_stale"]),
            "without_depth": str(self.counts["without_depth"]),
            "dropped_bad_input": str(sum(self.bad_input.values())),
            "time_jumps_back": str(self.counts["time_jumps_back"]),
            "pipeline_errors": str(self.counts["pipeline_errors"]),
            "plugin_errors": str(sum(p.errors for p in self._guarded())),
            "tracked_objects": str(self._tracked_objects()),
        }
        values.update({f"bad_input_{kind}": str(n) for kind, n in self.bad_input.items()})
        values.update({f"latency_{stage}_ms": f"{seconds * 1000:.1f}" for stage, seconds in self.latency.items()})
        values["gpu_memory_mb"] = gpu_memory_mb()
        return values

    def _tracked_objects(self) -> int:
        segmenter = self.pipeline.segmenter
        registry = getattr(segmenter.plugin, "objects", None) if segmenter is not None else None
        return len(registry.objects) if registry is not None else 0

    def _guarded(self):
        p = self.pipeline
        return [p.detector, p.depth, *p.features.values(), *([p.segmenter] if p.segmenter else [])]

    def close(self) -> None:
        self.slot.close()


def default_model_path() -> Path:
    """Where ~/calibrate saves without a model_path: ``$ROS_HOME/tao_ros/model.npz`` (``~/.ros/...``)."""
    return Path(os.environ.get("ROS_HOME", "~/.ros")).expanduser() / "tao_ros" / "model.npz"


def anomalous_objects(result: FrameResult) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """Boxes, ids, labels and scores of the frame's anomalous objects: from instance masks when the
    pipeline segments (boxes derived from masks), else the merged anomalous boxes."""
    if result.instance_mask is None:
        return result.merged.xyxy, result.merged.ids, list(result.merged.labels), result.merged_scores
    labels_by_id = dict(zip(result.detections.ids.tolist(), result.detections.labels.tolist()))
    boxes, ids, labels, scores = [], [], [], []
    for instance_id, object_id, score in zip(result.instance_ids, result.instance_object_ids, result.instance_scores):
        box = mask_to_box(result.instance_mask == instance_id)
        if box is None:
            continue
        boxes.append(box)
        ids.append(instance_id)  # the value of its pixels: the object id (ObjectIds fit 16 bits)
        labels.append(labels_by_id.get(int(object_id), "object"))
        scores.append(float(score))
    return np.array(boxes).reshape(-1, 4), np.array(ids, dtype=np.int64), labels, np.array(scores)


def boxes_mask(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[N, 4] boxes -> [H, W] bool mask covering them."""
    mask = np.zeros(shape, bool)
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4).astype(int):
        mask[max(y1, 0):y2, max(x1, 0):x2] = True
    return mask


def gpu_memory_mb() -> str:
    import sys

    torch = sys.modules.get("torch")  # only report if a plugin already uses torch
    if torch is None or not torch.cuda.is_available():
        return "n/a"
    return f"{torch.cuda.memory_allocated() / 2**20:.0f}"
