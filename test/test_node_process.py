"""``anomaly_node`` started as a process (as ``ros2 launch`` does), tested over DDS by a separate
rclpy node: outputs stamped like their input, lifecycle after a failed configure, Ctrl-C.

Skipped where ROS 2 is absent, except under TAO_ROS_REQUIRE_ROS=1 (CI): there it must run.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import import_ros, scene_frames, spin_until

rclpy, *_ = import_ros("rclpy", "vision_msgs", "std_srvs", "lifecycle_msgs")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.msg import Parameter as ParameterMsg  # noqa: E402
from rcl_interfaces.msg import ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from vision_msgs.msg import Detection2DArray, Detection3DArray  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from tao_ros.config import DEFAULT_CONFIG_PATH  # noqa: E402
from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image  # noqa: E402

SCENE = scene_frames(7, 30, anomalies=True)
FRAMES = [f[0] for f in SCENE]


@pytest.fixture
def peer(ros_domain):
    rclpy.init(domain_id=ros_domain)
    node = rclpy.create_node("test_peer")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown()


def start_node(*parameters: str, config=DEFAULT_CONFIG_PATH) -> subprocess.Popen:
    executable = shutil.which("anomaly_node") or sys.exit("anomaly_node is not installed: pip install -e .")
    args = [executable, "--ros-args", "--params-file", str(config)]
    for parameter in ("qos_reliability:=reliable", *parameters):
        args += ["-p", parameter]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.stdout.read()


def call(peer, service_type, name, request, timeout=30.0):
    node, executor = peer
    client = node.create_client(service_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f"{name} never appeared"
    future = client.call_async(request)
    assert spin_until(executor, future.done, timeout)
    return future.result()


def stream_and_collect(peer, frames, first_stamp=1):
    """Publish ``frames`` as camera images; returns (sent stamps, output topic -> received messages)."""
    node, executor = peer
    received = {"detections": [], "instance_mask": [], "anomaly_mask": []}
    for name, msg_type in (("detections", Detection2DArray), ("instance_mask", Image), ("anomaly_mask", Image)):
        node.create_subscription(msg_type, f"/anomaly_node/{name}", lambda m, n=name: received[n].append(m), 50)
    publisher = node.create_publisher(Image, "/image", 10)
    assert spin_until(executor, lambda: publisher.get_subscription_count() > 0), "the node never subscribed"
    types = MessageTypes.from_rclpy()
    sent = []
    for t, image in enumerate(frames):
        stamp = first_stamp + t
        publisher.publish(numpy_to_image(types, make_header(types, stamp * 10**9, f"cam{stamp}"), image, "bgr8"))
        sent.append(stamp)
        spin_until(executor, lambda: len(received["anomaly_mask"]) >= len(sent), timeout=5.0)
    spin_until(executor, lambda: len(received["anomaly_mask"]) >= len(sent), timeout=10.0)
    return sent, received


def test_frames_in_every_output_out_stamped_like_its_input_and_ctrl_c_while_streaming(peer, model):
    process = start_node(f"model_path:={model}")
    try:
        sent, received = stream_and_collect(peer, FRAMES)
        assert len(received["anomaly_mask"]) >= 0.8 * len(sent)  # newest-frame hand-off may drop a few
        for messages in received.values():
            for msg in messages:
                stamp = msg.header.stamp.sec
                assert stamp in sent and msg.header.frame_id == f"cam{stamp}"
        assert any(m.detections for m in received["detections"]), "the scene's anomalies were detected"
        node, executor = peer
        publisher = node.create_publisher(Image, "/image", 10)
        types = MessageTypes.from_rclpy()
        for t in range(5):  # Ctrl-C while frames flow
            publisher.publish(numpy_to_image(types, make_header(types, (100 + t) * 10**9, "cam"), FRAMES[t], "bgr8"))
            executor.spin_once(timeout_sec=0.02)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


def test_a_failed_configure_with_autostart_leaves_the_node_up_and_a_later_configure_works(peer, model, tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a model")
    process = start_node(f"model_path:={garbage}", "diagnostics_period:=0.2")
    node, executor = peer
    statuses = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(m.status), 10)
    try:
        state = call(peer, GetState, "/anomaly_node/get_state", GetState.Request())
        assert state.current_state.label == "unconfigured"
        assert spin_until(executor, lambda: any("configure failed" in s.message for s in statuses))
        assert statuses[-1].level == DiagnosticStatus.WARN and "not a tao_ros model file" in statuses[-1].message
        time.sleep(1.0)
        assert process.poll() is None, "the node died after a failed configure"
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(model))
        result = call(peer, SetParameters, "/anomaly_node/set_parameters",
                      SetParameters.Request(parameters=[ParameterMsg(name="model_path", value=value)]))
        assert result.results[0].successful
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            request = ChangeState.Request()
            request.transition.id = transition
            assert call(peer, ChangeState, "/anomaly_node/change_state", request).success
        sent, received = stream_and_collect(peer, FRAMES[:10])
        assert received["detections"] and {m.header.stamp.sec for m in received["detections"]} <= set(sent)
    finally:
        output = stop(process)
    assert "configure failed" in output and "not a tao_ros model file" in output, output
    assert "Traceback" not in output, output


def test_depth_is_paired_over_dds_and_a_silent_depth_topic_is_reported(peer, model):
    process = start_node(f"model_path:={model}", "use_depth:=true", "diagnostics_period:=0.2")
    node, executor = peer
    diagnostics = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.extend(m.status), 10)
    outputs = []
    node.create_subscription(Image, "/anomaly_node/anomaly_mask", outputs.append, 50)
    images = node.create_publisher(Image, "/image", 10)
    depths = node.create_publisher(Image, "/depth", 10)
    types = MessageTypes.from_rclpy()
    depth = np.full(FRAMES[0].shape[:2], 4.0, np.float32)
    try:
        assert spin_until(executor, lambda: images.get_subscription_count() and depths.get_subscription_count())
        for t, image in enumerate(FRAMES[:12]):
            header = make_header(types, (t + 1) * 10**9, "cam")
            pair = [(images, numpy_to_image(types, header, image, "bgr8")),
                    (depths, numpy_to_image(types, header, depth, "32FC1"))]
            for publisher, msg in (pair if t % 2 else pair[::-1]):  # either arrival order
                publisher.publish(msg)
            spin_until(executor, lambda: len(outputs) > t, timeout=5.0)

        def values():
            return {kv.key: kv.value for kv in diagnostics[-1].values} if diagnostics else {}

        assert spin_until(executor, lambda: int(values().get("processed", 0)) >= 8)
        assert values()["without_depth"] == "0"
        for t, image in enumerate(FRAMES[12:24]):  # the depth camera falls silent
            images.publish(numpy_to_image(types, make_header(types, (t + 20) * 10**9, "cam"), image, "bgr8"))
            spin_until(executor, lambda: False, timeout=0.3)
        assert spin_until(executor, lambda: "no depth image" in (diagnostics[-1].message if diagnostics else ""))
        assert int(values()["without_depth"]) > 0 and diagnostics[-1].level == DiagnosticStatus.WARN
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


def change_state(peer, transition: int) -> bool:
    request = ChangeState.Request()
    request.transition.id = transition
    return call(peer, ChangeState, "/anomaly_node/change_state", request).success


def set_parameter(peer, name: str, value) -> object:
    if isinstance(value, float):
        parameter_value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    else:
        parameter_value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=parameter_value)])
    return call(peer, SetParameters, "/anomaly_node/set_parameters", request).results[0]


def latest_diagnostics(peer):
    node, executor = peer
    statuses = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(m.status), 10)

    def values():
        return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}

    return statuses, values


def test_lifecycle_cycles_never_bring_back_the_old_streams_objects(peer, model):
    process = start_node(f"model_path:={model}")
    blank = np.full_like(FRAMES[0], 96)
    try:
        # the whole scene, as its crate (from frame 25) is found however many frames the worker's
        # newest-frame hand-off drops; in the first 15 frames, only while it drops none
        _, first = stream_and_collect(peer, FRAMES)
        assert any(m.detections for m in first["detections"])
        assert change_state(peer, Transition.TRANSITION_DEACTIVATE)
        assert change_state(peer, Transition.TRANSITION_ACTIVATE)
        _, second = stream_and_collect(peer, [blank] * 8, first_stamp=100)  # a new, empty scene
        assert second["detections"] and not any(m.detections for m in second["detections"])
        assert all(not np.asarray(m.data).any() for m in second["instance_mask"])
        for transition in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP,
                           Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert change_state(peer, transition), transition
        _, third = stream_and_collect(peer, FRAMES, first_stamp=200)
        assert any(m.detections for m in third["detections"])
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


def test_runtime_threshold_changes_what_is_published(peer, model):
    process = start_node(f"model_path:={model}")
    try:
        assert not set_parameter(peer, "threshold", 1e9).successful  # the quantile sets it
        assert set_parameter(peer, "threshold_quantile", 0.0).successful
        assert set_parameter(peer, "threshold", 1e9).successful
        _, none = stream_and_collect(peer, FRAMES[:12])
        assert none["detections"] and not any(m.detections for m in none["detections"])
        assert set_parameter(peer, "threshold", -1e9).successful
        _, every = stream_and_collect(peer, FRAMES[12:24], first_stamp=50)
        assert sum(len(m.detections) for m in every["detections"]) >= len(every["detections"])
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


def publish_until(peer, frames, condition, first_stamp=1, timeout=60.0) -> bool:
    """Publish ``frames`` as camera images, over and over with rising stamps, until ``condition()``
    holds (calibration publishes no outputs to wait for). Repeating makes the test independent of
    frames lost before DDS matched the publisher or dropped by the node's newest-frame hand-off."""
    node, executor = peer
    publisher = node.create_publisher(Image, "/image", 10)
    assert spin_until(executor, lambda: publisher.get_subscription_count() > 0)
    types = MessageTypes.from_rclpy()
    end = time.monotonic() + timeout
    stamp = first_stamp
    while time.monotonic() < end and not condition():
        image = frames[(stamp - first_stamp) % len(frames)]
        publisher.publish(numpy_to_image(types, make_header(types, stamp * 10**9, "cam"), image, "bgr8"))
        stamp += 1
        spin_until(executor, condition, timeout=0.1)
    node.destroy_publisher(publisher)
    return condition()


def test_calibrate_creates_the_model_and_a_failed_one_keeps_detecting(peer, tmp_path):
    from std_srvs.srv import Trigger

    path = tmp_path / "robot" / "normal.npz"
    process = start_node(f"model_path:={path}", "calibration_frames:=40", "diagnostics_period:=0.2")
    statuses, _ = latest_diagnostics(peer)
    node, executor = peer
    try:
        assert spin_until(executor, lambda: statuses and "call ~/calibrate to create" in statuses[-1].message)
        assert call(peer, Trigger, "/anomaly_node/calibrate", Trigger.Request()).success
        assert publish_until(peer, [f[0] for f in scene_frames(3, 40, anomalies=False)],
                             lambda: statuses[-1].message.startswith("detecting"))
        assert path.is_file()
        assert call(peer, Trigger, "/anomaly_node/calibrate", Trigger.Request()).success
        blank = [np.full_like(FRAMES[0], 96)]  # nothing to learn from
        assert publish_until(peer, blank, lambda: "calibration failed" in statuses[-1].message, first_stamp=100)
        assert "previous model" in statuses[-1].message
        # the whole scene: the fast mover enters at frame 10, and when the worker's newest-frame hand-off
        # drops every other frame, the first model finds it only from frame 16 on
        _, after = stream_and_collect(peer, FRAMES, first_stamp=300)
        assert any(m.detections for m in after["detections"])  # still detecting with the first model
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


def test_malformed_messages_are_counted_and_dropped(peer, model):
    process = start_node(f"model_path:={model}", "use_depth:=true", "diagnostics_period:=0.2")
    statuses, values = latest_diagnostics(peer)
    node, executor = peer
    types = MessageTypes.from_rclpy()
    images = node.create_publisher(Image, "/image", 10)
    depths = node.create_publisher(Image, "/depth", 10)
    try:
        assert spin_until(executor, lambda: images.get_subscription_count() and depths.get_subscription_count())
        depth = np.full(FRAMES[0].shape[:2], 4.0, np.float32)

        def handled():  # frames processed or dropped as bad images
            return int(values().get("processed", 0)) + int(values().get("bad_input_image", 0))

        cases = ["valid", "encoding", "short data", "depth size", "nan depth", "valid"]
        for t, case in enumerate(cases):
            header = make_header(types, (t + 1) * 10**9, "cam")
            image = numpy_to_image(types, header, FRAMES[t], "bgr8")
            depth_msg = numpy_to_image(types, header, depth, "32FC1")
            if case == "encoding":
                image.encoding = "yuv422_weird"
            elif case == "short data":
                image.data = image.data[:100]
            elif case == "depth size":
                depth_msg = numpy_to_image(types, header, depth[:10, :10], "32FC1")
            elif case == "nan depth":
                depth_msg = numpy_to_image(types, header, np.full_like(depth, np.nan), "32FC1")
            depths.publish(depth_msg)
            images.publish(image)
            # one case at a time: a case sent while the node is busy would replace the waiting one
            assert spin_until(executor, lambda: handled() > t, timeout=30), (case, values())
        # two images dropped; the wrong-size depth dropped (its frame goes on without depth); NaN depth
        # is "unknown" depth, not an error
        assert spin_until(executor, lambda: values().get("bad_input_image") == "2"
                          and values().get("bad_input_depth") == "1" and int(values().get("processed", 0)) >= 3), values()
        assert process.poll() is None
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


def test_an_incompatible_publisher_qos_is_reported_by_policy(peer, model):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    process = start_node(f"model_path:={model}")  # subscribes reliable
    node, executor = peer
    publisher = node.create_publisher(Image, "/image", QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    try:
        spin_until(executor, lambda: False, timeout=4.0)
        del publisher
    finally:
        output = stop(process)
    assert "incompatible" in output and "RELIABILITY" in output.upper(), output


def test_a_misspelled_parameter_is_refused_at_configure_with_the_nearest_name(peer, model):
    """'thresold: 0.5' was silently ignored by the node (the CLI refused it)."""
    process = start_node(f"model_path:={model}", "thresold:=0.5", "diagnostics_period:=0.2")
    node, executor = peer
    statuses = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(m.status), 10)
    try:
        assert spin_until(executor, lambda: any("configure failed" in s.message for s in statuses))
        assert "did you mean 'threshold'" in statuses[-1].message
        state = call(peer, GetState, "/anomaly_node/get_state", GetState.Request())
        assert state.current_state.label == "unconfigured"
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


def test_image_depth_and_camera_info_in_3d_detections_and_markers_out_over_dds(peer, model):
    from tao_ros.eval.location import instance_under, location_errors, true_extents
    from tao_ros.eval.synth import Camera

    # a lower threshold than the shipped one, for more anomalous objects to place: this is about
    # where they are put, not how many are found
    process = start_node(f"model_path:={model}", "use_depth:=true", "threshold_quantile:=0.9")
    node, executor = peer
    received = {"detections": [], "detections_3d": [], "markers": []}
    for name, msg_type in (("detections", Detection2DArray), ("detections_3d", Detection3DArray),
                           ("markers", MarkerArray)):
        node.create_subscription(msg_type, f"/anomaly_node/{name}", lambda m, n=name: received[n].append(m), 50)
    images, depths = node.create_publisher(Image, "/image", 10), node.create_publisher(Image, "/depth", 10)
    infos = node.create_publisher(CameraInfo, "/camera_info", 10)
    intrinsics = Camera().intrinsics()
    types = MessageTypes.from_rclpy()
    truth_by_stamp = {}
    try:
        assert spin_until(executor, lambda: all(p.get_subscription_count() for p in (images, depths, infos)))
        for t, (image, depth, instances, anomalous_ids) in enumerate(SCENE):
            header = make_header(types, (t + 1) * 10**9, "camera_optical_frame")
            info = CameraInfo(header=header, width=intrinsics.width, height=intrinsics.height,
                              distortion_model="plumb_bob", d=[0.0] * 5,
                              k=[intrinsics.fx, 0.0, intrinsics.cx, 0.0, intrinsics.fy, intrinsics.cy, 0.0, 0.0, 1.0])
            infos.publish(info)
            depths.publish(numpy_to_image(types, header, depth, "32FC1"))
            images.publish(numpy_to_image(types, header, image, "bgr8"))
            anomalous = np.where(np.isin(instances, list(anomalous_ids)), instances, 0)
            truth_by_stamp[t + 1] = (anomalous, true_extents(anomalous, depth, intrinsics))
            spin_until(executor, lambda: len(received["detections"]) > t, timeout=5.0)
        assert spin_until(executor, lambda: sum(len(m.detections) for m in received["detections_3d"]) >= 5)
    finally:
        output = stop(process)
    assert "Traceback" not in output, output
    boxes = {(m.header.stamp.sec, d.id): d.bbox for m in received["detections"] for d in m.detections}
    errors = []
    for message in received["detections_3d"]:
        stamp = message.header.stamp.sec
        assert stamp in truth_by_stamp and message.header.frame_id == "camera_optical_frame"
        anomalous, truth = truth_by_stamp[stamp]
        for detection in message.detections:
            box = boxes[(stamp, detection.id)]  # every 3D detection is a published 2D one, same id
            x, y, w, h = box.center.position.x, box.center.position.y, box.size_x, box.size_y
            true_id = int(instance_under(np.array([[x - w / 2, y - h / 2, x + w / 2, y + h / 2]]), anomalous)[0])
            if true_id:
                p = detection.bbox.center.position
                errors.append(location_errors([p.x, p.y, p.z], [0, 0, 0], *truth[true_id])[1])
    assert errors and np.median(errors) < 0.05, errors
    assert received["markers"], "the peer subscribes to ~/markers, so they are made"
    assert received["markers"][-1].markers[0].action == 3  # DELETEALL, then the objects' boxes and labels
    assert {m.markers[0].header.stamp.sec for m in received["markers"]} <= set(truth_by_stamp)
