"""Rosbag replay: a bag's camera (and depth) messages through the node's engine into a new rosbag2.

Offline nothing is dropped: every valid input frame yields its outputs, stamped like the input.
Read and written with ``rosbags``, so no ROS installation is needed; the output bag holds message
types a ROS 2 install can play (vision_msgs definitions are registered with the typestore).
"""

from __future__ import annotations

from pathlib import Path

from tao_ros.core.pipeline import no_progress
from tao_ros.errors import InputError
from tao_ros.io.messages import MessageTypes
from tao_ros.io.sources import find_topics, paired_messages
from tao_ros.ros.engine import AnomalyEngine, InputFrame
from tao_ros.ros.msgdefs import typestore

OUTPUT_TYPES = {
    "detections": "vision_msgs/msg/Detection2DArray",
    "instance_mask": "sensor_msgs/msg/Image",
    "anomaly_mask": "sensor_msgs/msg/Image",
    "overlay": "sensor_msgs/msg/Image",
}


def replay(engine: AnomalyEngine, in_bag: Path, out_bag: Path, image_topic: str | None = None,
           depth_topic: str | None = None, node_name: str = "anomaly_node", distribution: str = "jazzy",
           progress=None) -> dict[str, int]:
    """Run every camera frame of ``in_bag`` through ``engine``; write its outputs to ``out_bag``
    under ``/NODE_NAME/<output>``. Returns messages written per output topic."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import Writer

    in_bag, out_bag = Path(in_bag), Path(out_bag)
    if out_bag.exists():
        raise InputError(f"{out_bag} exists: rosbag2 writes a new bag; remove it or choose another name")
    image_topic, depth_topic, length = find_topics(in_bag, image_topic, depth_topic)
    store = typestore(distribution)
    types = MessageTypes.from_typestore(store)
    written = dict.fromkeys(OUTPUT_TYPES, 0)
    progress = progress or no_progress
    with AnyReader([in_bag]) as reader, Writer(out_bag, version=9) as writer:
        connections = {name: writer.add_connection(f"/{node_name}/{name}", msgtype, typestore=store)
                       for name, msgtype in OUTPUT_TYPES.items()}
        for log_time, image_msg, depth_msg, compressed in progress(
                paired_messages(reader, image_topic, depth_topic), total=length):
            outputs = engine.process(InputFrame(image_msg, depth_msg, compressed))
            if outputs is None:
                continue
            for topic, msg in engine.messages(outputs, types, overlay=True).items():
                name = topic.removeprefix("~/")
                writer.write(connections[name], log_time, store.serialize_cdr(msg, OUTPUT_TYPES[name]))
                written[name] += 1
    return written
