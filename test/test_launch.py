"""Launch files: their arguments, checked with ROS 2's launch where installed and from the source anyway."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

LAUNCH = Path(__file__).resolve().parent.parent / "launch"
EXPECTED = {"image_topic", "depth_topic", "config", "namespace", "compressed", "use_depth", "device", "model_path",
            "sam2_checkpoint", "detector_weights", "profile", "open_set_weights", "pose_weights", "appearance_weights"}


def literal(name, path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no {name}")


def test_anomaly_launch_declares_the_documented_arguments():
    arguments = literal("ARGUMENTS", LAUNCH / "anomaly.launch.py")
    assert EXPECTED <= set(arguments)
    assert all(doc for _, doc in arguments.values())
    from tao_ros.config import OPTIONS

    source = (LAUNCH / "anomaly.launch.py").read_text()
    for argument in ("compressed", "use_depth", "device", "model_path"):
        assert f'"{argument}": ("{argument}",' in source  # overrides the parameter of the same name
        assert argument in OPTIONS
    assert '"sam2.checkpoint"' in source and '"ultralytics.weights"' in source
    for parameter in ("open_set.weights", "pose.weights", "appearance.weights"):
        assert f'"{parameter}"' in source


def test_every_launch_profile_is_a_parameter_file_of_the_package_that_validates():
    from tao_ros.config import load_config
    from tao_ros.plugins import PluginRegistry

    profiles = literal("PROFILES", LAUNCH / "anomaly.launch.py")
    assert set(profiles) == {"default", "pretrained"}
    for file in profiles.values():
        config = load_config(LAUNCH.parent / "config" / file)
        PluginRegistry.discover().check_config(config.plugin_params)


def test_camera_example_matches_the_multi_camera_launch():
    known = literal("KNOWN_KEYS", LAUNCH / "multi_camera.launch.py")
    example = yaml.safe_load((LAUNCH.parent / "config" / "cameras.example.yaml").read_text())
    for camera in example["cameras"]:
        assert set(camera) <= known and {"name", "image_topic"} <= set(camera)


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_descriptions_load_with_ros2_launch():
    pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch.actions import DeclareLaunchArgument

    description = load(LAUNCH / "anomaly.launch.py").generate_launch_description()
    names = {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert EXPECTED <= names
    multi = load(LAUNCH / "multi_camera.launch.py").generate_launch_description()
    assert {a.name for a in multi.entities if isinstance(a, DeclareLaunchArgument)} == {"cameras"}
