"""All the evidence, one rule: a feature that carries nothing must not hide what the others find."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import scene_frames
from tao_ros.config import load_config
from tao_ros.core.geometry import iou_matrix, mask_to_box
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
from tao_ros.eval.metrics import roc_auc
from tao_ros.hookspecs import hookimpl
from tao_ros.plugins import PluginRegistry


class NoiseFeature:
    """A third-party feature of pure noise: two standard normal numbers per object, normal or not."""

    name = "noise"
    columns = ("noise_a", "noise_b")
    params = {}

    def __init__(self):
        self.rng = np.random.default_rng(1)

    def reset(self):
        pass

    def extract(self, context, detections, depth):
        return self.rng.standard_normal((len(detections), 2))


class NoisePlugin:
    @hookimpl
    def tao_ros_add_features(self):
        return [NoiseFeature]


@pytest.fixture(scope="module")
def subtle_scene():
    """Three normal clips, and a test clip whose only anomaly is a cart at walking pace (odd size,
    nothing else odd): the evidence is weak, so noise has room to hide it."""
    from tao_ros.eval.synth import Scene, SceneObject

    normal = [scene_frames(seed, 80, anomalies=False) for seed in range(3)]
    sources = [(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(normal)]
    scene = Scene(7, 120, anomalies=False, walkers=6)
    scene.objects.append(SceneObject(101, 7, 15, -0.13, 0, 1.0, 1.8, 50, True, "box", 20))
    return sources, list(scene.render())


def object_auroc(pipeline: AnomalyPipeline, frames) -> float:
    """AUROC of the objects' scores: objects on the anomaly (IoU > 0.3) against all others."""
    pipeline.reset()
    labels, scores = [], []
    for image, _, instances, anomalous in frames:
        result = pipeline.process(StreamFrame(image))
        boxes = np.array([mask_to_box(instances == i) for i in anomalous if (instances == i).any()]).reshape(-1, 4)
        on = iou_matrix(result.detections.xyxy, boxes) > 0.3
        labels += on.any(axis=1).tolist()
        scores += result.scores.tolist()
    return roc_auc(np.array(labels), np.array(scores))


def test_a_feature_of_pure_noise_lowers_the_shipped_profiles_auroc_by_at_most_a_hundredth(subtle_scene):
    sources, test = subtle_scene
    registry = PluginRegistry.discover(extra_plugins=(NoisePlugin(),))
    shipped = load_config()
    aurocs = []
    for extra in ([], ["noise"]):
        pipeline = AnomalyPipeline(load_config(overrides={"features": shipped.features + extra, "segmenter": "none"}),
                                   registry)
        pipeline.fit(sources)
        aurocs.append(object_auroc(pipeline, test))
    clean, noisy = aurocs
    assert 0.55 < clean < 0.99  # weak evidence: there is room to lose
    assert noisy >= clean - 0.01


class SometimesFeature(NoiseFeature):
    """Describes every object while ``describes`` is set, none (NaN) after: a feature that cannot
    describe the objects of a camera it knows (a pose for people too small to hold one)."""

    name = "sometimes"
    describes = True

    def extract(self, context, detections, depth):
        values = super().extract(context, detections, depth)
        return values if self.describes else np.full_like(values, np.nan)


class SometimesPlugin:
    @hookimpl
    def tao_ros_add_features(self):
        return [SometimesFeature]


@pytest.mark.parametrize("method", ["zscore", "minmax", "logz", "tail"])
@pytest.mark.parametrize("rule", ["sum", "excess"])
def test_an_object_a_feature_cannot_describe_scores_as_a_typical_normal_object(subtle_scene, method, rule):
    """Missing evidence is neither suspicious nor reassuring: with the feature unable to describe any
    object, every score is the score without that feature plus its typical normal score (0 above
    the typical under ``excess``), under every standardization."""
    sources, test = subtle_scene
    registry = PluginRegistry.discover(extra_plugins=(SometimesPlugin(),))
    overrides = {"standardization": method, "combination": rule, "segmenter": "none"}
    with_it = AnomalyPipeline(load_config(overrides={**overrides, "features": ["speed", "sometimes"]}), registry)
    with_it.fit(sources)
    without = AnomalyPipeline(load_config(overrides={**overrides, "features": ["speed"]}), registry)
    without.fit(sources)
    with_it.features["sometimes"].plugin.describes = False
    typical = with_it.typical_scores["sometimes"] if rule == "sum" else 0.0
    assert with_it.typical_scores["sometimes"] != pytest.approx(0.0, abs=1e-3)  # typical is not zero here
    for image, *_ in test[:25]:
        a, b = with_it.process(StreamFrame(image)), without.process(StreamFrame(image))
        assert np.isnan(a.feature_scores["sometimes"]).all()
        np.testing.assert_allclose(a.scores, b.scores + typical, rtol=1e-4, atol=1e-6)  # float32 flow
