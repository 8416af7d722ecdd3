"""Start tao_ros' anomaly_node: ros2 launch tao_ros anomaly.launch.py image_topic:=/camera/image_raw"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

ARGUMENTS = {
    "image_topic": ("/camera/image_raw", "camera topic (sensor_msgs/Image; with compressed:=true, its /compressed)"),
    "depth_topic": ("/camera/depth/image_raw", "aligned depth topic (16UC1 mm or 32FC1 m), used with use_depth:=true"),
    "profile": ("default", "the package's parameter file to start from: default (weight-free, config/anomaly.yaml) "
                           "or pretrained (config/pretrained.yaml); config:= replaces it"),
    "config": ("", "parameter file (default: the profile's)"),
    "namespace": ("", "namespace of the node and its topics"),
    "node_name": ("anomaly_node", "node name"),
    "compressed": ("", "true: subscribe to sensor_msgs/CompressedImage (default: from the config)"),
    "use_depth": ("", "true: also subscribe to the depth topic (default: from the config)"),
    "device": ("", "cpu or cuda (default: from the config)"),
    "model_path": ("", "fitted model file from 'tao-ros fit' or the ~/calibrate service (default: from the config)"),
    "sam2_checkpoint": ("", "SAM2 checkpoint, for segmenter: sam2 (default: from the config)"),
    "detector_weights": ("", "ultralytics weights, for detector: ultralytics (default: from the config)"),
    "open_set_weights": ("", "pretrained detector of detector: open_set (.pt, .tflite, .onnx, .torchscript, .engine)"),
    "pose_weights": ("", "pose model of the pose feature (BlazePose .tflite or ultralytics pose weights)"),
    "appearance_weights": ("", "backbone of the appearance feature (MobileNetV2 state dict or YOLO weights)"),
    "log_level": ("info", "logging level"),
}

# launch argument -> (parameter, type); only arguments given a value override the parameter file
OVERRIDES = {
    "compressed": ("compressed", bool),
    "use_depth": ("use_depth", bool),
    "device": ("device", str),
    "model_path": ("model_path", str),
    "sam2_checkpoint": ("sam2.checkpoint", str),
    "detector_weights": ("ultralytics.weights", str),
    "open_set_weights": ("open_set.weights", str),
    "pose_weights": ("pose.weights", str),
    "appearance_weights": ("appearance.weights", str),
}
PROFILES = {"default": "anomaly.yaml", "pretrained": "pretrained.yaml"}


def parse(value: str, kind: type):
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {value!r}")
        return value.lower() == "true"
    return value


def anomaly_node(context, image_topic, depth_topic, profile, config, namespace, node_name, log_level, **overrides):
    name = profile.perform(context)
    if name not in PROFILES:
        raise ValueError(f"profile:={name} is not one of {sorted(PROFILES)}")
    config_file = config.perform(context) or os.path.join(get_package_share_directory("tao_ros"), "config",
                                                         PROFILES[name])
    parameters = {}
    for argument, (parameter, kind) in OVERRIDES.items():
        value = overrides[argument].perform(context)
        if value:
            parameters[parameter] = parse(value, kind)
    image = image_topic.perform(context)
    return [Node(
        package="tao_ros", executable="anomaly_node", name=node_name.perform(context),
        namespace=namespace.perform(context), output="screen", emulate_tty=True,
        parameters=[config_file, parameters],
        remappings=[("image", image), ("image/compressed", image.rstrip("/") + "/compressed"),
                    ("depth", depth_topic.perform(context))],
        arguments=["--ros-args", "--log-level", log_level.perform(context)],
    )]


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=doc)
                for name, (default, doc) in ARGUMENTS.items()]
    configs = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    return LaunchDescription([*declared, OpaqueFunction(function=anomaly_node, kwargs=configs)])
