"""Camera intrinsics from what ROS users have: a sensor_msgs/CameraInfo message (live or in a bag)
or the calibration YAML that ``camera_calibration`` and camera drivers write. No ROS needed: only
attribute access on the message.

The image is expected rectified (``image_rect``, or a depth image registered to it): the
projection matrix ``P`` is then the one that holds, ``K`` where ``P`` is unset. Distortion is not
undone; a camera_info with distortion coefficients is reported, since on an unrectified image
positions are off towards its edges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tao_ros.core.localization import Intrinsics
from tao_ros.errors import InputError


def camera_info_beside(topic: str) -> str:
    """The camera_info topic drivers publish beside an image topic:
    ``/camera/aligned_depth_to_color/camera_info`` for ``/camera/aligned_depth_to_color/image_raw``."""
    return topic.rsplit("/", 1)[0] + "/camera_info" if "/" in topic else "camera_info"


def calibration_intrinsics(width: int, height: int, k, p=None, distortion=(), binning: tuple[int, int] = (0, 0),
                           roi: tuple[int, int, int, int] = (0, 0, 0, 0)) -> tuple[Intrinsics, str | None]:
    """The fields of a calibration -> (Intrinsics of the published image, a note when it has distortion).

    ``p`` is used where set (fx > 0), else ``k``; ``binning`` (x, y; 0 or 1 = none) and ``roi``
    (x offset, y offset, width, height; width 0 = full image) describe a sub-sampled or cropped
    image, as sensor_msgs/CameraInfo defines them."""
    matrix = p if p is not None and len(p) == 12 and float(np.asarray(p, dtype=np.float64)[0]) > 0 else k
    if matrix is None or len(matrix) not in (9, 12) or not np.any(np.asarray(matrix, dtype=np.float64)):
        raise InputError("camera_info holds no camera matrix (K and P are zero): the camera is not calibrated")
    full = Intrinsics.from_matrix(matrix, width, height)
    fx, fy, cx, cy = full.fx, full.fy, full.cx, full.cy
    x_offset, y_offset, roi_width, roi_height = (int(v) for v in roi)
    if roi_width > 0 and roi_height > 0:
        cx, cy, width, height = cx - x_offset, cy - y_offset, roi_width, roi_height
    bin_x, bin_y = (max(int(b), 1) for b in binning)
    # with binning, pixel centres of the binned image sit at the centres of each bin
    intrinsics = Intrinsics(fx / bin_x, fy / bin_y, (cx + 0.5) / bin_x - 0.5, (cy + 0.5) / bin_y - 0.5,
                            int(width) // bin_x, int(height) // bin_y)
    coefficients = np.asarray(list(distortion), dtype=np.float64)
    note = None
    if coefficients.size and np.any(coefficients != 0):
        note = (f"camera_info has distortion coefficients {np.round(coefficients, 4).tolist()}: the image is taken "
                "to be rectified (subscribe to image_rect); positions of an unrectified image are off at its edges")
    return intrinsics, note


def intrinsics_from_camera_info(msg) -> tuple[Intrinsics, str | None]:
    """sensor_msgs/CameraInfo -> (Intrinsics, distortion note or None); InputError if unusable."""
    try:
        roi = msg.roi
        return calibration_intrinsics(
            int(msg.width), int(msg.height), list(msg.k), list(msg.p), list(msg.d),
            (int(msg.binning_x), int(msg.binning_y)),
            (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed message
        raise InputError(f"malformed camera_info: {type(exc).__name__}: {exc}") from None


def load_intrinsics(path: str | Path) -> tuple[Intrinsics, str | None]:
    """A calibration YAML (``image_width``, ``image_height``, ``camera_matrix``, optionally
    ``projection_matrix`` and ``distortion_coefficients``, each ``{data: [...]}`` as
    camera_calibration writes them) -> (Intrinsics, distortion note or None); InputError naming
    what is missing."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such intrinsics file (a camera calibration YAML)")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None

    def matrix(key: str):
        entry = document.get(key)
        return None if entry is None else entry.get("data") if isinstance(entry, dict) else entry

    if not isinstance(document, dict) or not {"image_width", "image_height", "camera_matrix"} <= set(document):
        raise InputError(f"{path}: a camera calibration YAML needs image_width, image_height and camera_matrix "
                         "(as camera_calibration writes it)")
    try:
        return calibration_intrinsics(int(document["image_width"]), int(document["image_height"]),
                                      matrix("camera_matrix"), matrix("projection_matrix"),
                                      matrix("distortion_coefficients") or ())
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None
