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
            stamps.setdefault(connection.topic, []).append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
    return stamps


def test_replay_writes_the_four_outputs_stamped_like_the_input(bags, capsys):
    out = bags / "replayed"
    assert main(["replay", str(bags / "data" / "test"), str(out), "-m", str(bags / "model.npz"),
                 "--depth-topic", "/camera/depth/image_raw"]) == 0
    outputs = read_stamps(out)
    assert set(outputs) == {f"/anomaly_node/{t}" for t in ("detections", "instance_mask", "anomaly_mask", "overlay")}
    inputs = read_stamps(bags / "data" / "test", {"/camera/image_raw"})["/camera/image_raw"]
    for topic, stamps in outputs.items():
        assert stamps == inputs, topic  # offline nothing is dropped, and stamps are the inputs'
    assert "/anomaly_node/detections: 40" in capsys.readouterr().out


def test_replay_refuses_to_overwrite_and_needs_a_camera_topic(bags, capsys):
    existing = bags / "exists"
    existing.mkdir()
    assert main(["replay", str(bags / "data" / "test"), str(existing), "-m", str(bags / "model.npz")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["replay", str(bags / "data" / "test"), str(bags / "x"), "-m", str(bags / "model.npz"),
                 "--image-topic", "/nope"]) == 2
    assert "no topic '/nope'" in capsys.readouterr().err
