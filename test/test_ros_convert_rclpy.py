"""The ROS-free conversions on real rclpy messages (the node's path), as test_ros_convert checks them
on rosbags messages (the bag path): one conversion serves both.

Skipped where rclpy is absent, except under TAO_ROS_REQUIRE_ROS=1 (CI): there it must run.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import import_ros
from tao_ros.errors import InputError
from tao_ros.io.messages import (ENCODINGS, MessageTypes, compressed_to_bgr, detections_to_msg, image_to_numpy,
                                 make_header, numpy_to_image)

import_ros("rclpy", "sensor_msgs", "vision_msgs")


@pytest.fixture(scope="module")
def types():
    return MessageTypes.from_rclpy()


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_images_round_trip_through_rclpy_messages(types, encoding, rng):
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    dtype, channels = ENCODINGS[encoding]
    shape = (5, 7) if channels == 1 else (5, 7, channels)
    array = (rng.random(shape) * 200).astype(dtype)
    msg = numpy_to_image(types, make_header(types, 1_500_000_000, "cam"), array, encoding)
    back = deserialize_message(serialize_message(msg), Image)  # over the wire, as the node receives it
    np.testing.assert_array_equal(image_to_numpy(back), array)
    assert back.header.frame_id == "cam" and back.header.stamp.nanosec == 500_000_000


def test_compressed_and_detections_with_rclpy_messages(types):
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import CompressedImage
    from vision_msgs.msg import Detection2DArray

    image = np.zeros((24, 32, 3), np.uint8)
    image[4:20, 8:24] = (40, 160, 220)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    msg = CompressedImage(header=make_header(types, 0, "cam"), format="jpeg", data=data)
    back = deserialize_message(serialize_message(msg), CompressedImage)
    assert np.abs(compressed_to_bgr(back).astype(int) - image).mean() < 3
    back.data = back.data[: len(back.data) // 2]
    with pytest.raises(InputError, match="truncated JPEG"):
        compressed_to_bgr(back)
    detections = detections_to_msg(types, make_header(types, 42, "cam"), np.array([[10, 20, 30, 60]]),
                                   np.array([7]), ["person"], np.array([0.93]))
    (det,) = deserialize_message(serialize_message(detections), Detection2DArray).detections
    assert det.id == "7" and det.results[0].hypothesis.class_id == "person"
    assert det.results[0].hypothesis.score == pytest.approx(0.93)
    assert (det.bbox.center.position.x, det.bbox.size_y) == (20, 40)
