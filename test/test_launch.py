"""Launch files: what each starts (tao_ros.launching, ROS-free) and, where ROS 2's launch is
installed, the launch descriptions built and executed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from tao_ros.config import OPTIONS, load_config
from tao_ros.launching import (ARGUMENTS, OVERRIDES, PROFILES, anomaly_node, camera_nodes, camera_process,
                               node_arguments, read_cameras)
from tao_ros.plugins import PluginRegistry

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / "launch"
DEFAULTS = {name: default for name, (default, _) in ARGUMENTS.items()}


def test_every_argument_is_documented_and_every_override_is_a_parameter():
    assert all(doc for _, doc in ARGUMENTS.values())
    registry = PluginRegistry.discover()
    for argument, (parameters, _) in OVERRIDES.items():
        assert argument in ARGUMENTS
        for parameter in (parameters,) if isinstance(parameters, str) else parameters:
            if "." in parameter:
                plugin, key = parameter.split(".")
                assert key in next(i for infos in registry.infos.values() for n, i in infos.items()
                                   if n == plugin).cls.params
            else:
                assert parameter in OPTIONS


def test_the_node_gets_the_remappings_profile_and_only_the_overrides_given():
    node = anomaly_node({**DEFAULTS, "image_topic": "/front/color/", "depth_topic": "/front/aligned_depth",
                         "namespace": "front", "use_depth": "true", "open_set_weights": "/models/yolo.onnx",
                         "use_sim_time": "true", "profile": "pretrained"}, "/share/tao_ros")
    assert node["namespace"] == "front" and node["name"] == "anomaly_node"
    assert node["remappings"] == [("image", "/front/color/"), ("image/compressed", "/front/color/compressed"),
                                  ("depth", "/front/aligned_depth"), ("camera_info", "/front/camera_info")]
    realsense = anomaly_node({**DEFAULTS, "depth_topic": "/camera/aligned_depth_to_color/image_raw"}, "/s")
    assert realsense["remappings"][-1] == ("camera_info", "/camera/aligned_depth_to_color/camera_info")
    named = anomaly_node({**DEFAULTS, "camera_info_topic": "/rgb/camera_info"}, "/s")
    assert named["remappings"][-1] == ("camera_info", "/rgb/camera_info")
    config_file, overrides = node["parameters"]
    assert config_file == "/share/tao_ros/config/pretrained.yaml"
    assert overrides == {"use_sim_time": True, "use_depth": True, "open_set.weights": "/models/yolo.onnx"}
    # the pose model is also the person segmenter's: one argument sets both
    posed = anomaly_node({**DEFAULTS, "pose_weights": "/models/pose.tflite"}, "/s")["parameters"][1]
    assert posed["pose.weights"] == posed["person.weights"] == "/models/pose.tflite"
    plain = anomaly_node(DEFAULTS, "/share/tao_ros")
    assert plain["parameters"] == ["/share/tao_ros/config/anomaly.yaml", {"use_sim_time": False}]
    # by default the depth that drivers register to the colour image, never the depth sensor's own
    assert ("depth", "/camera/aligned_depth_to_color/image_raw") in plain["remappings"]
    assert ("camera_info", "/camera/aligned_depth_to_color/camera_info") in plain["remappings"]
    assert anomaly_node({**DEFAULTS, "config": "/mine.yaml"}, "/s")["parameters"][0] == "/mine.yaml"
    with pytest.raises(ValueError, match="profile:=fast is not one of"):
        anomaly_node({**DEFAULTS, "profile": "fast"}, "/s")
    with pytest.raises(ValueError, match="expected true or false"):
        anomaly_node({**DEFAULTS, "use_depth": "yes"}, "/s")


def test_every_launch_profile_is_a_parameter_file_of_the_package_that_validates():
    assert set(PROFILES) == {"default", "pretrained"}
    for file in PROFILES.values():
        config = load_config(ROOT / "config" / file)
        PluginRegistry.discover().check_config(config.plugin_params)


def test_multi_camera_nodes_one_namespace_each_with_sim_time_and_entries_checked():
    example = yaml.safe_load((ROOT / "config" / "cameras.example.yaml").read_text())["cameras"]
    nodes = camera_nodes(example, "/share/tao_ros", use_sim_time=True)
    assert [n["namespace"] for n in nodes] == [c["name"] for c in example]
    for node, camera in zip(nodes, example):
        assert node["remappings"][0] == ("image", camera["image_topic"])
        assert node["parameters"][1]["use_sim_time"] is True
    with pytest.raises(ValueError, match="camera name 'a' used twice"):
        camera_nodes([{"name": "a", "image_topic": "/x"}] * 2, "/s", False)
    with pytest.raises(ValueError, match=r"camera 0: needs 'name' and 'image_topic'.*unknown \['topic'\]"):
        camera_nodes([{"name": "a", "topic": "/x"}], "/s", False)


def test_a_cameras_file_without_a_list_of_cameras_is_refused_naming_it(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("cameras:\n  - {name: front, image_topic: /f}\n")
    assert read_cameras(str(good)) == [{"name": "front", "image_topic": "/f"}]
    for name, text in (("list.yaml", "- {name: front}\n"), ("empty.yaml", ""), ("other.yaml", "cameras: front\n"),
                       ("broken.yaml", "cameras: [\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=name):
            read_cameras(str(tmp_path / name))
    with pytest.raises(ValueError, match="missing.yaml: cannot read"):
        read_cameras(str(tmp_path / "missing.yaml"))


def test_one_process_serves_every_camera_with_the_arguments_a_node_process_would_get():
    assert camera_process("/c.yaml", use_sim_time=True) == {
        "package": "tao_ros", "executable": "multi_anomaly_node", "output": "screen", "emulate_tty": True,
        "arguments": ["/c.yaml", "--use-sim-time"]}
    assert camera_process("/c.yaml", use_sim_time=False)["arguments"] == ["/c.yaml"]
    [node] = camera_nodes([{"name": "front", "image_topic": "/f/image", "use_depth": True,
                            "model_path": "/m/front model.npz"}], "/share", use_sim_time=True)
    assert node_arguments(node) == [
        "--ros-args", "--params-file", "/share/config/anomaly.yaml", "-p", "use_sim_time:=true",
        "-p", "use_depth:=true", "-p", 'model_path:="/m/front model.npz"',
        "-r", "image:=/f/image", "-r", "image/compressed:=/f/image/compressed", "-r", "depth:=depth",
        "-r", "camera_info:=camera_info"]


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_descriptions_build_and_start_the_node_with_ros2_launch(tmp_path):
    pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import Node

    module = load(LAUNCH / "anomaly.launch.py")
    description = module.generate_launch_description()
    assert {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)} == set(ARGUMENTS)
    context = LaunchContext()
    context.launch_configurations.update({**DEFAULTS, "image_topic": "/cam/image"})
    opaque = next(a for a in description.entities if isinstance(a, OpaqueFunction))
    [node] = opaque.execute(context)
    assert isinstance(node, Node)
    multi = load(LAUNCH / "multi_camera.launch.py").generate_launch_description()
    assert {a.name for a in multi.entities if isinstance(a, DeclareLaunchArgument)} == {"cameras", "use_sim_time",
                                                                                           "one_process"}
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: front, image_topic: /front/image}\n  - {name: rear, image_topic: /r}\n")
    context.launch_configurations.update({"cameras": str(cameras), "use_sim_time": "true", "one_process": "false"})
    opaque = next(a for a in multi.entities if isinstance(a, OpaqueFunction))
    assert len(opaque.execute(context)) == 2
    context.launch_configurations["one_process"] = "true"
    assert len(opaque.execute(context)) == 1
