"""Several cameras in one process (``multi_anomaly_node``) over DDS: each camera's outputs are its own,
whatever another camera is sent.

Runs where ROS 2 is installed, skipped elsewhere, except under TAO_ROS_REQUIRE_ROS=1 (CI)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import import_ros  # noqa: E402

rclpy, *_ = import_ros("rclpy", "vision_msgs", "std_srvs")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from conftest import scene_frames, spin_until  # noqa: E402
from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image  # noqa: E402
from tao_ros.launching import node_arguments  # noqa: E402

FRAMES = scene_frames(7, 24, anomalies=True)


@pytest.fixture
def ros(ros_domain):
    rclpy.init(domain_id=ros_domain)
    yield
    rclpy.shutdown()


def summary(msg) -> list[tuple]:
    """A detections message as comparable values: per object its box and score."""
    return [(round(d.bbox.center.position.x, 3), round(d.bbox.center.position.y, 3), round(d.bbox.size_x, 3),
             round(d.bbox.size_y, 3), round(d.results[0].hypothesis.score, 4) if d.results else None)
            for d in msg.detections]


def run_two_cameras(tmp_path, model, disturb: bool) -> tuple[dict, object, list[int]]:
    """Both cameras of one process fed the same good frames; with ``disturb`` the second also gets
    malformed images and a stream restart (time going back) between them. -> (the first camera's
    detections by stamp, the second camera's node, the stamps of its detections)."""
    from tao_ros.ros.multi_node import camera_settings
    from tao_ros.ros.node import AnomalyNode

    prefix = f"/tao_multi_{int(time.time() * 1000) % 100000}"
    tmp_path.mkdir()
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n" + "".join(
        f"  - {{name: {prefix}/{name}, image_topic: {prefix}/{name}/image_raw, model_path: {model}}}\n"
        for name in ("front", "rear")))
    nodes = [AnomalyNode(namespace=s["namespace"], cli_args=node_arguments(s))
             for s in camera_settings(cameras, use_sim_time=False)]
    front, rear = nodes
    assert front.engine.pipeline.fitted and rear.engine.pipeline.fitted
    peer = rclpy.create_node("camera_peer", namespace=prefix)
    executor = MultiThreadedExecutor()
    for node in (*nodes, peer):
        executor.add_node(node)
    received = {"front": {}, "rear": []}
    peer.create_subscription(Detection2DArray, f"{prefix}/front/anomaly_node/detections",
                             lambda msg: received["front"].setdefault(msg.header.stamp.sec, summary(msg)), 10)
    peer.create_subscription(Detection2DArray, f"{prefix}/rear/anomaly_node/detections",
                             lambda msg: received["rear"].append(msg.header.stamp.sec), 10)
    publishers = {name: peer.create_publisher(Image, f"{prefix}/{name}/image_raw", 10) for name in ("front", "rear")}
    types = MessageTypes.from_rclpy()
    try:
        assert spin_until(executor, lambda: all(p.get_subscription_count() > 0 for p in publishers.values()))
        for t, (image, *_rest) in enumerate(FRAMES):
            stamp = 10**9 * (t + 1)
            if disturb and t % 4 == 1:  # a malformed frame: its data shorter than its size says
                bad = numpy_to_image(types, make_header(types, stamp, "cam"), image, "bgr8")
                bad.data = bad.data[: len(bad.data) // 2]
                publishers["rear"].publish(bad)
            if disturb and t == 12:  # the rear camera's stream restarts: time goes back
                stamp_rear = 10**9
            else:
                stamp_rear = stamp
            publishers["rear"].publish(numpy_to_image(types, make_header(types, stamp_rear, "cam"), image, "bgr8"))
            publishers["front"].publish(numpy_to_image(types, make_header(types, stamp, "cam"), image, "bgr8"))
            assert spin_until(executor, lambda: t + 1 in received["front"], timeout=10.0)
        spin_until(executor, lambda: len(received["rear"]) >= 5, timeout=5.0)
        return received["front"], rear, received["rear"]
    finally:
        for node in nodes:
            node.stop()
        executor.shutdown()
        for node in (*nodes, peer):
            node.destroy_node()


def test_a_camera_sent_malformed_frames_and_a_restart_leaves_the_other_cameras_outputs_unchanged(ros, tmp_path,
                                                                                                model):
    quiet, _, _ = run_two_cameras(tmp_path / "quiet", model, disturb=False)
    disturbed, rear, rear_stamps = run_two_cameras(tmp_path / "disturbed", model, disturb=True)
    assert sorted(quiet) == sorted(disturbed) == list(range(1, len(FRAMES) + 1))
    assert disturbed == quiet  # every frame's boxes and scores
    assert any(quiet.values())  # there were objects to compare
    assert sum(rear.engine.bad_input.values()) >= 1 and rear.engine.counts["stream_restarts"] >= 1
    assert rear_stamps and max(rear_stamps) > 1  # and the disturbed camera went on
    assert np.all(np.diff([s for s in rear_stamps if s > 1][-3:]) > 0)
