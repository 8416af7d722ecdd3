"""The camera's intrinsics as the node knows them: from the newest valid camera_info, or why
there are none (for the diagnostics; the 2D outputs go on without them)."""

from __future__ import annotations

import time
from collections import Counter

from tao_ros.core.localization import Intrinsics
from tao_ros.errors import InputError
from tao_ros.io.camera_info import intrinsics_from_camera_info
from tao_ros.ros.diagnostics import ThrottledLog

NO_CAMERA_INFO = "no camera_info received: check the 'camera_info' remapping (of the depth-aligned image)"


class CameraInfoState:
    """The newest valid sensor_msgs/CameraInfo. A camera publishes the same calibration with every
    frame, so the newest one holds for every frame; an invalid one is counted in ``bad_input``
    and leaves the last valid intrinsics in use."""

    def __init__(self, bad_input: Counter, warnings: ThrottledLog):
        self.bad_input, self.warnings = bad_input, warnings
        self.intrinsics: Intrinsics | None = None
        self.problem: str | None = NO_CAMERA_INFO  # why there are no 3D outputs; None when there are
        self.note: str | None = None  # a caveat that does not stop them (distortion)
        self.started = time.monotonic()

    def update(self, msg) -> None:
        """A camera_info message from the live topic or a bag."""
        try:
            intrinsics, note = intrinsics_from_camera_info(msg)
        except InputError as exc:
            self.bad_input["camera_info"] += 1
            self.warnings.warn("camera_info", f"ignored camera_info: {exc}")
            if self.intrinsics is None:
                self.problem = f"invalid camera_info: {exc}"
            return
        if note is not None:
            self.warnings.warn("distortion", note)
        self.intrinsics, self.note, self.problem = intrinsics, note, None

    def problems(self, use_depth: bool, silence: float = 2.0) -> list[str]:
        """Why there are no 3D outputs, for the diagnostics (a node without depth has none to give);
        no camera_info yet is a problem only after ``silence`` seconds, as a silent topic is."""
        if not use_depth or self.problem is None:
            return []
        if self.problem == NO_CAMERA_INFO and time.monotonic() - self.started <= silence:
            return []
        return [f"no 3D outputs: {self.problem}"]

    def for_image(self, shape: tuple[int, ...]) -> Intrinsics | None:
        """The intrinsics if they describe images of ``shape``; else None, with the reason kept as the problem."""
        if self.intrinsics is None:
            return None
        try:
            self.intrinsics.check_image(shape)
        except InputError as exc:
            self.problem = str(exc)
            self.warnings.warn("camera_info_size", f"no 3D outputs: {exc}")
            return None
        self.problem = None
        return self.intrinsics
