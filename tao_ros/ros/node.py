"""``anomaly_node``: the rclpy lifecycle node. Thin: every decision is made by ``AnomalyEngine``.

configure  = read parameters, load models     activate   = subscribe, publish, start the worker
deactivate = unsubscribe, stop, free GPU memory  cleanup = drop publishers and models
"""

from __future__ import annotations

import signal
import threading

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import MarkerArray

from tao_ros.config import OPTIONS, from_mapping, is_ros_own
from tao_ros.errors import TaoRosError
from tao_ros.io.messages import MessageTypes
from tao_ros.ros.diagnostics import LEVELS, free_gpu_memory
from tao_ros.ros.engine import AnomalyEngine

try:  # Jazzy
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

OUTPUTS = {"~/detections": Detection2DArray, "~/instance_mask": Image, "~/anomaly_mask": Image, "~/overlay": Image,
           "~/detections_3d": Detection3DArray, "~/markers": MarkerArray}
ON_DEMAND = ("~/overlay", "~/markers", "~/instance_mask", "~/anomaly_mask")  # made only while someone subscribes
OVERRIDABLE = QoSOverridingOptions.with_default_policies()  # history, depth, reliability per topic


class AnomalyNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("anomaly_node", allow_undeclared_parameters=True,
                         automatically_declare_parameters_from_overrides=True, **kwargs)
        for name, param in OPTIONS.items():
            if not self.has_parameter(name):
                self.declare_parameter(name, param.default)
        self.engine: AnomalyEngine | None = None
        self.types = MessageTypes.from_rclpy()
        self.publishers_by_topic = {}
        self.subscriptions_active = []
        self.worker: threading.Thread | None = None
        self.running = threading.Event()
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.create_service(Trigger, "~/calibrate", self.on_calibrate)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.state_note = "unconfigured: call configure (lifecycle) or start with autostart: true"
        # diagnostics in every state, so that an unconfigured or inactive node says why nothing comes out
        self.diagnostics_timer = self.create_timer(self.get_parameter("diagnostics_period").value,
                                                   self.publish_diagnostics)
        # a configure that fails leaves the node up and unconfigured (it says why); activating it
        # then would be an invalid transition that ends the process
        if self.get_parameter("autostart").value and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # -------------------------------------------------------------- parameters
    def config_mapping(self) -> dict:
        """Every parameter but ROS' own: a misspelled one reaches ``from_mapping``, which refuses it
        with the nearest valid name (as the CLI does), rather than being ignored."""
        names = [n for n in self.list_parameters([], 0).names if not is_ros_own(n)]
        return {name: self.get_parameter(name).value for name in names}

    def on_set_parameters(self, parameters) -> SetParametersResult:
        if self.engine is None:
            return SetParametersResult(successful=True)
        for parameter in parameters:
            if is_ros_own(parameter.name):
                continue
            if parameter.name in OPTIONS and self.engine.config.options[parameter.name] == parameter.value:
                continue  # the node reporting the engine's own change (model_path after ~/calibrate)
            reason = self.engine.set_parameter(parameter.name, parameter.value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    # -------------------------------------------------------------- lifecycle
    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.engine = AnomalyEngine(from_mapping(self.config_mapping()), node_name=self.get_fully_qualified_name())
        except TaoRosError as exc:
            self.state_note = f"unconfigured: configure failed: {exc}"
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        # qos_overrides.<topic>.publisher.<policy> parameters apply (ROS 2's QoS overriding)
        self.publishers_by_topic = {topic: self.create_lifecycle_publisher(msg_type, topic, 10,
                                                                           qos_overriding_options=OVERRIDABLE)
                                    for topic, msg_type in OUTPUTS.items()}
        self.get_logger().info(f"configured: {self.engine.status}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        config = self.engine.config
        qos = QoSProfile(depth=config.qos_depth, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.BEST_EFFORT if config.qos_reliability == "best_effort"
                         else ReliabilityPolicy.RELIABLE)
        events = SubscriptionEventCallbacks(incompatible_qos=self.on_incompatible_qos)
        image_type, image_topic = (CompressedImage, "image/compressed") if config.compressed else (Image, "image")
        # qos_reliability and qos_depth set the defaults; qos_overrides.<topic>.subscription.<policy>
        # parameters, where given, override them per topic (ROS 2's QoS overriding)
        self.subscriptions_active = [self.create_subscription(
            image_type, image_topic, lambda msg: self.engine.submit_image(msg, config.compressed), qos,
            event_callbacks=events, qos_overriding_options=OVERRIDABLE)]
        if config.use_depth:
            self.subscriptions_active += [
                self.create_subscription(Image, "depth", self.engine.submit_depth, qos, event_callbacks=events,
                                         qos_overriding_options=OVERRIDABLE),
                self.create_subscription(CameraInfo, "camera_info", self.engine.submit_camera_info, qos,
                                         event_callbacks=events, qos_overriding_options=OVERRIDABLE)]
        if self.worker is not None:  # one that outlived its stop: never run two
            self.worker.join()
        self.running.set()
        self.worker = threading.Thread(target=self.work, name="tao_ros_worker", daemon=True)
        self.worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        if self.engine is not None:
            self.engine.restart_stream("cleanup")  # a frame still in flight is never published
        for publisher in self.publishers_by_topic.values():
            self.destroy_publisher(publisher)
        self.publishers_by_topic, self.engine = {}, None
        self.state_note = "unconfigured: cleaned up; call configure (lifecycle)"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Stop the worker first, then forget the stream: a frame in flight must not re-add the old
        stream's objects after the reset."""
        self.running.clear()
        if self.engine is not None:
            self.engine.slot.put(None)  # wake the worker
        if self.worker is not None:
            self.worker.join(timeout=5.0)
            if self.worker.is_alive():  # a frame still in the models: activate waits for it
                self.get_logger().error("worker still busy after 5 s; it stops after its current frame")
            else:
                self.worker = None
        if self.engine is not None:
            # a frame still in the models is discarded when it comes out, and its state reset
            self.engine.restart_stream("lifecycle stop")
        for subscription in self.subscriptions_active:
            self.destroy_subscription(subscription)
        self.subscriptions_active = []
        free_gpu_memory()

    # -------------------------------------------------------------- work
    def work(self) -> None:
        engine, publishers = self.engine, self.publishers_by_topic  # what this worker was started with

        def publish(outputs) -> None:  # called by the engine only for frames of the current stream
            wanted = {topic: publishers[topic].get_subscription_count() > 0 for topic in ON_DEMAND}
            masks = wanted["~/instance_mask"] or wanted["~/anomaly_mask"]
            for topic, msg in engine.messages(outputs, self.types, wanted["~/overlay"], wanted["~/markers"],
                                              masks).items():
                publishers[topic].publish(msg)

        while self.running.is_set():
            engine.step(timeout=0.1, publish=publish)  # never raises: a frame's failure is counted and logged
        self.report_model_path()

    def report_model_path(self) -> None:
        """After ~/calibrate, the model_path parameter names the file in use."""
        if self.engine is not None and self.get_parameter("model_path").value != self.engine.config.model_path:
            self.set_parameters([Parameter("model_path", value=self.engine.config.model_path)])

    def on_incompatible_qos(self, event) -> None:
        self.get_logger().warning(
            f"a publisher's QoS is incompatible with this subscription (policy {event.last_policy_kind}): nothing "
            f"will arrive. Set qos_reliability to match the camera (now {self.engine.config.qos_reliability})",
            throttle_duration_sec=5.0)

    def on_calibrate(self, request, response):
        if self.engine is None:
            response.success, response.message = False, "node is not configured"
        else:
            response.success, response.message = True, self.engine.start_calibration()
        return response

    def publish_diagnostics(self) -> None:
        if self.engine is None or not self.running.is_set():
            note = self.state_note if self.engine is None else "inactive: call activate (lifecycle)"
            self.get_logger().warning(f"no outputs: {note}", throttle_duration_sec=10.0)
            self._publish_status(DiagnosticStatus.WARN, note, {"status": note})
            return
        self.report_model_path()
        values = self.engine.diagnostics(worker_alive=self.worker is not None and self.worker.is_alive())
        level = dict(zip(LEVELS, (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)))
        self._publish_status(level[values["level"]], f"{values['level_reason']} ({values['status']})", values)

    def _publish_status(self, level, message: str, values: dict) -> None:
        status = DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: anomaly detection",
                                  message=message, hardware_id="tao_ros",
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def init(args=None) -> None:
    """rclpy.init with Ctrl-C and SIGTERM ending the spin here rather than in rclpy's handler, which
    would invalidate the ROS context under the worker threads: the workers stop first, then the context."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def spin(nodes: list[AnomalyNode]) -> None:
    """Spin ``nodes`` in one executor until interrupted; then stop each one's worker and destroy it."""
    executor = MultiThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for node in nodes:
            node.stop()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def main(args=None) -> None:
    init(args)
    spin([AnomalyNode()])
