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


def test_pose_feature_gives_box_relative_keypoints():
    from tao_ros.types import Detections

    feature = PluginRegistry.discover().create("feature", "pose", {"weights": "yolov8n-pose.yaml"})
    detections = Detections(np.array([[10, 10, 50, 80]]))
    values = feature.extract(context(), detections, np.ones(1))
    assert values.shape == (1, 34)
    keypoints = np.zeros((1, 17, 3))
    keypoints[0, 0] = [30, 45, 0.9]  # centre of the box, visible
    no_model = PluginRegistry.discover().create("feature", "pose")
    values = no_model.extract(context(), Detections(detections.xyxy, keypoints=keypoints), np.ones(1))
    np.testing.assert_allclose(values[0, :2], [0.5, 0.5])
    np.testing.assert_allclose(values[0, 2:], 0.5)  # unseen keypoints sit at the centre
