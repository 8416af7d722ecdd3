"""Message conversion on messages built and (de)serialized with rosbags (real CDR)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags")  # pure-Python bag library from PyPI; ROS machines may lack it

from tao_ros.errors import InputError
from tao_ros.io.messages import (ENCODINGS, MessageTypes, compressed_to_bgr, detections_to_msg, image_to_bgr,
                                 image_to_numpy, make_header, numpy_to_image)
from tao_ros.ros.msgdefs import typestore


@pytest.fixture(scope="module", params=["jazzy", "humble"])
def store(request):
    return typestore(request.param)


def cdr_round_trip(store, msg, msgtype):
    return store.deserialize_cdr(store.serialize_cdr(msg, msgtype), msgtype)


def sample(encoding, rng):
    dtype, channels = ENCODINGS[encoding]
    shape = (5, 7) if channels == 1 else (5, 7, channels)
    if dtype == np.float32:
        return rng.normal(2.0, 1.0, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_image_round_trip_through_cdr(store, encoding, rng):
    types = MessageTypes.from_typestore(store)
    array = sample(encoding, rng)
    msg = numpy_to_image(types, make_header(types, 1_500_000_000_123, "cam"), array, encoding)
    back = cdr_round_trip(store, msg, "sensor_msgs/msg/Image")
    assert back.header.frame_id == "cam" and back.header.stamp.nanosec == 123
    np.testing.assert_array_equal(image_to_numpy(back), array)


def raw_image(store, array, encoding, step=None, bigendian=False):
    Image = store.types["sensor_msgs/msg/Image"]
    types = MessageTypes.from_typestore(store)
    height, width = array.shape[:2]
    rows = array.astype(array.dtype.newbyteorder(">" if bigendian else "<")).reshape(height, -1).view(np.uint8)
    step = step or rows.shape[1]
    padded = np.zeros((height, step), np.uint8)
    padded[:, :rows.shape[1]] = rows
    return Image(header=make_header(types, 0, "cam"), height=height, width=width, encoding=encoding,
                 is_bigendian=int(bigendian), step=step, data=padded.reshape(-1))


def test_row_padding_and_big_endian(store, rng):
    array = rng.integers(0, 65535, (4, 6), dtype=np.uint16)
    padded = cdr_round_trip(store, raw_image(store, array, "16UC1", step=16), "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(image_to_numpy(padded), array)
    big = cdr_round_trip(store, raw_image(store, array, "mono16", bigendian=True), "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(image_to_numpy(big), array)


@pytest.mark.parametrize("encoding, convert", [("rgb8", cv2.COLOR_RGB2BGR), ("rgba8", cv2.COLOR_RGBA2BGR),
                                               ("bgra8", cv2.COLOR_BGRA2BGR), ("mono8", cv2.COLOR_GRAY2BGR)])
def test_colour_encodings_become_bgr(store, encoding, convert, rng):
    array = sample(encoding, rng)
    msg = cdr_round_trip(store, raw_image(store, array, encoding), "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(image_to_bgr(msg), cv2.cvtColor(array, convert))


def test_bad_images_are_input_errors(store, rng):
    array = sample("bgr8", rng)
    with pytest.raises(InputError, match="encoding 'yuv422' is not supported"):
        image_to_numpy(raw_image(store, array, "yuv422"))
    short = raw_image(store, array, "bgr8")
    short.data = short.data[:-5]
    with pytest.raises(InputError, match="expected height\\*step"):
        image_to_numpy(short)
    narrow = raw_image(store, array, "bgr8")
    narrow.step = 3
    with pytest.raises(InputError, match="step 3 is shorter"):
        image_to_numpy(narrow)


@pytest.mark.parametrize("fmt, ext", [("jpeg", ".jpg"), ("png", ".png")])
def test_compressed_images(store, fmt, ext, rng):
    CompressedImage = store.types["sensor_msgs/msg/CompressedImage"]
    types = MessageTypes.from_typestore(store)
    image = np.zeros((24, 32, 3), np.uint8)
    image[4:20, 8:24] = (40, 160, 220)
    data = np.frombuffer(cv2.imencode(ext, image)[1].tobytes(), np.uint8)
    msg = cdr_round_trip(store, CompressedImage(header=make_header(types, 0, "cam"), format=fmt, data=data),
                         "sensor_msgs/msg/CompressedImage")
    decoded = compressed_to_bgr(msg)
    assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).mean() < 3
    msg.data = msg.data[: len(msg.data) // 3]  # a JPEG cut short still decodes in OpenCV, as grey rows
    with pytest.raises(InputError, match="truncated JPEG" if fmt == "jpeg" else "not a decodable image"):
        compressed_to_bgr(msg)
    msg.data = np.frombuffer(b"not an image", np.uint8)
    with pytest.raises(InputError, match="not a decodable image"):
        compressed_to_bgr(msg)


def test_detection_array_through_cdr(store):
    types = MessageTypes.from_typestore(store)
    header = make_header(types, 42, "cam")
    msg = detections_to_msg(types, header, np.array([[10, 20, 30, 60]]), np.array([7]), ["person"], np.array([3.5]))
    back = cdr_round_trip(store, msg, "vision_msgs/msg/Detection2DArray")
    (det,) = back.detections
    assert det.id == "7" and det.bbox.center.position.x == 20 and det.bbox.center.position.y == 40
    assert det.bbox.size_x == 20 and det.bbox.size_y == 40
    assert det.results[0].hypothesis.class_id == "person" and det.results[0].hypothesis.score == 3.5
    assert back.header.stamp.nanosec == 42 and det.header.frame_id == "cam"
    empty = detections_to_msg(types, header, np.zeros((0, 4)), np.zeros(0), [], np.zeros(0))
    assert cdr_round_trip(store, empty, "vision_msgs/msg/Detection2DArray").detections == []
