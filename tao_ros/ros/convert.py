"""ROS message <-> numpy conversion, without ROS: works on rclpy messages and on ``rosbags`` messages.

Only attribute access is used (``msg.encoding``, ``msg.data`` ...), so any object with the fields of
sensor_msgs/Image or sensor_msgs/CompressedImage converts.
"""

from __future__ import annotations

import numpy as np

from tao_ros.errors import InputError

# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


def image_to_numpy(msg) -> np.ndarray:
    """sensor_msgs/Image -> [H, W] or [H, W, C] array in the message's own channel order.

    Honours row padding (``step``) and ``is_bigendian``; InputError on an unknown encoding or data
    shorter than ``height * step``.
    """
    encoding = str(msg.encoding)
    if encoding not in ENCODINGS:
        raise InputError(f"image encoding {encoding!r} is not supported; use one of {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    if height == 0 or width == 0:
        raise InputError(f"image of size {width}x{height}: nothing to process")
    if step < row_bytes:
        raise InputError(f"image step {step} is shorter than a {encoding} row of width {width} ({row_bytes} bytes)")
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes(),
                         dtype=np.uint8)
    if data.size < height * step:
        raise InputError(f"image data has {data.size} bytes, expected height*step = {height * step}")
    rows = data[:height * step].reshape(height, step)[:, :row_bytes]
    array = np.ascontiguousarray(rows).view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    array = array.astype(dtype, copy=False).reshape(height, width, channels)
    return array[:, :, 0] if channels == 1 else array


def image_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/Image of a colour or 8-bit mono encoding -> [H, W, 3] uint8 BGR."""
    import cv2

    array = image_to_numpy(msg)
    encoding = str(msg.encoding)
    conversions = {"rgb8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGBA2BGR, "bgra8": cv2.COLOR_BGRA2BGR,
                   "mono8": cv2.COLOR_GRAY2BGR, "8UC1": cv2.COLOR_GRAY2BGR}
    if encoding == "bgr8":
        return array
    if encoding in conversions:
        return cv2.cvtColor(array, conversions[encoding])
    if encoding == "mono16":
        return cv2.cvtColor((array >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    raise InputError(f"image encoding {encoding!r} is depth, not a camera image")


def compressed_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png) -> [H, W, 3] uint8 BGR; InputError if it does not decode."""
    import cv2

    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes(),
                         dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"compressed image (format {msg.format!r}, {data.size} bytes) does not decode")
    return image


def numpy_to_image_fields(array: np.ndarray, encoding: str) -> dict:
    """Array -> the fields of sensor_msgs/Image (height, width, encoding, is_bigendian, step, data).

    Row-major without padding, little endian; ``data`` is a uint8 array.
    """
    if encoding not in ENCODINGS:
        raise InputError(f"image encoding {encoding!r} is not supported; use one of {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<"))
    expected = 2 if channels == 1 else 3
    if array.ndim != expected or (channels > 1 and array.shape[2] != channels):
        raise InputError(f"array of shape {array.shape} does not fit encoding {encoding!r}")
    height, width = array.shape[:2]
    return {"height": height, "width": width, "encoding": encoding, "is_bigendian": 0,
            "step": width * channels * dtype.itemsize, "data": array.reshape(-1).view(np.uint8)}
