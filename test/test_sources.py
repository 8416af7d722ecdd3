"""Frame sources: a bag's camera frames paired with the depth image of the same stamp, in any log order."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags")  # pure-Python bag library from PyPI; ROS machines may lack it

from tao_ros.errors import InputError
from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image
from tao_ros.io.sources import open_clips
from tao_ros.ros.msgdefs import typestore


def write_bag(path, events, depth_delay_ns: int = 0):
    """events: (topic, stamp index, array, encoding) in log order; depth stamped ``depth_delay_ns``
    after the image of its index (an RGB-D driver without hardware sync)."""
    from rosbags.rosbag2 import Writer

    store = typestore("jazzy")
    types = MessageTypes.from_typestore(store)
    with Writer(path, version=9) as writer:
        connections = {}
        for topic, index, array, encoding in events:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, "sensor_msgs/msg/Image", typestore=store)
            stamp = 10**9 * (index + 1) + (depth_delay_ns if "depth" in topic else 0)
            msg = numpy_to_image(types, make_header(types, stamp, "cam"), array, encoding)
            writer.write(connections[topic], stamp + len(connections), store.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def test_bag_frames_pair_depth_in_either_order_and_keep_unpaired_frames(tmp_path):
    image = [np.full((4, 6, 3), 10 * i, np.uint8) for i in range(4)]
    depth = [np.full((4, 6), 1000 * (i + 1), np.uint16) for i in range(4)]
    events = [("/cam/image", 0, image[0], "bgr8"), ("/cam/depth", 0, depth[0], "16UC1"),  # depth after
              ("/cam/depth", 1, depth[1], "16UC1"), ("/cam/image", 1, image[1], "bgr8"),  # depth before
              ("/cam/image", 2, image[2], "bgr8"),                                         # never gets depth
              ("/cam/image", 3, image[3], "bgr8"), ("/cam/depth", 3, depth[3], "16UC1")]
    write_bag(tmp_path / "bag", events)
    (clip,) = open_clips(tmp_path / "bag", depth_topic="/cam/depth")
    assert clip.image_topic == "/cam/image" and clip.length == 4
    frames = list(clip.frames())
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 10, 20, 30]
    assert [None if f.depth is None else int(f.depth[0, 0]) for f in frames] == [1000, 2000, None, 4000]


def test_bag_topic_choice_errors(tmp_path):
    frame = np.zeros((4, 6, 3), np.uint8)
    write_bag(tmp_path / "two", [("/a/image", 0, frame, "bgr8"), ("/b/image", 0, frame, "bgr8")])
    with pytest.raises(InputError, match="2 camera topics .*--image-topic"):
        open_clips(tmp_path / "two")
    assert open_clips(tmp_path / "two", image_topic="/b/image")[0].image_topic == "/b/image"


def test_frame_files_are_read_in_natural_order(tmp_path):
    """ffmpeg's %d.jpg: 1.png ... 12.png were read as 1, 10, 11, 12, 2, ..."""
    import cv2

    folder = tmp_path / "clip"
    folder.mkdir()
    for number in range(1, 13):
        cv2.imwrite(str(folder / f"{number}.png"), np.full((8, 8), number * 10, np.uint8))
    [clip] = open_clips(folder)
    assert [int(f.image[0, 0, 0]) // 10 for f in clip.frames()] == list(range(1, 13))


def test_bag_depth_stamped_apart_from_its_image_is_paired_within_sync_slop_and_said_when_not(tmp_path, caplog):
    """Depth stamped 1 ms after its image: the node paired it, run and replay paired none (exact stamps)."""
    import logging

    image = [np.full((4, 6, 3), 10 * i, np.uint8) for i in range(3)]
    depth = [np.full((4, 6), 1000 * (i + 1), np.uint16) for i in range(3)]
    events = [event for i in range(3) for event in (("/cam/image", i, image[i], "bgr8"),
                                                    ("/cam/depth", i, depth[i], "16UC1"))]
    write_bag(tmp_path / "bag", events, depth_delay_ns=1_000_000)
    (clip,) = open_clips(tmp_path / "bag", depth_topic="/cam/depth", sync_slop=0.05)
    assert [int(f.depth[0, 0]) for f in clip.frames()] == [1000, 2000, 3000]
    (exact,) = open_clips(tmp_path / "bag", depth_topic="/cam/depth", sync_slop=0.0)
    with caplog.at_level(logging.WARNING):
        assert all(f.depth is None for f in exact.frames())
    assert any("3 camera frames had no /cam/depth message stamped within sync_slop (0 s)" in r.getMessage()
               for r in caplog.records)
