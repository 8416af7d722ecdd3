"""Rosbag replay: a bag's camera (and depth) messages through the node's engine into a new rosbag2.

Offline nothing is dropped: every valid input frame yields its outputs, stamped like the input.
With a depth topic and a camera_info topic (found beside it, or named), the 3D detections and
their markers are written too; the intrinsics are the first camera_info's (a fixed calibration).
Read and written with ``rosbags``, so no ROS installation is needed; the output bag holds message
types a ROS 2 install can play (vision_msgs definitions are registered with the typestore).
"""

from __future__ import annotations

import logging
from pathlib import Path

from tao_ros.core.pipeline import no_progress
from tao_ros.errors import InputError
from tao_ros.io.messages import MessageTypes
from tao_ros.io.sources import bag_camera_info, find_topics, paired_messages
from tao_ros.ros.engine import AnomalyEngine, InputFrame
from tao_ros.ros.msgdefs import typestore

log = logging.getLogger(__name__)

OUTPUT_TYPES = {
    "detections": "vision_msgs/msg/Detection2DArray",
    "instance_mask": "sensor_msgs/msg/Image",
    "anomaly_mask": "sensor_msgs/msg/Image",
    "overlay": "sensor_msgs/msg/Image",
    "detections_3d": "vision_msgs/msg/Detection3DArray",
    "markers": "visualization_msgs/msg/MarkerArray",
}


def replay(engine: AnomalyEngine, in_bag: Path, out_bag: Path, image_topic: str | None = None,
           depth_topic: str | None = None, node_name: str = "anomaly_node", distribution: str = "jazzy",
           progress=None, camera_info_topic: str | None = None) -> dict[str, int]:
    """Run every camera frame of ``in_bag`` through ``engine``; write its outputs to ``out_bag``
    under ``/NODE_NAME/<output>``. Depth is paired with the images within the engine's
    ``sync_slop``, as the node pairs live topics; frames left without depth are counted in
    ``engine.counts["without_depth"]``. Returns messages written per output topic."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import Writer

    in_bag, out_bag = Path(in_bag), Path(out_bag)
    if out_bag.exists():
        raise InputError(f"{out_bag} exists: rosbag2 writes a new bag; remove it or choose another name")
    image_topic, depth_topic, length = find_topics(in_bag, image_topic, depth_topic)
    if depth_topic is not None:
        camera_info = bag_camera_info(in_bag, depth_topic, camera_info_topic)
        if camera_info is None:
            log.warning("%s: no camera_info for the depth topic %s: 2D outputs only; name one with "
                        "--camera-info-topic", in_bag, depth_topic)
        else:
            engine.submit_camera_info(camera_info)
    store = typestore(distribution)
    types = MessageTypes.from_typestore(store)
    written = dict.fromkeys(OUTPUT_TYPES, 0)
    progress = progress or no_progress
    with AnyReader([in_bag]) as reader, Writer(out_bag, version=9) as writer:
        connections = {name: writer.add_connection(f"/{node_name}/{name}", msgtype, typestore=store)
                       for name, msgtype in OUTPUT_TYPES.items()}
        for log_time, image_msg, depth_msg, compressed in progress(
                paired_messages(reader, image_topic, depth_topic, engine.config.sync_slop), total=length):
            # counted as the node counts live frames that go on without depth
            engine.counts["without_depth"] += depth_topic is not None and depth_msg is None
            outputs = engine.process(InputFrame(image_msg, depth_msg, compressed))
            if outputs is None:
                continue
            for topic, msg in engine.messages(outputs, types, overlay=True, markers=True).items():
                name = topic.removeprefix("~/")
                writer.write(connections[name], log_time, store.serialize_cdr(msg, OUTPUT_TYPES[name]))
                written[name] += 1
    return written
