"""Every camera of a YAML list: one anomaly_node process each, or all in one process with one
instance of each neural model shared by the cameras (one_process:=true, ``multi_anomaly_node``):

    ros2 launch tao_ros multi_camera.launch.py cameras:=/path/to/cameras.yaml [use_sim_time:=true]
        [one_process:=true]

cameras.yaml (see config/cameras.example.yaml):

    cameras:
      - name: front                      # node namespace; required, unique
        image_topic: /front/image_raw    # required
        depth_topic: /front/aligned_depth_to_color/image_raw   # depth aligned to the colour image
        use_depth: true
        compressed: false
        config: /path/to/front.yaml      # default: the package's config/anomaly.yaml
        model_path: /path/to/front.npz   # default: $ROS_HOME/tao_ros/front/anomaly_node/model.npz

What each entry starts is in ``tao_ros.launching.camera_nodes`` (``camera_process`` for one process),
tested without launch_ros.
"""

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from tao_ros.launching import camera_nodes, camera_process, parse, read_cameras


def start(context, cameras, use_sim_time, one_process):
    path = cameras.perform(context)
    entries = read_cameras(path)
    sim_time = parse(use_sim_time.perform(context), bool)
    nodes = camera_nodes(entries, get_package_share_directory("tao_ros"), sim_time, path)  # checks the entries
    if parse(one_process.perform(context), bool):
        return [Node(**camera_process(path, sim_time))]
    return [Node(**settings) for settings in nodes]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("cameras", description="YAML file with a 'cameras:' list (see the docstring)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true: every node's clock is /clock (ros2 bag play --clock)"),
        DeclareLaunchArgument("one_process", default_value="false",
                              description="true: every camera in one process (multi_anomaly_node), one instance "
                                          "of each neural model shared by all"),
        OpaqueFunction(function=start, kwargs={"cameras": LaunchConfiguration("cameras"),
                                               "use_sim_time": LaunchConfiguration("use_sim_time"),
                                               "one_process": LaunchConfiguration("one_process")}),
    ])
