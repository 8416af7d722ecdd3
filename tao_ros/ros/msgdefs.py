"""vision_msgs definitions (2D and 3D detections) for ``rosbags``, whose typestores do not include them.

The definitions are those of vision_msgs 4.x, shipped by both Humble and Jazzy (4.0 replaced
geometry_msgs/Pose2D in BoundingBox2D by vision_msgs/Pose2D with a Point2D position; 3.x, as on
Foxy and Galactic, differs). Humble and Jazzy typestores differ in their own base types (e.g. type
hashes for Jazzy bags), so the store is chosen by distribution.
"""

from __future__ import annotations

VISION_MSGS = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose":
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n",
    "vision_msgs/msg/Detection2D":
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\nvision_msgs/BoundingBox2D bbox\n"
        "string id\n",
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
    "vision_msgs/msg/BoundingBox3D": "geometry_msgs/Pose center\ngeometry_msgs/Vector3 size\n",
    "vision_msgs/msg/Detection3D":
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\nvision_msgs/BoundingBox3D bbox\n"
        "string id\n",
    "vision_msgs/msg/Detection3DArray": "std_msgs/Header header\nvision_msgs/Detection3D[] detections\n",
}

DISTRIBUTIONS = ("jazzy", "humble")


def typestore(distribution: str = "jazzy"):
    """A ``rosbags`` typestore of ``distribution`` with the vision_msgs types registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown ROS 2 distribution {distribution!r}; choose from {DISTRIBUTIONS}")
    store = get_typestore(Stores.ROS2_JAZZY if distribution == "jazzy" else Stores.ROS2_HUMBLE)
    types = {}
    for name, text in VISION_MSGS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store
