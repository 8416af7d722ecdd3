"""Learning normal on the robot (``~/calibrate``): record frames compressed, fit a new pipeline on
the side, save it atomically; the caller swaps it in only when all of that succeeded."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from tao_ros.config import Config
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame

log = logging.getLogger(__name__)


def default_model_path(node_name: str = "/anomaly_node") -> Path:
    """Where a node without ``model_path`` keeps its calibrated model:
    ``$ROS_HOME/tao_ros/<namespace>/<node name>/model.npz`` (``ROS_HOME`` defaults to ``~/.ros``).
    Per node, so that two cameras never overwrite each other's model; fixed, so that a restarted
    node finds the model it calibrated."""
    parts = [part for part in node_name.split("/") if part]
    return Path(os.environ.get("ROS_HOME", "~/.ros")).expanduser() / "tao_ros" / Path(*parts or ["anomaly_node"]) \
        / "model.npz"


def load_model(pipeline: AnomalyPipeline, config: Config, path: Path) -> str:
    """Load the model at ``path`` into ``pipeline`` if it exists (``config``'s model_path then names
    it); returns the node's status: detecting, or what to do to get a model."""
    if path.exists():
        pipeline.load(path)
        config.options["model_path"] = str(path)
        return "detecting"
    if config.model_path:  # where the calibrated model is to go: the robot has not learned normal yet
        status = f"no model yet: call ~/calibrate to create {config.model_path}"
        log.warning(status)
        return status
    return f"no model: call ~/calibrate (saves to {path}) or set model_path"


class Recording:
    """Normal frames recorded for a calibration, compressed: JPEG image and, where the depth source
    reads it, the depth image as 16-bit millimetre PNG; a few tens of kB a frame instead of
    megabytes. (Fitting reads the frames twice, so they are kept.)

    Per stream: frames of a new stream (a bag looping, a camera restarting during the recording)
    start a new clip, so that motion is never measured across the jump and each clip is held out
    as a whole when the normal scores are standardized."""

    def __init__(self, target: int, keep_depth: bool):
        self.target = target
        self.keep_depth = keep_depth
        self.frames: list[tuple[np.ndarray, np.ndarray | None, int | None]] = []
        self.clip_starts: list[int] = []  # index in ``frames`` of each clip's first frame
        self.stream: int | None = None  # the stream of the last frame recorded

    @property
    def complete(self) -> bool:
        return len(self.frames) >= self.target

    def add(self, frame: StreamFrame, stream: int | None = None) -> None:
        """Record ``frame`` of ``stream`` (the engine's stream number; None: the stream so far)."""
        import cv2

        if not self.clip_starts or (stream is not None and stream != self.stream):
            self.clip_starts.append(len(self.frames))
        self.stream = stream if stream is not None else self.stream

        from tao_ros.core.localization import depth_in_metres

        jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
        depth = None
        if frame.depth is not None and self.keep_depth:
            millimetres = np.nan_to_num(depth_in_metres(frame.depth) * 1000.0, nan=0.0)
            depth = cv2.imencode(".png", np.clip(millimetres, 0, 65535).astype(np.uint16))[1]
        self.frames.append((jpeg, depth, frame.index))

    def clips(self) -> list[tuple[str, object]]:
        """(name, callable giving a fresh iterator of its StreamFrames) per recorded clip, as ``fit`` takes them."""
        import cv2

        def decoded(first: int, end: int):
            return (StreamFrame(cv2.imdecode(jpeg, cv2.IMREAD_COLOR),
                                None if depth is None else cv2.imdecode(depth, cv2.IMREAD_UNCHANGED), index)
                    for jpeg, depth, index in self.frames[first:end])

        ends = [*self.clip_starts[1:], len(self.frames)]
        return [(f"calibration {k + 1}", lambda first=first, end=end: decoded(first, end))
                for k, (first, end) in enumerate(zip(self.clip_starts, ends))]



def fit_recording(recording: Recording, config: Config, current: AnomalyPipeline, path: Path
                  ) -> tuple[AnomalyPipeline | None, str]:
    """A new pipeline fitted on ``recording`` and saved to ``path`` -> (it, the status to show), or
    (None, why not) when anything failed (bad frames, too few objects, an unwritable path): the
    caller then goes on with ``current``."""
    candidate = AnomalyPipeline(config, current.registry)
    try:
        candidate.fit(recording.clips())
        candidate.save(path)
    except Exception as exc:  # noqa: BLE001 - whatever failed, detection goes on with what it had
        before = "detecting with the previous model" if current.fitted else "still no model"
        status = f"calibration failed ({type(exc).__name__}: {exc}); {before}"
        log.error(status)
        return None, status
    clips = len(recording.clip_starts)
    status = (f"detecting (model fitted on {len(recording.frames)} frames"
              + (f" of {clips} streams" if clips > 1 else "") + f", saved to {path})")
    log.info(status)
    return candidate, status
