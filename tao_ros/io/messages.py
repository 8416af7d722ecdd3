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


def decode_image(data: bytes, what: str) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, ...) -> [H, W, 3] uint8 BGR; InputError naming ``what`` if they
    do not decode whole. OpenCV decodes a truncated JPEG without complaint (grey or missing rows),
    so a JPEG must end with its end-of-image marker."""
    import cv2

    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
        raise InputError(f"{what}: truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise InputError(f"{what}: not a decodable image ({len(data)} bytes)")
    return image


def compressed_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png) -> [H, W, 3] uint8 BGR; InputError if it does not decode."""
    data = bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes()
    return decode_image(data, f"compressed image (format {msg.format!r})")


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


class MessageTypes:
    """Message classes by full name, from rclpy packages or from a ``rosbags`` typestore, so that one
    builder makes messages for the live node and for bags alike.

    ``raw_bytes`` says how a uint8[] field is given: bytes for rclpy, a numpy array for rosbags.
    ``new`` builds a message from the fields that matter, the others at their defaults (rclpy
    classes have them; rosbags classes need every field, filled here from the typestore).
    """

    RCLPY_TYPES = ("std_msgs/msg/Header", "builtin_interfaces/msg/Time", "builtin_interfaces/msg/Duration",
                   "std_msgs/msg/ColorRGBA", "sensor_msgs/msg/Image",
                   "vision_msgs/msg/Detection2DArray", "vision_msgs/msg/Detection2D",
                   "vision_msgs/msg/Detection3DArray", "vision_msgs/msg/Detection3D", "vision_msgs/msg/BoundingBox3D",
                   "vision_msgs/msg/ObjectHypothesisWithPose", "vision_msgs/msg/ObjectHypothesis",
                   "vision_msgs/msg/BoundingBox2D", "vision_msgs/msg/Pose2D", "vision_msgs/msg/Point2D",
                   "geometry_msgs/msg/PoseWithCovariance", "geometry_msgs/msg/Pose", "geometry_msgs/msg/Point",
                   "geometry_msgs/msg/Quaternion", "geometry_msgs/msg/Vector3",
                   "visualization_msgs/msg/Marker", "visualization_msgs/msg/MarkerArray")

    def __init__(self, classes: dict[str, type], raw_bytes: bool, fielddefs: dict | None = None):
        self.classes = classes
        self.raw_bytes = raw_bytes
        self.fielddefs = fielddefs

    @classmethod
    def from_typestore(cls, store) -> MessageTypes:
        return cls(store.types, raw_bytes=False, fielddefs=store.fielddefs)

    @classmethod
    def from_rclpy(cls) -> MessageTypes:
        import importlib

        classes = {}
        for name in cls.RCLPY_TYPES:
            package, _, type_name = name.split("/")
            classes[name] = getattr(importlib.import_module(f"{package}.msg"), type_name)
        return cls(classes, raw_bytes=True)

    def __getitem__(self, name: str) -> type:
        return self.classes[name]

    def new(self, name: str, **fields):
        """Message ``name`` with ``fields``, every other field at its default (0, '', empty)."""
        if self.fielddefs is not None:
            for field_name, description in self.fielddefs[name][1]:
                if field_name not in fields:
                    fields[field_name] = self._default(description)
        return self[name](**fields)

    def _default(self, description):
        from rosbags.interfaces import Nodetype

        kind, detail = description
        if kind == Nodetype.BASE:
            return "" if detail[0] == "string" else False if detail[0] == "bool" else 0
        if kind == Nodetype.NAME:
            return self.new(detail)
        element, length = detail
        if element[0] == Nodetype.BASE and element[1][0] != "string":
            dtype = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8}.get(element[1][0], element[1][0])
            return np.zeros(length if kind == Nodetype.ARRAY else 0, dtype=dtype)
        return [self._default(element) for _ in range(length if kind == Nodetype.ARRAY else 0)]


def make_header(types: MessageTypes, stamp_ns: int, frame_id: str):
    """std_msgs/Header with ``stamp_ns`` nanoseconds and ``frame_id``."""
    time = types["builtin_interfaces/msg/Time"](sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))
    return types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def header_stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def numpy_to_image(types: MessageTypes, header, array: np.ndarray, encoding: str):
    """[H, W(, C)] array -> sensor_msgs/Image of ``encoding`` with ``header``."""
    fields = numpy_to_image_fields(array, encoding)
    if types.raw_bytes:
        fields["data"] = fields["data"].tobytes()
    return types["sensor_msgs/msg/Image"](header=header, **fields)


def pose_msg(types: MessageTypes, position=(0.0, 0.0, 0.0)):
    """geometry_msgs/Pose at ``position`` (x, y, z metres), identity orientation."""
    x, y, z = (float(v) for v in position)
    return types.new("geometry_msgs/msg/Pose", position=types.new("geometry_msgs/msg/Point", x=x, y=y, z=z),
                     orientation=types.new("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0))


def hypothesis_msg(types: MessageTypes, label, score: float, position=(0.0, 0.0, 0.0)):
    """vision_msgs/ObjectHypothesisWithPose: class ``label`` with ``score``, posed at ``position``
    (no covariance given)."""
    return types.new("vision_msgs/msg/ObjectHypothesisWithPose",
                     hypothesis=types.new("vision_msgs/msg/ObjectHypothesis", class_id=str(label), score=float(score)),
                     pose=types.new("geometry_msgs/msg/PoseWithCovariance", pose=pose_msg(types, position),
                                    covariance=np.zeros(36, dtype=np.float64)))


def detections_to_msg(types: MessageTypes, header, boxes: np.ndarray, ids: np.ndarray, labels, scores: np.ndarray):
    """vision_msgs/Detection2DArray: one Detection2D per box ([N, 4] xyxy, x2/y2 exclusive), with the
    object id as ``id``, the class label as hypothesis ``class_id`` and the anomaly score as its ``score``."""
    detections = []
    for box, object_id, label, score in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), ids, labels, scores):
        x1, y1, x2, y2 = (float(v) for v in box)
        centre = types.new("vision_msgs/msg/Pose2D",
                           position=types.new("vision_msgs/msg/Point2D", x=(x1 + x2) / 2, y=(y1 + y2) / 2), theta=0.0)
        bbox = types.new("vision_msgs/msg/BoundingBox2D", center=centre, size_x=x2 - x1, size_y=y2 - y1)
        detections.append(types.new("vision_msgs/msg/Detection2D", header=header,
                                    results=[hypothesis_msg(types, label, score)], bbox=bbox, id=str(int(object_id))))
    return types.new("vision_msgs/msg/Detection2DArray", header=header, detections=detections)
