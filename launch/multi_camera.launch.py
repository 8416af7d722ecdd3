"""One anomaly_node per camera, from a YAML list:

    ros2 launch tao_ros multi_camera.launch.py cameras:=/path/to/cameras.yaml

cameras.yaml (see config/cameras.example.yaml):

    cameras:
      - name: front                      # node namespace; required, unique
        image_topic: /front/image_raw    # required
        depth_topic: /front/depth/image_raw
        use_depth: true
        compressed: false
        config: /path/to/front.yaml      # default: the package's config/anomaly.yaml
        model_path: /path/to/front.npz
"""

import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

KNOWN_KEYS = {"name", "image_topic", "depth_topic", "use_depth", "compressed", "config", "model_path", "device"}


def camera_nodes(context, cameras):
    path = cameras.perform(context)
    with open(path) as handle:
        entries = (yaml.safe_load(handle) or {}).get("cameras")
    if not entries:
        raise RuntimeError(f"{path}: expected a 'cameras:' list with one entry per camera")
    default_config = os.path.join(get_package_share_directory("tao_ros"), "config", "anomaly.yaml")
    names = set()
    nodes = []
    for index, camera in enumerate(entries):
        unknown = set(camera) - KNOWN_KEYS
        if unknown or "name" not in camera or "image_topic" not in camera:
            raise RuntimeError(f"{path}: camera {index}: needs 'name' and 'image_topic'; allowed keys "
                               f"{sorted(KNOWN_KEYS)}, unknown {sorted(unknown)}")
        if camera["name"] in names:
            raise RuntimeError(f"{path}: camera name {camera['name']!r} used twice")
        names.add(camera["name"])
        overrides = {key: camera[key] for key in ("use_depth", "compressed", "model_path", "device") if key in camera}
        image = camera["image_topic"]
        nodes.append(Node(
            package="tao_ros", executable="anomaly_node", name="anomaly_node", namespace=camera["name"],
            output="screen", emulate_tty=True, parameters=[camera.get("config", default_config), overrides],
            remappings=[("image", image), ("image/compressed", image.rstrip("/") + "/compressed"),
                        ("depth", camera.get("depth_topic", "depth"))]))
    return nodes


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("cameras", description="YAML file with a 'cameras:' list (see the docstring)"),
        OpaqueFunction(function=camera_nodes, kwargs={"cameras": LaunchConfiguration("cameras")}),
    ])
