"""The rclpy node over DDS: publish camera images, receive detections and masks stamped like them.

Runs where ROS 2 (rclpy, vision_msgs, std_srvs, diagnostic_msgs) is installed, skipped elsewhere, except
under TAO_ROS_REQUIRE_ROS=1 (CI, which installs the Jazzy wheels and builds vision_msgs): there it must run.
"""

from __future__ import annotations

import time

import pytest

from conftest import import_ros  # noqa: E402

rclpy, *_ = import_ros("rclpy", "vision_msgs", "std_srvs")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from conftest import scene_frames, spin_until  # noqa: E402
from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image  # noqa: E402


@pytest.fixture
def ros(ros_domain):
    rclpy.init(domain_id=ros_domain)
    yield
    rclpy.shutdown()


def test_images_in_detections_and_masks_out(ros, model):
    from tao_ros.ros.node import AnomalyNode

    namespace = f"/tao_test_{int(time.time() * 1000) % 100000}"
    node = AnomalyNode(namespace=namespace, parameter_overrides=[
        Parameter("model_path", value=str(model)), Parameter("qos_reliability", value="reliable")])
    peer = rclpy.create_node("camera_peer", namespace=namespace)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(peer)
    received = {"detections": [], "instance_mask": [], "anomaly_mask": []}
    for name, msg_type in (("detections", Detection2DArray), ("instance_mask", Image), ("anomaly_mask", Image)):
        peer.create_subscription(msg_type, f"{namespace}/anomaly_node/{name}",
                                 lambda msg, n=name: received[n].append(msg), 10)
    publisher = peer.create_publisher(Image, f"{namespace}/image", 10)
    types = MessageTypes.from_rclpy()
    sent = []
    try:
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0)
        for t, (image, *_rest) in enumerate(scene_frames(7, 20, anomalies=True)):
            msg = numpy_to_image(types, make_header(types, 10**9 * (t + 1), "cam"), image, "bgr8")
            publisher.publish(msg)
            sent.append(t + 1)
            spin_until(executor, lambda: len(received["anomaly_mask"]) >= len(sent), timeout=5.0)
        assert spin_until(executor, lambda: all(len(v) >= 5 for v in received.values()))
        stamps = {m.header.stamp.sec for m in received["detections"]}
        assert stamps <= set(sent)
        mask = received["anomaly_mask"][-1]
        assert mask.encoding == "mono8" and (mask.width, mask.height) == (360, 240)
        assert received["instance_mask"][-1].encoding == "mono16"
        assert all(m.header.frame_id == "cam" for m in received["detections"])
    finally:
        node.stop()
        executor.shutdown()
        node.destroy_node()
        peer.destroy_node()


def test_runtime_threshold_is_validated(ros, model):
    from tao_ros.ros.node import AnomalyNode

    node = AnomalyNode(namespace="/tao_param_test", parameter_overrides=[Parameter("model_path", value=str(model))])
    try:
        refused = node.set_parameters([Parameter("threshold", value=4.0)])[0]
        assert not refused.successful and "threshold_quantile" in refused.reason  # the quantile sets it
        assert node.set_parameters([Parameter("threshold_quantile", value=0.0)])[0].successful
        assert node.set_parameters([Parameter("threshold", value=4.0)])[0].successful
        assert node.engine.pipeline.threshold == 4.0
        assert not node.set_parameters([Parameter("prompt_interval", value=0)])[0].successful
        assert not node.set_parameters([Parameter("detector", value="other")])[0].successful
    finally:
        node.stop()
        node.destroy_node()


def test_qos_overrides_parameters_set_the_qos_of_inputs_and_outputs(ros, model):
    """qos_overrides.* were accepted and ignored: subscriptions and publishers were made without
    qos_overriding_options."""
    from rclpy.qos import ReliabilityPolicy

    from tao_ros.ros.node import AnomalyNode

    namespace = f"/tao_qos_{int(time.time() * 1000) % 100000}"
    node = AnomalyNode(namespace=namespace, parameter_overrides=[
        Parameter("model_path", value=str(model)), Parameter("qos_reliability", value="best_effort"),
        Parameter(f"qos_overrides.{namespace}/image.subscription.reliability", value="reliable"),
        Parameter(f"qos_overrides.{namespace}/image.subscription.depth", value=3),
        Parameter(f"qos_overrides.{namespace}/anomaly_node/detections.publisher.reliability", value="best_effort")])
    try:
        (image,) = node.get_subscriptions_info_by_topic(f"{namespace}/image")
        assert image.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        assert node.subscriptions_active[0].qos_profile.depth == 3  # history depth is not in the graph's info
        (detections,) = node.get_publishers_info_by_topic(f"{namespace}/anomaly_node/detections")
        assert detections.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        (mask,) = node.get_publishers_info_by_topic(f"{namespace}/anomaly_node/anomaly_mask")
        assert mask.qos_profile.reliability == ReliabilityPolicy.RELIABLE  # not overridden: the default
    finally:
        node.stop()
        node.destroy_node()
