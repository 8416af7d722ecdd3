"""The plugin contract: documented hooks, discovery through entry points, isolation of failures."""

from __future__ import annotations

import inspect
import logging
import sys
import textwrap

import numpy as np
import pytest

from tao_ros import hookspecs
from tao_ros.errors import ConfigError, PluginError
from tao_ros.plugins import PluginRegistry
from tao_ros.types import Detections


def hook_functions():
    return [f for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("tao_ros_")]


@pytest.mark.parametrize("hook", hook_functions(), ids=lambda f: f.__name__)
def test_every_hook_is_documented_and_typed(hook):
    doc = inspect.getdoc(hook) or ""
    assert "Called" in doc, f"{hook.__name__}: say when it is called"
    assert "Returns" in doc, f"{hook.__name__}: say what it returns"
    assert inspect.signature(hook).return_annotation is not inspect.Signature.empty


def test_every_kind_has_a_hook_and_a_documented_protocol():
    hooks = {f.__name__ for f in hook_functions()}
    for kind, (hook_name, protocol) in hookspecs.KINDS.items():
        assert hook_name in hooks, kind
        methods = [m for m, v in vars(protocol).items() if callable(v) and not m.startswith("_")]
        assert methods, kind
        for method in methods:
            assert inspect.getdoc(getattr(protocol, method)), f"{protocol.__name__}.{method} lacks a docstring"


def test_builtin_plugins_come_through_entry_points():
    registry = PluginRegistry.discover()
    assert registry.errors == []
    assert {"motion", "ultralytics"} <= set(registry.names("detector"))
    assert {"speed", "depth", "pose"} <= set(registry.names("feature"))
    assert {"knn", "mahalanobis"} <= set(registry.names("scorer"))
    assert registry.info("detector", "motion").package == "tao_ros"


OUTSIDE_PLUGIN = '''
import numpy as np
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections

CALLS = []

class CornerDetector:
    """Reports one fixed box."""
    name = "corner"
    params = {"size": Param(10, "box side")}
    def __init__(self, size):
        self.size = size
    def detect(self, context):
        CALLS.append(context.frame_index)
        return Detections(np.array([[0, 0, self.size, self.size]]))
    def reset(self):
        pass

@hookimpl
def tao_ros_add_detectors():
    return [CornerDetector]

@hookimpl
def tao_ros_add_scorers():
    raise RuntimeError("broken on purpose")
'''


@pytest.fixture
def outside_package(tmp_path, monkeypatch):
    """An installed third-party package (dist-info with an entry point) on sys.path."""
    (tmp_path / "outside_plugin.py").write_text(textwrap.dedent(OUTSIDE_PLUGIN))
    dist = tmp_path / "outside_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tao_ros.plugins]\noutside = outside_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("outside_plugin", None)


def test_outside_plugin_is_discovered_and_called(outside_package, caplog):
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame

    with caplog.at_level(logging.ERROR):
        registry = PluginRegistry.discover()
    info = registry.info("detector", "corner")
    assert info.package == "outside-plugin"
    # its broken scorer hook is reported with plugin and hook name, and the rest still loads
    assert any("outside" in e and "tao_ros_add_scorers" in e for e in registry.errors)
    assert "knn" in registry.names("scorer")

    pipeline = AnomalyPipeline(load_config(overrides={"detector": "corner", "corner": {"size": 7}}), registry)
    _, detections, _ = pipeline.describe(StreamFrame(np.zeros((20, 30, 3), np.uint8)))
    import outside_plugin

    assert outside_plugin.CALLS == [0]
    np.testing.assert_array_equal(detections.xyxy, [[0, 0, 7, 7]])


def test_unknown_plugin_lists_the_available_names():
    registry = PluginRegistry.discover()
    with pytest.raises(PluginError, match="available: .*motion"):
        registry.create("detector", "no_such_detector")


def test_unknown_plugin_parameter_names_key_and_allowed():
    registry = PluginRegistry.discover()
    with pytest.raises(ConfigError, match=r"motion\.bogus.*allowed: .*min_area"):
        registry.create("detector", "motion", {"bogus": 1})
    with pytest.raises(ConfigError, match=r"motion\.history: 'many'"):
        registry.create("detector", "motion", {"history": "many"})


class ExplodingDetector:
    name = "exploding"
    params = {}

    def __init__(self):
        self.calls = 0

    def detect(self, context):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        return Detections(np.array([[1, 1, 5, 5]]), ids=[1])

    def reset(self):
        pass


class ExplodingPlugin:
    @hookspecs.hookimpl
    def tao_ros_add_detectors(self):
        return [ExplodingDetector]


def test_a_raising_plugin_call_is_reported_and_the_stream_goes_on(caplog):
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame

    registry = PluginRegistry.discover(extra_plugins=(ExplodingPlugin(),))
    pipeline = AnomalyPipeline(load_config(overrides={"detector": "exploding"}), registry)
    frame = StreamFrame(np.zeros((10, 10, 3), np.uint8))
    counts = []
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            counts.append(len(pipeline.describe(frame)[1]))
    assert counts == [1, 0, 1]
    assert pipeline.detector.errors == 1
    assert "exploding" in caplog.text and "detect" in caplog.text


class CountingMotion:
    """The motion detector, counting its calls (fit must run a detector once per training frame)."""

    name = "counting_motion"
    params = {}
    calls = 0

    def __init__(self):
        from tao_ros.builtin.motion import MotionDetector

        self.motion = MotionDetector(**{k: p.default for k, p in MotionDetector.params.items()})

    def detect(self, context):
        CountingMotion.calls += 1
        return self.motion.detect(context)

    def reset(self):
        self.motion.reset()


class CountingPlugin:
    @hookspecs.hookimpl
    def tao_ros_add_detectors(self):
        return [CountingMotion]


def test_fit_runs_the_detector_once_per_training_frame_and_describes_what_it_found():
    from conftest import scene_frames

    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame

    registry = PluginRegistry.discover(extra_plugins=(CountingPlugin(),))
    clips = [scene_frames(seed, 40, anomalies=False) for seed in range(2)]
    sources = [(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(clips)]
    once = AnomalyPipeline(load_config(overrides={"detector": "counting_motion"}), registry)
    CountingMotion.calls = 0
    detected = once.fit_scene(sources)
    rows, *_ = once.describe_normal(sources, detected=detected)
    assert CountingMotion.calls == 80
    # the same vectors as describing with the detector running again (it is deterministic)
    twice = AnomalyPipeline(load_config(overrides={"detector": "counting_motion"}), registry)
    twice.fit_scene(sources)
    again, *_ = twice.describe_normal(sources)
    assert CountingMotion.calls == 240
    for feature in rows:
        np.testing.assert_allclose(rows[feature], again[feature], rtol=1e-5)  # float32 flow, rounding apart


def test_a_detector_box_with_no_area_is_dropped_counted_and_said_once(outside_package, caplog):
    """A plugin's zero-width box reached objects.csv and the outputs as an object."""
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame

    pipeline = AnomalyPipeline(load_config(overrides={"detector": "corner", "corner": {"size": 0}}))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            _, detections, features = pipeline.describe(StreamFrame(np.zeros((20, 30, 3), np.uint8)))
            assert len(detections) == 0 and all(len(v) == 0 for v in features.values())
    assert pipeline.empty_boxes == 3
    assert sum("no area" in r.getMessage() for r in caplog.records) == 1


def test_a_plugin_that_fails_while_fitting_fails_the_fit():
    """A fit went on past a plugin's errors and saved a model holding part of the evidence."""
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame

    registry = PluginRegistry.discover(extra_plugins=(ExplodingPlugin(),))
    pipeline = AnomalyPipeline(load_config(overrides={"detector": "exploding", "depth_source": "depth_image",
                                                      "features": ["speed"]}), registry)
    frames = [StreamFrame(np.zeros((10, 10, 3), np.uint8), np.ones((10, 10), np.float32)) for _ in range(4)]
    with pytest.raises(PluginError, match=r"fit stopped: detector 'exploding' failed 1 times"):
        pipeline.fit([("clip", lambda: iter(frames))])
    assert not pipeline.fitted
