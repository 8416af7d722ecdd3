"""Ultralytics plugins on models built from configs with random weights (nothing is downloaded)."""

from __future__ import annotations

import numpy as np
import pytest

from tao_ros.errors import PluginError
from tao_ros.plugins import PluginRegistry
from tao_ros.types import FrameContext

pytest.importorskip("ultralytics")
torch = pytest.importorskip("torch")


def context(seed=0):
    image = np.random.default_rng(seed).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    return FrameContext(0, image, image[..., 0])


def test_detector_from_config_runs_and_returns_detections():
    detector = PluginRegistry.discover().create("detector", "ultralytics",
                                                {"weights": "yolov8n.yaml", "image_size": 64, "confidence": 0.0})
    detections = detector.detect(context())
    assert detections.xyxy.shape[1] == 4
    assert len(detections.labels) == len(detections)
    detector.reset()


def test_missing_weights_is_a_clear_error_naming_the_path(tmp_path):
    missing = tmp_path / "yolo.pt"
    with pytest.raises(PluginError, match=f"weights file {missing} not found; nothing is downloaded"):
        PluginRegistry.discover().create("detector", "ultralytics", {"weights": str(missing)})


def test_state_dict_weights_load_safely_and_mismatch_is_reported(tmp_path):
    from ultralytics import YOLO

    state = YOLO("yolov8n.yaml").model.state_dict()
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    registry = PluginRegistry.discover()
    detector = registry.create("detector", "ultralytics", {"weights": str(path), "image_size": 64})
    loaded = detector.model.model.state_dict()
    key = next(iter(state))
    assert torch.equal(loaded[key].cpu(), state[key])
    with pytest.raises(PluginError, match=r"does not match model config 'yolov8s.yaml' .*set 'architecture'"):
        registry.create("detector", "ultralytics", {"weights": str(path), "architecture": "yolov8s.yaml"})


def test_pickled_checkpoint_needs_explicit_trust(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"model": object()}, path)
    with pytest.raises(PluginError, match="trust_checkpoint"):
        PluginRegistry.discover().create("detector", "ultralytics", {"weights": str(path)})


def test_pose_feature_from_an_ultralytics_pose_model_or_the_detectors_keypoints_is_relative_to_the_hips():
    from tao_ros.types import Detections

    # a 70 px person: below the default pose.min_height (128 px), so the test lowers it
    feature = PluginRegistry.discover().create("feature", "pose", {"weights": "yolov8n-pose.yaml", "min_height": 48})
    detections = Detections(np.array([[10, 10, 50, 80]]), labels=np.array(["person"]))
    values = feature.extract(context(), detections, np.ones(1))
    assert values.shape == (1, 34)
    keypoints = np.zeros((1, 17, 3))
    keypoints[0, 0] = [30, 17, 0.9]  # nose, visible, 28 px above the box centre of a 70 px box
    no_model = PluginRegistry.discover().create("feature", "pose", {"min_height": 48})
    values = no_model.extract(context(), Detections(detections.xyxy, labels=detections.labels, keypoints=keypoints),
                              np.ones(1))
    np.testing.assert_allclose(values[0, :2], [0.0, -0.4])  # hips unseen: relative to the box centre
    np.testing.assert_allclose(values[0, 2:], 0.0)  # unseen keypoints sit at the origin
    # a box that is no person gets no pose
    car = no_model.extract(context(), Detections(detections.xyxy, labels=np.array(["car"]), keypoints=keypoints),
                           np.ones(1))
    assert np.isnan(car).all()


def appearance(**params):
    torch.manual_seed(0)  # the same random backbone every time, as a weights file would give
    return PluginRegistry.discover().create("feature", "appearance",
                                            {"weights": "yolov8n.yaml", "image_size": 352, **params})


def objects_scene():
    """[256, 352] grey frame with a textured square twice (top left and bottom right, on 32-pixel cells)
    and a differently textured one; boxes of the three."""
    from tao_ros.types import Detections

    rng = np.random.default_rng(3)
    image = np.full((256, 352, 3), 128, np.uint8)
    look = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    other = np.zeros((48, 48, 3), np.uint8)
    other[::8] = 255  # stripes
    boxes = np.array([[64, 64, 112, 112], [224, 160, 272, 208], [224, 32, 272, 80]], float)
    for (x1, y1, x2, y2), patch in zip(boxes.astype(int), (look, look, other)):
        image[y1:y2, x1:x2] = patch
    return FrameContext(0, image, image[..., 0]), Detections(boxes, ids=np.arange(3))


def test_appearance_describes_look_alike_objects_alike_wherever_they_are():
    context, detections = objects_scene()
    embedding = appearance().embed(context, detections)
    assert embedding.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-5)
    same, different = embedding[0] @ embedding[1], embedding[0] @ embedding[2]
    assert same > 0.95 and same > different + 0.05, (same, different)


def test_appearance_learns_its_projection_from_normal_objects_and_restores_it_from_arrays():
    from tao_ros.errors import InputError
    from tao_ros.types import Detections

    feature = appearance(components=2)
    with pytest.raises(InputError, match="tao-ros fit"):
        feature.extract(*objects_scene(), np.ones(3))
    with pytest.raises(InputError, match="more than 2 normal objects"):
        feature.fit()
    for _ in range(2):
        feature.collect(*objects_scene())
    feature.fit()
    described = feature.extract(*objects_scene(), np.ones(3))
    assert described.shape == (3, 2) and np.isfinite(described).all()
    assert feature.extract(objects_scene()[0], Detections.empty(), np.zeros(0)).shape == (0, 2)
    state = feature.state()
    assert set(state) == {"mean", "axes"} and all(v.dtype == np.float64 for v in state.values())
    restored = appearance(components=2)
    restored.load_state(state)
    np.testing.assert_allclose(restored.extract(*objects_scene(), np.ones(3)), described, rtol=1e-6)
    with pytest.raises(InputError, match="has 2 components, appearance.components is 3"):
        appearance(components=3).load_state(state)


def test_appearance_layer_must_be_in_the_backbone_and_weights_must_exist(tmp_path):
    with pytest.raises(PluginError, match="appearance.layer 12 is not in the backbone"):
        appearance(layer=12)
    with pytest.raises(PluginError, match="appearance.layer 30 is not in MobileNetV2"):
        mobilenet = tmp_path / "mobilenet.pt"
        import torchvision

        torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), mobilenet)
        appearance(weights=str(mobilenet), architecture="mobilenet_v2", layer=30)
    with pytest.raises(PluginError, match="not found; nothing is downloaded"):
        appearance(weights=str(tmp_path / "missing.pt"))
    with pytest.raises(PluginError, match="no weights configured"):
        appearance(weights="")


def test_an_exported_model_loads_with_the_task_from_its_own_metadata_and_detects(tmp_path, monkeypatch):
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)
    exported = YOLO("yolov8n.yaml").export(format="torchscript", imgsz=128)
    detector = PluginRegistry.discover().create("detector", "ultralytics", {"weights": exported, "image_size": 128,
                                                                            "confidence": 0.0})
    assert detector.model.task == "detect"
    detections = detector.detect(context())
    assert detections.xyxy.shape[1] == 4 and len(detections.labels) == len(detections)
    with pytest.raises(PluginError, match="is a 'detect' model; this plugin needs one of \\['pose'\\]"):
        PluginRegistry.discover().create("feature", "pose", {"weights": exported})
    with pytest.raises(PluginError, match="an exported model .* does not expose"):
        PluginRegistry.discover().create("feature", "appearance", {"weights": exported})
