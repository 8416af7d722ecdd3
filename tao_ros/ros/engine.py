"""The node's ROS-free twin: wires the hand-off, stamp pairing, decoding, the pipeline, calibration,
run-time parameters, output messages and diagnostics (each in its own module) for one camera
stream.

The rclpy node (``node.py``) only connects subscriptions, publishers, services and a worker thread
to this class, so everything here is tested without ROS.

**Streams.** A stream is what one continuous run of a camera looks like: the pipeline's background
model, tracks and histories, frames waiting for depth or for the worker, the last stamps. It
restarts whole (``restart_stream``) when time jumps back (a bag played with ``--loop``, a clock
reset), when the frame size changes, at every lifecycle stop, and when a calibration ends, whether
it succeeded or failed. Every frame carries the number of the stream it arrived in; a frame of an
older stream is never processed and its outputs never published after the restart, even when it
was in the models while the restart happened (its state is reset before the next frame).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tao_ros.config import Config
from tao_ros.core.localization import DepthRange
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
from tao_ros.errors import InputError
from tao_ros.io.messages import MessageTypes
from tao_ros.ros.arrival import Arrivals
from tao_ros.ros.calibration import Recording, default_model_path, fit_recording, load_model
from tao_ros.ros.camera import CameraInfoState
from tao_ros.ros.decoding import BadFrame, decode_frame
from tao_ros.ros.diagnostics import Latency, Liveness, ThrottledLog, health, report
from tao_ros.ros.handoff import FrameOutputs, InputFrame
from tao_ros.ros.outputs import output_messages
from tao_ros.ros.parameters import change_parameter

log = logging.getLogger(__name__)

__all__ = ["AnomalyEngine", "FrameOutputs", "InputFrame"]


class AnomalyEngine:
    """Turns camera messages into output messages; survives any single bad message.

    ``node_name``: the node's fully qualified name; without ``model_path`` its calibrated model is
    kept at ``default_model_path(node_name)`` and loaded from there at the next start.
    """

    def __init__(self, config: Config, pipeline: AnomalyPipeline | None = None, node_name: str = "/anomaly_node"):
        self.config = config
        self.pipeline = pipeline or AnomalyPipeline(config)
        self.counts: Counter = Counter()
        self.bad_input: Counter = Counter()
        self.warnings = ThrottledLog()
        self.liveness = Liveness()
        self.latency = Latency()
        self.recording: Recording | None = None
        # live image and depth topics are paired there, as bags are (no message_filters)
        self.arrivals = Arrivals(config, self.counts, self.warnings, self.liveness, self.restart_stream)
        self.camera = CameraInfoState(self.bad_input, self.warnings)  # intrinsics for the 3D outputs
        self.slot = self.arrivals.slot
        self.submit, self.submit_image, self.submit_depth, self.submit_camera_info = \
            self.arrivals.submit, self.arrivals.image, self.arrivals.depth, self.camera.update
        self._pipeline_stream = 0  # the stream the pipeline's state belongs to
        self._processing = threading.Lock()  # held while a frame is in the pipeline
        self.last_stamp: int | None = None  # stamp of the last frame processed in this stream
        self.last_size: tuple[int, int] | None = None
        self.node_name = node_name
        self._errors_reported = 0  # plugin, pipeline and worker errors at the last diagnostics
        self.status = load_model(self.pipeline, config, self.model_path)

    @property
    def model_path(self) -> Path:
        """Where the model is read from and ~/calibrate saves: ``model_path``, else the node's own path."""
        return Path(self.config.model_path or default_model_path(self.node_name)).expanduser()

    # ---------------------------------------------------------------- streams
    def restart_stream(self, reason: str = "restart") -> None:
        """Start a new stream: frames waiting for depth or for the worker and the last stamps are
        dropped now; the pipeline's state (tracks, memories, GPU state of the segmenter) now, or,
        while a frame is in the pipeline, as soon as it comes out (that frame's outputs are discarded)."""
        self.arrivals.restart()
        self.counts["stream_restarts"] += 1
        log.info("new stream (%s)", reason)
        if self._processing.acquire(blocking=False):
            try:
                self._sync_stream()
            finally:
                self._processing.release()

    def _sync_stream(self) -> None:
        """Reset the stream state of the pipeline if a restart came since (the caller holds ``_processing``)."""
        if self._pipeline_stream != self.stream:
            self.pipeline.reset()
            self.last_stamp, self.last_size = None, None
            self._pipeline_stream = self.stream

    @property
    def stream(self) -> int:
        """Number of the current stream (see the module docstring)."""
        return self.arrivals.stream

    def problems(self) -> list[str]:
        """Why nothing (or less than asked) comes out, for the diagnostics (and the log, throttled by
        where the problem is, not by its text, which carries how long it has lasted)."""
        problems = []
        for kind, found in (("input", self.liveness.problems(self.config.use_depth)),
                            ("camera_info", self.camera.problems(self.config.use_depth))):
            for problem in found:
                self.warnings.warn(kind, problem)
            problems += found
        return problems

    # ---------------------------------------------------------------- work
    def step(self, timeout: float = 0.1, publish: Callable[[FrameOutputs], None] | None = None
             ) -> FrameOutputs | None:
        """Worker: process the newest submitted frame, if any, and ``publish`` its outputs, unless the
        stream restarted meanwhile (publishing happens under the same lock as resets: no output of an
        old stream can follow a reset)."""
        frame = self.slot.take(timeout)
        if frame is None:
            return None
        with self._processing:
            try:
                outputs = self.process(frame)
                self._sync_stream()
                if outputs is not None and frame.stream != self.stream:
                    self.counts["discarded_after_restart"] += 1
                    return None
                if outputs is not None and publish is not None:
                    publish(outputs)
                    self.liveness.published()
                return outputs
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one frame: counted, logged, next
                self.counts["worker_errors"] += 1
                self.warnings.warn(f"worker {type(exc).__name__}", "dropped frame: building or publishing its "
                                   f"outputs failed: {type(exc).__name__}: {exc}")
                return None

    def _bad(self, kind: str, message: str) -> None:
        self.bad_input[kind] += 1
        self.warnings.warn(kind, f"dropped frame: {message}")

    def decode(self, frame: InputFrame) -> tuple[object, StreamFrame] | None:
        """Messages -> (header, StreamFrame); None (counted, logged) if the frame is unusable."""
        try:
            decoded = decode_frame(frame.image_msg, frame.depth_msg, frame.compressed)
        except BadFrame as exc:
            self._bad(exc.kind, str(exc))
            return None
        if decoded.depth_problem is not None:
            self._bad("depth", f"{decoded.depth_problem}; frame processed without depth")
        self._continue_stream(frame, decoded.stamp, decoded.image.shape[:2])
        return decoded.header, StreamFrame(decoded.image, decoded.depth, frame.sequence)

    def _continue_stream(self, frame: InputFrame, stamp: int, size: tuple[int, int]) -> None:
        """A frame older than the last one, or of another size, starts a new stream, which it opens."""
        self._sync_stream()
        if frame.stream is None:
            frame.stream = self.stream
        reason = None
        if self.last_stamp is not None and stamp < self.last_stamp:
            self.counts["time_jumps_back"] += 1
            reason = "time went backwards (frame stamp: bag loop or clock reset)"
        elif self.last_size is not None and size != self.last_size:
            reason = f"frame size changed from {self.last_size[1]}x{self.last_size[0]} to {size[1]}x{size[0]}"
        if reason is not None and frame.stream == self.stream:
            self.warnings.warn(reason.split(" ")[0], f"{reason}: restarting the stream")
            self.restart_stream(reason)
            self._sync_stream()
            frame.stream = self.stream
        self.last_stamp, self.last_size = stamp, size

    def process(self, frame: InputFrame) -> FrameOutputs | None:
        """Decode and run one frame; None when it was dropped or consumed by calibration."""
        if frame.stream is not None and frame.stream != self.stream:
            self.counts["discarded_after_restart"] += 1  # taken by the worker just before a restart
            return None
        decoded = self.decode(frame)
        if decoded is None:
            return None
        header, stream_frame = decoded
        if self.recording is not None:
            self._record(stream_frame, frame.stream)
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
        self.liveness.processed.tick()
        self.latency.update(self.pipeline.timings, total=time.perf_counter() - start,
                            age=time.monotonic() - frame.received)
        return FrameOutputs(header, result, stream_frame.image, stream_frame.depth)

    # ---------------------------------------------------------------- calibration
    def start_calibration(self, frames: int | None = None) -> str:
        """Record the next ``frames`` frames as normal, then fit, save to the model path and detect."""
        self.recording = Recording(frames or self.config.calibration_frames,
                                   keep_depth=self.config.depth_source == "depth_image")
        self.status = f"calibrating: recording {self.recording.target} normal frames"
        log.info(self.status)
        return self.status

    def _record(self, frame: StreamFrame, stream: int | None) -> None:
        self.recording.add(frame, stream)
        if self.recording.complete:
            self._fit_calibration()

    def _fit_calibration(self) -> None:
        """Fit on the side and use the new model only once it is saved: any failure (bad frames, too
        few objects, an unwritable path) leaves the previous model detecting. Either way a new
        stream starts: what the pipeline last saw is as old as the recording."""
        recording, self.recording = self.recording, None
        candidate, self.status = fit_recording(recording, self.config, self.pipeline, self.model_path)
        if candidate is None:
            self.counts["calibration_failures"] += 1
        else:
            self.pipeline = candidate
            self.config.options["model_path"] = str(self.model_path)  # the node's parameter names the file in use
        self.restart_stream("calibration ended")

    # ---------------------------------------------------------------- parameters
    def set_parameter(self, name: str, value) -> str | None:
        """Change a parameter at run time; returns None if accepted, else why not."""
        return change_parameter(self.config, self.pipeline, name, value)

    # ---------------------------------------------------------------- outputs
    def messages(self, outputs: FrameOutputs, types: MessageTypes, overlay: bool = False, markers: bool = False,
                 masks: bool = True) -> dict:
        """Output topic (relative to the node) -> message stamped like the input; the masks with
        ``masks``; 3D detections (and ``markers``) where the frame has depth and the camera_info fits it."""
        intrinsics = None if outputs.depth is None else self.camera.for_image(outputs.depth.shape)
        messages, located = output_messages(outputs, self.pipeline, types, overlay, intrinsics,
                                            DepthRange.of(self.config.options), markers, self.config.marker_lifetime,
                                            masks)
        if located is not None:
            self.counts["objects_3d"] += int(located.located.sum())
            self.counts["objects_without_3d"] += int((~located.located).sum())
        return messages

    def diagnostics(self, worker_alive: bool = True) -> dict[str, str]:
        """Key -> value of the node's state for /diagnostics, with its ``level`` (OK, WARN, ERROR) and
        ``level_reason`` (see ``diagnostics.health``). ``worker_alive``: whether the node's worker
        thread runs."""
        segmenter = self.pipeline.segmenter
        registry = getattr(segmenter.plugin, "objects", None) if segmenter is not None else None
        plugin_errors = sum(p.errors for p in self.pipeline.plugins)
        errors = plugin_errors + self.counts["worker_errors"] + self.counts["pipeline_errors"]
        problems = self.problems()
        values = report(self.status, problems, self.liveness, self.counts, self.bad_input, plugin_errors,
                        len(registry.objects) if registry else 0, self.latency.seconds)
        detecting = self.pipeline.fitted and self.recording is None
        values["level"], values["level_reason"] = health(worker_alive, detecting, problems, self.liveness,
                                                         errors - self._errors_reported)
        self._errors_reported = errors
        return values

    def close(self) -> None:
        self.slot.close()
