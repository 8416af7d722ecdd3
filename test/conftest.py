"""Shared fixtures: synthetic scenes with exact ground truth, rendered in memory."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")


def import_ros(*modules: str):
    """Import ROS 2 Python modules for a test module; skip it where they are absent, except where
    TAO_ROS_REQUIRE_ROS=1 (CI): there a missing module is an error, never a skip."""
    import importlib

    if os.environ.get("TAO_ROS_REQUIRE_ROS") == "1":
        return [importlib.import_module(m) for m in modules]
    return [pytest.importorskip(m) for m in modules]


@pytest.fixture(autouse=True)
def ros_home(tmp_path_factory, monkeypatch):
    """Each test's own ROS_HOME: nodes and engines without model_path keep their models there, never
    in the user's ~/.ros (nor in another test's)."""
    home = tmp_path_factory.mktemp("ros_home")
    monkeypatch.setenv("ROS_HOME", str(home))
    return home


_domain_ids = iter(range(1 + os.getpid() % 60, 233))


@pytest.fixture
def ros_domain(monkeypatch):
    """A ROS_DOMAIN_ID of this test's own and discovery limited to this machine (for rclpy in the
    test process and for node processes it starts)."""
    domain = next(_domain_ids)
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return domain


def scene_frames(seed: int, frames: int, anomalies: bool, walkers: int = 6):
    """Frames of a synthetic scene: list of (image, depth, instances, anomalous ids).

    With ``anomalies`` a fast mover enters at frame 10 and a large crate at frame 25, both mid-clip.
    """
    from tao_ros.eval.synth import Scene, SceneObject

    scene = Scene(seed, frames, anomalies=False, walkers=walkers)
    if anomalies:
        scene.objects.append(SceneObject(100, -7, 12, 0.6, 0, 1.75, 0.6, 40, True, "person", 10))
        scene.objects.append(SceneObject(101, 7, 15, -0.13, 0, 2.6, 2.6, 50, True, "box", 25))
    return list(scene.render())


@pytest.fixture(scope="session")
def fitted_pipeline():
    """A default pipeline fitted on three normal synthetic clips."""
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame

    pipeline = AnomalyPipeline(load_config())
    clips = [scene_frames(seed, 120, anomalies=False) for seed in range(3)]
    pipeline.fit([(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(clips)])
    return pipeline


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def model(fitted_pipeline, tmp_path):
    """A model file of ``fitted_pipeline``."""
    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    return path


def spin_until(executor, condition, timeout: float = 30.0) -> bool:
    """Spin an rclpy executor until ``condition()`` holds or ``timeout`` seconds pass; its last value."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end and not condition():
        executor.spin_once(timeout_sec=0.05)
    return condition()
