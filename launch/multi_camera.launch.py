"""One anomaly_node per camera, from a YAML list:

    ros2 launch tao_ros multi_camera.launch.py cameras:=/path/to/cameras.yaml [use_sim_time:=true]

cameras.yaml (see config/cameras.example.yaml):

    cameras:
      - name: front                      # node namespace; required, unique
        image_topic: /front/image_raw    # required
        depth_topic: /front/aligned_depth_to_color/image_raw   # depth aligned to the colour image
        use_depth: true
        compressed: false
        config: /path/to/front.yaml      # default: the package's config/anomaly.yaml
        model_path: /path/to/front.npz   # default: $ROS_HOME/tao_ros/front/anomaly_node/model.npz

What each entry starts is in ``tao_ros.launching.camera_nodes``, tested without launch_ros.
"""

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from tao_ros.launching import camera_nodes, parse


def start(context, cameras, use_sim_time):
    path = cameras.perform(context)
    with open(path) as handle:
        entries = (yaml.safe_load(handle) or {}).get("cameras")
    return [Node(**settings) for settings in camera_nodes(entries, get_package_share_directory("tao_ros"),
                                                            parse(use_sim_time.perform(context), bool), path)]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("cameras", description="YAML file with a 'cameras:' list (see the docstring)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true: every node's clock is /clock (ros2 bag play --clock)"),
        OpaqueFunction(function=start, kwargs={"cameras": LaunchConfiguration("cameras"),
                                               "use_sim_time": LaunchConfiguration("use_sim_time")}),
    ])
