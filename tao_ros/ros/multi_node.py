"""``multi_anomaly_node``: every camera of a cameras YAML in one process.

    ros2 run tao_ros multi_anomaly_node cameras.yaml [--use-sim-time]
    ros2 launch tao_ros multi_camera.launch.py cameras:=cameras.yaml one_process:=true

Each camera is an ``AnomalyNode`` of its own, in its namespace, with what ``multi_camera.launch.py``
gives a node process (``launching.camera_nodes``: parameter file, overrides, remappings) as node
arguments: its own stream state, density model (``model_path``, ``~/calibrate``), threshold,
topics, diagnostics, lifecycle and worker thread. What they share is the neural models: one
detector, pose and appearance model for all cameras (``builtin/shared_models.py``), called one
camera at a time in the order the cameras asked, so that under load every camera gets its share.
A camera's bad message, stall or calibration stays its own: its worker alone waits on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rclpy.utilities import remove_ros_args

from tao_ros.config import DEFAULT_CONFIG_PATH
from tao_ros.launching import camera_nodes, node_arguments, read_cameras
from tao_ros.ros.node import AnomalyNode, init, spin


def package_share() -> str:
    """The package's share folder (installed: ament's; from a source checkout: the checkout)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return get_package_share_directory("tao_ros")
    except (ImportError, LookupError, OSError):  # not installed by colcon (PackageNotFoundError is a KeyError)
        return str(DEFAULT_CONFIG_PATH.parent.parent)


def camera_settings(cameras_file: Path, use_sim_time: bool) -> list[dict]:
    """The cameras YAML -> per camera the node keyword arguments ``camera_nodes`` gives (ValueError
    naming the file and entry for a bad one)."""
    return camera_nodes(read_cameras(str(cameras_file)), package_share(), use_sim_time, str(cameras_file))


def main(args=None) -> None:
    parser = argparse.ArgumentParser(prog="multi_anomaly_node", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cameras", type=Path, help="YAML file with a 'cameras:' list (config/cameras.example.yaml)")
    parser.add_argument("--use-sim-time", action="store_true", help="every camera's clock is /clock")
    options = parser.parse_args(remove_ros_args(args if args is not None else sys.argv)[1:])
    try:
        settings = camera_settings(options.cameras, options.use_sim_time)
    except ValueError as exc:
        parser.exit(2, f"multi_anomaly_node: {exc}\n")
    init(args)
    spin([AnomalyNode(namespace=s["namespace"], cli_args=node_arguments(s)) for s in settings])
