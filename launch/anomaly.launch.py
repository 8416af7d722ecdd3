"""Start tao_ros' anomaly_node: ros2 launch tao_ros anomaly.launch.py image_topic:=/camera/image_raw

The arguments and what they set are in ``tao_ros.launching`` (ARGUMENTS), tested without launch_ros.
"""

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from tao_ros.launching import ARGUMENTS, anomaly_node


def start(context, **configs):
    values = {name: config.perform(context) for name, config in configs.items()}
    return [Node(**anomaly_node(values, get_package_share_directory("tao_ros")))]


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=doc)
                for name, (default, doc) in ARGUMENTS.items()]
    configs = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    return LaunchDescription([*declared, OpaqueFunction(function=start, kwargs=configs)])
