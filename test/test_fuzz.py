"""Randomized corruptions of real frames, bag messages and model files: no traceback, every valid
frame processed, every malformed one counted, no partial output that looks complete."""

from __future__ import annotations

import csv
import logging

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags")  # pure-Python bag library from PyPI; ROS machines may lack it

from conftest import scene_frames
from tao_ros.cli import main
from tao_ros.config import load_config
from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image
from tao_ros.ros.engine import AnomalyEngine, InputFrame
from tao_ros.ros.msgdefs import typestore

STORE = typestore("jazzy")
TYPES = MessageTypes.from_typestore(STORE)
FRAMES = [f[0] for f in scene_frames(11, 40, anomalies=True)]


def corrupt_image_message(msg, kind: str, rng):
    """Make ``msg`` (sensor_msgs/Image) malformed in one way; returns it."""
    data = np.asarray(msg.data)
    if kind == "truncated":
        msg.data = data[: int(rng.integers(0, len(data) - 1))]
    elif kind == "wrong encoding":
        msg.encoding = str(rng.choice(["yuv422", "bayer_rggb8", "", "32FC1", "weird"]))
    elif kind == "wrong size":
        msg.width = int(msg.width) + int(rng.integers(1, 50))
    elif kind == "wrong step":
        msg.step = int(rng.integers(1, int(msg.step)))
    return msg


MALFORMED = ("truncated", "wrong encoding", "wrong size", "wrong step")


def test_engine_survives_random_corruptions_and_counts_each(fitted_pipeline, tmp_path):
    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    engine = AnomalyEngine(load_config(overrides={"model_path": str(path)}))
    rng = np.random.default_rng(0)
    expected_processed = expected_bad = 0
    for t in range(80):
        image = FRAMES[t % len(FRAMES)]
        kind = str(rng.choice(["valid", "bit flips", "compressed cut", "compressed flips", *MALFORMED]))
        header = make_header(TYPES, 10**9 + t * 10**8, "cam")
        compressed = kind.startswith("compressed")
        if compressed:
            jpeg = bytearray(cv2.imencode(".jpg", image)[1].tobytes())
            if kind == "compressed cut":
                jpeg = jpeg[: len(jpeg) // 2]
            else:  # flips inside the entropy-coded data: decodes to a garbled but whole image
                for i in rng.integers(600, len(jpeg) - 10, 5):
                    jpeg[i] ^= 0x10
            msg = TYPES["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg",
                                                            data=np.frombuffer(bytes(jpeg), np.uint8))
        else:
            msg = numpy_to_image(TYPES, header, image, "bgr8")
            if kind == "bit flips":  # raw pixels with flipped bits are still a valid frame
                data = np.array(msg.data)
                data[rng.integers(0, len(data), 50)] ^= 0x40
                msg.data = data
            elif kind in MALFORMED:
                corrupt_image_message(msg, kind, rng)
        bad = kind in MALFORMED or kind == "compressed cut"
        expected_bad += bad
        expected_processed += not bad
        engine.submit(InputFrame(msg, compressed=compressed))
        outputs = engine.step(timeout=0)
        assert (outputs is None) == bad, kind
    assert engine.counts["processed"] == expected_processed
    assert sum(engine.bad_input.values()) == expected_bad and engine.counts["pipeline_errors"] == 0


def test_cli_run_on_randomly_corrupted_frames_bag_and_model(fitted_pipeline, tmp_path, capsys, caplog):
    from rosbags.rosbag2 import Writer

    model = tmp_path / "model.npz"
    fitted_pipeline.save(model)
    rng = np.random.default_rng(1)
    clip = tmp_path / "frames" / "01"
    clip.mkdir(parents=True)
    broken = set()
    for t, image in enumerate(FRAMES):
        data = bytearray(cv2.imencode(".jpg", image)[1].tobytes())
        kind = rng.choice(["valid", "valid", "truncated", "empty", "flips"])
        if kind == "truncated":
            data = data[: int(rng.integers(1, len(data) - 2))]
        elif kind == "empty":
            data = bytearray()
        elif kind == "flips":
            for i in rng.integers(600, len(data) - 10, 3):
                data[i] ^= 0x08
        broken |= {t} if kind in ("truncated", "empty") else set()
        (clip / f"{t:03d}.jpg").write_bytes(bytes(data))
    bag = tmp_path / "bag"
    with Writer(bag, version=9) as writer:
        connection = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=STORE)
        bad_messages = set()
        for t, image in enumerate(FRAMES):
            msg = numpy_to_image(TYPES, make_header(TYPES, 10**9 * (t + 1), "cam"), image, "bgr8")
            if rng.random() < 0.3:
                corrupt_image_message(msg, str(rng.choice(MALFORMED)), rng)
                bad_messages.add(t)
            writer.write(connection, 10**9 * (t + 1), STORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    assert broken and bad_messages
    caplog.set_level(logging.WARNING)
    for source, skipped in ((tmp_path / "frames", broken), (bag, bad_messages)):
        out = tmp_path / f"out_{source.name}"
        assert main(["run", str(source), "--model", str(model), "--output", str(out)]) == 0
        err = capsys.readouterr().err
        assert f"{len(skipped)} frame(s) skipped" in err and "Traceback" not in err
        (objects,) = out.rglob("objects.csv")
        with open(objects, newline="") as handle:
            frames = {int(row["frame"]) for row in csv.DictReader(handle)}
        assert not frames & skipped  # a skipped frame leaves a gap
        assert len(frames) >= 0.6 * (len(FRAMES) - len(skipped))  # the valid frames were processed
        assert not list(out.rglob("*.partial"))
    good = model.read_bytes()
    for trial in range(6):
        data = bytearray(good)
        if trial % 2:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for i in rng.integers(0, len(data), 4):
                data[i] ^= 1 << int(rng.integers(0, 8))
        model.write_bytes(bytes(data))
        out = tmp_path / f"model_out_{trial}"
        assert main(["run", str(clip), "--model", str(model), "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "model" in err
        assert not list(out.rglob("objects.csv"))
