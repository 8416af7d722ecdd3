"""'tao-ros replay': a synthetic bag through the node's code into a new bag that rosbags opens."""

from __future__ import annotations

import pytest

pytest.importorskip("rosbags")  # pure-Python bag library from PyPI; ROS machines may lack it

from tao_ros.cli import main


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    from tao_ros.eval.synth import synthesize

    root = tmp_path_factory.mktemp("bags")
    synthesize(root / "data", seed=3, train_frames=120, test_frames=40, storage="mcap")
    assert main(["fit", str(root / "data" / "normal"), "-o", str(root / "model.npz")]) == 0
    return root


def read_stamps(bag, topics=None):
    from rosbags.highlevel import AnyReader

    from tao_ros.ros.msgdefs import typestore

    stamps = {}
    with AnyReader([bag], default_typestore=typestore("jazzy")) as reader:
        for connection, _, raw in reader.messages([c for c in reader.connections if topics is None or c.topic in topics]):
            msg = reader.deserialize(raw, connection.msgtype)
            header = msg.header if hasattr(msg, "header") else msg.markers[0].header  # a MarkerArray has none
            stamps.setdefault(connection.topic, []).append(header.stamp.sec * 10**9 + header.stamp.nanosec)
    return stamps


def test_replay_writes_every_output_stamped_like_the_input_3d_from_the_bags_camera_info(bags, capsys):
    out = bags / "replayed"
    assert main(["replay", str(bags / "data" / "test"), str(out), "-m", str(bags / "model.npz"),
                 "--depth-topic", "/camera/depth/image_raw"]) == 0
    outputs = read_stamps(out)
    assert set(outputs) == {f"/anomaly_node/{t}" for t in ("detections", "instance_mask", "anomaly_mask", "overlay",
                                                            "detections_3d", "markers")}
    inputs = read_stamps(bags / "data" / "test", {"/camera/image_raw"})["/camera/image_raw"]
    for topic, stamps in outputs.items():
        assert stamps == inputs, topic  # offline nothing is dropped, and stamps are the inputs'
    printed = capsys.readouterr().out
    assert "/anomaly_node/detections: 40" in printed and "anomalous objects located" in printed


def test_replayed_3d_detections_deserialize_as_the_2d_ones_located(bags):
    """With the real message types: each Detection3D names a 2D detection of its frame, in front of
    the camera, and the markers draw each located object."""
    from rosbags.highlevel import AnyReader

    from tao_ros.ros.msgdefs import typestore

    out = bags / "replayed_3d"
    assert main(["replay", str(bags / "data" / "test"), str(out), "-m", str(bags / "model.npz"),
                 "--depth-topic", "/camera/depth/image_raw", "--camera-info-topic", "/camera/camera_info"]) == 0
    by_topic: dict[str, dict] = {}
    with AnyReader([out], default_typestore=typestore("jazzy")) as reader:
        for connection, _, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec) if hasattr(msg, "header") else \
                (msg.markers[0].header.stamp.sec, msg.markers[0].header.stamp.nanosec)
            by_topic.setdefault(connection.msgtype, {})[stamp] = msg
    detections_2d = by_topic["vision_msgs/msg/Detection2DArray"]
    located = 0
    for stamp, message in by_topic["vision_msgs/msg/Detection3DArray"].items():
        ids_2d = {d.id for d in detections_2d[stamp].detections}
        for detection in message.detections:
            assert detection.id in ids_2d and 1.0 < detection.bbox.center.position.z < 40.0
            located += 1
        markers = by_topic["visualization_msgs/msg/MarkerArray"][stamp].markers
        assert len(markers) == 1 + 2 * len(message.detections)
    assert located > 0


def test_replay_refuses_to_overwrite_and_needs_a_camera_topic(bags, capsys):
    existing = bags / "exists"
    existing.mkdir()
    assert main(["replay", str(bags / "data" / "test"), str(existing), "-m", str(bags / "model.npz")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["replay", str(bags / "data" / "test"), str(bags / "x"), "-m", str(bags / "model.npz"),
                 "--image-topic", "/nope"]) == 2
    assert "no topic '/nope'" in capsys.readouterr().err


def read_rows(path):
    import csv

    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_run_adds_3d_columns_from_the_bags_camera_info_or_an_intrinsics_file(bags, tmp_path, capsys):
    from tao_ros.eval.synth import Camera
    from tao_ros.io.outputs import LOCATION_HEADER, OBJECTS_HEADER

    test_bag, model = str(bags / "data" / "test"), str(bags / "model.npz")
    assert main(["run", test_bag, "-m", model, "-o", str(tmp_path / "info"), "--depth-topic",
                 "/camera/depth/image_raw"]) == 0
    assert "object rows located in 3D" in capsys.readouterr().out
    rows = read_rows(tmp_path / "info" / "test" / "objects.csv")
    assert rows[0] == OBJECTS_HEADER + LOCATION_HEADER
    located = [r for r in rows[1:] if r[7]]
    assert len(located) >= 0.9 * (len(rows) - 1)  # every synthetic object has valid depth under it
    for row in located:
        x, y, z, *size, pixels = map(float, row[7:])
        assert 5.0 < z < 30.0 and pixels >= 20 and all(s >= 0 for s in size)
    camera = Camera().intrinsics()
    calibration = tmp_path / "camera.yaml"
    calibration.write_text(f"image_width: {camera.width}\nimage_height: {camera.height}\ncamera_matrix:\n"
                           f"  data: [{camera.fx}, 0, {camera.cx}, 0, {camera.fy}, {camera.cy}, 0, 0, 1]\n")
    assert main(["run", test_bag, "-m", model, "-o", str(tmp_path / "file"), "--depth-topic",
                 "/camera/depth/image_raw", "--intrinsics", str(calibration)]) == 0
    from_file = read_rows(tmp_path / "file" / "test" / "objects.csv")
    # the same positions (scores may differ in the last digit: multi-threaded float sums)
    assert [r[:6] + r[7:] for r in from_file] == [r[:6] + r[7:] for r in rows]
    assert main(["eval", str(tmp_path / "info"), "--gt", test_bag, "-o", str(tmp_path / "report")]) == 0
    assert main(["run", test_bag, "-m", model, "-o", str(tmp_path / "2d")]) == 0  # no depth: no 3D columns
    assert read_rows(tmp_path / "2d" / "test" / "objects.csv")[0] == OBJECTS_HEADER
    assert main(["run", test_bag, "-m", model, "-o", str(tmp_path / "x"), "--intrinsics", str(calibration)]) == 2
    assert "--intrinsics needs depth" in capsys.readouterr().err
    for command in (["run", test_bag, "-o", str(tmp_path / "y")], ["replay", test_bag, str(tmp_path / "y.bag")]):
        assert main([*command, "-m", model, "--depth-topic", "/camera/depth/image_raw",
                     "--camera-info-topic", "/camera/rgb/camera_info"]) == 2  # a named topic the bag lacks
        assert "no camera_info topic '/camera/rgb/camera_info'; its sensor_msgs/CameraInfo topics are " \
               "['/camera/camera_info']" in capsys.readouterr().err


def depth_stamped_later(source, target, delay_ns):
    """A copy of the bag ``source`` whose depth images are stamped ``delay_ns`` after their image,
    as RGB-D drivers without hardware sync stamp them."""
    import dataclasses

    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import Writer

    from tao_ros.ros.msgdefs import typestore

    store = typestore("jazzy")
    with AnyReader([source], default_typestore=store) as reader, Writer(target, version=9) as writer:
        connections = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        for connection, log_time, raw in reader.messages():
            if connection.topic == "/camera/depth/image_raw":
                msg = reader.deserialize(raw, connection.msgtype)
                total = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec + delay_ns
                stamp = dataclasses.replace(msg.header.stamp, sec=total // 10**9, nanosec=total % 10**9)
                msg = dataclasses.replace(msg, header=dataclasses.replace(msg.header, stamp=stamp))
                raw = store.serialize_cdr(msg, connection.msgtype)
            writer.write(connections[connection.id], log_time, raw)


def test_run_and_replay_pair_depth_within_sync_slop_as_the_node_does(bags, tmp_path, capsys):
    """Depth stamped 1 ms after its image: the node paired it (sync_slop); run and replay paired by
    exact stamp, gave no 3D rows and exited 0 without saying why."""
    late = tmp_path / "late"
    depth_stamped_later(bags / "data" / "test", late, 1_000_000)
    model, depth = str(bags / "model.npz"), ["--depth-topic", "/camera/depth/image_raw"]
    assert main(["run", str(late), "-m", model, "-o", str(tmp_path / "run"), *depth]) == 0
    assert "object rows located in 3D" in capsys.readouterr().out
    rows = read_rows(tmp_path / "run" / "late" / "objects.csv")
    assert sum(bool(r[7]) for r in rows[1:]) >= 0.9 * (len(rows) - 1)  # located as with exact stamps
    assert main(["replay", str(late), str(tmp_path / "replayed"), "-m", model, *depth]) == 0
    assert "anomalous objects located" in capsys.readouterr().out
    # pairing by exact stamp: nothing has depth, and both say why
    assert main(["replay", str(late), str(tmp_path / "exact"), "-m", model, *depth, "-p", "sync_slop=0"]) == 0
    printed = capsys.readouterr().out
    assert "no 3D outputs" in printed and "40 camera frames had no /camera/depth/image_raw message stamped within " \
        "sync_slop (0 s)" in printed and "raise sync_slop" in printed
