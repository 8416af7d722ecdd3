"""Messages of objects located in 3D (``core.localization.Located``): vision_msgs/Detection3DArray
for planners and visualization_msgs/MarkerArray for RViz. Built with ``MessageTypes``, so the live
node and bags get the same messages."""

from __future__ import annotations

import numpy as np

from tao_ros.core.localization import Located
from tao_ros.io.messages import MessageTypes, hypothesis_msg, pose_msg

MARKER_CUBE, MARKER_TEXT, MARKER_ADD, MARKER_DELETEALL = 1, 9, 0, 3  # visualization_msgs/Marker constants


def _vector(types: MessageTypes, values: np.ndarray):
    x, y, z = (float(v) for v in values)
    return types.new("geometry_msgs/msg/Vector3", x=x, y=y, z=z)


def detections3d_to_msg(types: MessageTypes, header, located: Located, ids: np.ndarray, labels, scores: np.ndarray):
    """vision_msgs/Detection3DArray of the located objects (the others are left out): per object
    its id (as in the 2D detections), class label and score as the hypothesis, its centre as the
    hypothesis pose and the bbox centre, its extent as the bbox size (metres, the header's frame)."""
    detections = []
    for i in np.flatnonzero(located.located):
        hypothesis = hypothesis_msg(types, labels[i], scores[i], located.centre[i])
        bbox = types.new("vision_msgs/msg/BoundingBox3D", center=pose_msg(types, located.centre[i]),
                         size=_vector(types, located.size[i]))
        detections.append(types.new("vision_msgs/msg/Detection3D", header=header, results=[hypothesis], bbox=bbox,
                                    id=str(int(ids[i]))))
    return types.new("vision_msgs/msg/Detection3DArray", header=header, detections=detections)


def markers_msg(types: MessageTypes, header, located: Located, ids: np.ndarray, labels, scores: np.ndarray,
                lifetime_s: float = 0.5, min_size: float = 0.05):
    """visualization_msgs/MarkerArray: a DELETEALL first (objects gone since the last frame vanish
    at once), then per located object a translucent box (namespace ``tao_ros/box``, the object id
    as marker id) and a text above it with id, label and score (``tao_ros/label``). Each lives
    ``lifetime_s``, so that the markers of a node that stops disappear too; boxes are at least
    ``min_size`` thick on each axis (the visible surface of a flat object has no depth)."""
    lifetime = types.new("builtin_interfaces/msg/Duration", sec=int(lifetime_s),
                         nanosec=int(round((lifetime_s % 1) * 1e9)))
    markers = [types.new("visualization_msgs/msg/Marker", header=header, ns="", id=0, action=MARKER_DELETEALL)]
    for i in np.flatnonzero(located.located):
        object_id = int(ids[i])
        scale = np.maximum(located.size[i], min_size)
        red = types.new("std_msgs/msg/ColorRGBA", r=1.0, g=0.2, b=0.1, a=0.4)
        markers.append(types.new("visualization_msgs/msg/Marker", header=header, ns="tao_ros/box", id=object_id,
                                 type=MARKER_CUBE, action=MARKER_ADD, pose=pose_msg(types, located.centre[i]),
                                 scale=_vector(types, scale), color=red, lifetime=lifetime))
        above = located.centre[i] - np.array([0.0, scale[1] / 2 + 0.1, 0.0])  # y points down
        white = types.new("std_msgs/msg/ColorRGBA", r=1.0, g=1.0, b=1.0, a=1.0)
        markers.append(types.new("visualization_msgs/msg/Marker", header=header, ns="tao_ros/label", id=object_id,
                                 type=MARKER_TEXT, action=MARKER_ADD, pose=pose_msg(types, above),
                                 scale=_vector(types, np.array([0.0, 0.0, 0.2])), color=white, lifetime=lifetime,
                                 text=f"{object_id} {labels[i]} {float(scores[i]):.2f}"))
    return types.new("visualization_msgs/msg/MarkerArray", markers=markers)
