"""What the launch files start, as plain data: the arguments of ``anomaly.launch.py`` and each
camera entry of ``multi_camera.launch.py`` -> the anomaly_node's name, namespace, parameters,
remappings and ROS arguments (or, for every camera in one process, ``multi_anomaly_node``'s, which
gives each of its nodes the same as node arguments). ROS-free, so that it is tested where
``launch_ros`` is not installed; the launch files only turn it into ``launch_ros.actions.Node``."""

from __future__ import annotations

import json
import os

import yaml

from tao_ros.io.camera_info import camera_info_beside

ARGUMENTS = {
    "image_topic": ("/camera/image_raw", "camera topic (sensor_msgs/Image; with compressed:=true, its /compressed)"),
    # depth registered to the colour image, as RGB-D drivers name it (realsense2_camera with
    # align_depth.enable, Orbbec's with depth_registration); their /camera/depth/image_raw is in the
    # depth sensor's own frame and would put every 3D position off by the sensors' baseline
    "depth_topic": ("/camera/aligned_depth_to_color/image_raw",
                    "depth aligned to the colour image (16UC1 mm or 32FC1 m), used with use_depth:=true"),
    "camera_info_topic": ("", "camera_info of the depth-aligned image, for the 3D outputs with use_depth:=true "
                              "(default: camera_info beside the depth topic)"),
    "profile": ("default", "the package's parameter file to start from: default (weight-free, config/anomaly.yaml) "
                           "or pretrained (config/pretrained.yaml); config:= replaces it"),
    "config": ("", "parameter file (default: the profile's)"),
    "namespace": ("", "namespace of the node and its topics"),
    "node_name": ("anomaly_node", "node name"),
    "use_sim_time": ("false", "true: the node's clock is /clock (ros2 bag play --clock)"),
    "compressed": ("", "true: subscribe to sensor_msgs/CompressedImage (default: from the config)"),
    "use_depth": ("", "true: also subscribe to the depth topic (default: from the config)"),
    "device": ("", "cpu or cuda (default: from the config)"),
    "model_path": ("", "fitted model file from 'tao-ros fit' or the ~/calibrate service (default: from the config; "
                       "empty: $ROS_HOME/tao_ros/<namespace>/<node name>/model.npz)"),
    "sam2_checkpoint": ("", "SAM2 checkpoint, for segmenter: sam2 (default: from the config)"),
    "detector_weights": ("", "ultralytics weights, for detector: ultralytics (default: from the config)"),
    "open_set_weights": ("", "pretrained detector of detector: open_set (.pt, .tflite, .onnx, .torchscript, .engine)"),
    "pose_weights": ("", "pose model of the pose feature and the person segmenter (BlazePose .tflite or ultralytics "
                         "pose weights)"),
    "appearance_weights": ("", "backbone of the appearance feature (MobileNetV2 state dict or YOLO weights)"),
    "log_level": ("info", "logging level"),
}

OVERRIDES = {
    "compressed": ("compressed", bool),
    "use_depth": ("use_depth", bool),
    "device": ("device", str),
    "model_path": ("model_path", str),
    "sam2_checkpoint": ("sam2.checkpoint", str),
    "detector_weights": ("ultralytics.weights", str),
    "open_set_weights": ("open_set.weights", str),
    "pose_weights": (("pose.weights", "person.weights"), str),
    "appearance_weights": ("appearance.weights", str),
}
"""Launch argument -> (parameter or parameters it sets, type); only arguments given a value override the
parameter file."""

PROFILES = {"default": "anomaly.yaml", "pretrained": "pretrained.yaml"}

CAMERA_KEYS = {"name", "image_topic", "depth_topic", "camera_info_topic", "use_depth", "compressed", "config",
               "model_path", "device"}
"""Keys of a camera entry of multi_camera.launch.py's YAML list."""


def parse(value, kind: type):
    """A launch argument's text (or a YAML value) as ``kind``; ValueError for a bool that is none."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {value!r}")
        return str(value).lower() == "true"
    return value


def remappings(image_topic: str, depth_topic: str, camera_info_topic: str = "") -> list[tuple[str, str]]:
    """The node's inputs -> topics; camera_info defaults to the one beside the depth topic (as
    drivers publish them: ``/camera/aligned_depth_to_color/{image_raw,camera_info}``)."""
    return [("image", image_topic), ("image/compressed", image_topic.rstrip("/") + "/compressed"),
            ("depth", depth_topic), ("camera_info", camera_info_topic or camera_info_beside(depth_topic))]


def anomaly_node(values: dict[str, str], share: str) -> dict:
    """``anomaly.launch.py``'s argument values (every key of ARGUMENTS) and the package's share
    folder -> keyword arguments of ``launch_ros.actions.Node``."""
    if values["profile"] not in PROFILES:
        raise ValueError(f"profile:={values['profile']} is not one of {sorted(PROFILES)}")
    config_file = values["config"] or os.path.join(share, "config", PROFILES[values["profile"]])
    parameters = {"use_sim_time": parse(values["use_sim_time"], bool)}
    for argument, (names, kind) in OVERRIDES.items():
        if values[argument]:
            for name in (names,) if isinstance(names, str) else names:
                parameters[name] = parse(values[argument], kind)
    return {"package": "tao_ros", "executable": "anomaly_node", "name": values["node_name"],
            "namespace": values["namespace"], "output": "screen", "emulate_tty": True,
            "parameters": [config_file, parameters],
            "remappings": remappings(values["image_topic"], values["depth_topic"], values["camera_info_topic"]),
            "arguments": ["--ros-args", "--log-level", values["log_level"]]}


def read_cameras(path: str) -> list:
    """The ``cameras:`` list of a cameras YAML (``config/cameras.example.yaml``); ValueError naming
    the file when it cannot be read or holds no such list (``camera_nodes`` checks the entries)."""
    try:
        with open(path) as handle:
            document = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the cameras file ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("cameras"), list):
        raise ValueError(f"{path}: expected a 'cameras:' list with one entry per camera")
    return document["cameras"]


def camera_nodes(entries, share: str, use_sim_time: bool, source: str = "cameras") -> list[dict]:
    """``multi_camera.launch.py``'s camera entries -> keyword arguments of one Node each (namespace:
    the camera's name); ValueError naming the entry for a bad or repeated one."""
    if not entries:
        raise ValueError(f"{source}: expected a 'cameras:' list with one entry per camera")
    names, nodes = set(), []
    for index, camera in enumerate(entries):
        unknown = set(camera) - CAMERA_KEYS
        if unknown or "name" not in camera or "image_topic" not in camera:
            raise ValueError(f"{source}: camera {index}: needs 'name' and 'image_topic'; allowed keys "
                             f"{sorted(CAMERA_KEYS)}, unknown {sorted(unknown)}")
        if camera["name"] in names:
            raise ValueError(f"{source}: camera name {camera['name']!r} used twice")
        names.add(camera["name"])
        overrides = {key: camera[key] for key in ("use_depth", "compressed", "model_path", "device") if key in camera}
        nodes.append({"package": "tao_ros", "executable": "anomaly_node", "name": "anomaly_node",
                      "namespace": camera["name"], "output": "screen", "emulate_tty": True,
                      "parameters": [camera.get("config", os.path.join(share, "config", "anomaly.yaml")),
                                     {"use_sim_time": use_sim_time, **overrides}],
                      "remappings": remappings(camera["image_topic"], camera.get("depth_topic", "depth"),
                                               camera.get("camera_info_topic", ""))})
    return nodes


def camera_process(cameras_file: str, use_sim_time: bool) -> dict:
    """``multi_camera.launch.py one_process:=true``: keyword arguments of the one Node that serves every
    camera of ``cameras_file`` (``multi_anomaly_node``, its nodes named as ``camera_nodes`` names them;
    no node name here, which would rename all of them)."""
    return {"package": "tao_ros", "executable": "multi_anomaly_node", "output": "screen", "emulate_tty": True,
            "arguments": [cameras_file, *(["--use-sim-time"] if use_sim_time else [])]}


def node_arguments(node: dict) -> list[str]:
    """A node's keyword arguments (as ``camera_nodes`` gives them) -> the same as node-local ROS
    arguments (``--ros-args --params-file ... -p name:=value -r from:=to``), for a node made in this
    process (rclpy's ``Node(cli_args=...)``)."""
    arguments = ["--ros-args"]
    for parameters in node["parameters"]:
        if isinstance(parameters, dict):  # values as YAML (JSON is YAML): a path stays a string
            for name, value in parameters.items():
                arguments += ["-p", f"{name}:={json.dumps(value)}"]
        else:
            arguments += ["--params-file", str(parameters)]
    for source, target in node["remappings"]:
        arguments += ["-r", f"{source}:={target}"]
    return arguments
