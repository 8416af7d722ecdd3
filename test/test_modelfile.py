"""Model files: arrays + JSON round trip; tampered, foreign and mismatched files are rejected."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from tao_ros.config import load_config
from tao_ros.core.modelfile import load_model, save_model
from tao_ros.core.pipeline import AnomalyPipeline
from tao_ros.errors import ModelFileError


def test_round_trip(tmp_path):
    arrays = {"a": np.arange(6).reshape(2, 3), "b/c": np.array([1.5])}
    save_model(tmp_path / "m.npz", arrays, {"layout": {"x": 1}})
    loaded, metadata = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded["a"], arrays["a"])
    assert metadata["layout"] == {"x": 1}


def test_tampered_array_is_rejected(tmp_path):
    path = save_model(tmp_path / "m.npz", {"a": np.zeros(4)}, {})
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            if name == "a.npy":
                data = data[:-8] + np.array([1.0]).tobytes()
            z.writestr(name, data)
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(path)


def test_pickled_or_foreign_files_are_rejected(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match="not a tao_ros model"):
        load_model(tmp_path / "obj.npy")
    with pytest.raises(ModelFileError, match="object"):
        save_model(tmp_path / "x.npz", {"a": np.array([{}], dtype=object)}, {})
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ModelFileError, match="no tao_ros metadata"):
        load_model(tmp_path / "plain.npz")


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ModelFileError, match="tao-ros fit"):
        load_model(tmp_path / "nope.npz")


def test_pipeline_model_round_trip_and_layout_mismatch(fitted_pipeline, tmp_path):
    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    again = AnomalyPipeline(load_config())
    again.load(path)
    for name in fitted_pipeline.scorers:
        np.testing.assert_array_equal(again.standardizers[name].stats, fitted_pipeline.standardizers[name].stats)
    probe = np.array([[0.5, 1.0]])
    np.testing.assert_allclose(again.scorers["speed"].score(probe), fitted_pipeline.scorers["speed"].score(probe))

    other = AnomalyPipeline(load_config(overrides={"scorer": "mahalanobis", "features": ["speed", "pose"]}))
    with pytest.raises(ModelFileError, match=r"features: model \['speed', 'depth', 'velocity', .*'dwell'\], "
                       r"configuration \['speed', 'pose'\].*"
                       r"scorer: model 'knn', configuration 'mahalanobis'"):
        other.load(path)


def weighted_registry():
    """A detector with a weights file (identified by content) and a thread count (how it runs)."""
    from types import SimpleNamespace

    from tao_ros.builtin.motion import MotionDetector
    from tao_ros.hookspecs import Param, hookimpl
    from tao_ros.plugins import PluginRegistry

    class WeightedDetector(MotionDetector):
        name = "weighted"
        params = {**MotionDetector.params,
                  "weights": Param("", "weights file", content=True),
                  "threads": Param(2, "CPU threads", minimum=1, runtime=True)}

        def __init__(self, weights, threads, **params):
            super().__init__(**params)

    return PluginRegistry.discover(extra_plugins=(SimpleNamespace(
        tao_ros_add_detectors=hookimpl(lambda: [WeightedDetector])),))


def test_a_model_is_identified_by_its_weights_content_not_their_path_nor_how_it_runs(tmp_path):
    """Fitted with threads 2 and loaded with 1: refused before. The same weights at another path:
    refused; other weights at the same path: accepted."""
    from conftest import scene_frames
    from tao_ros.core.pipeline import StreamFrame

    registry = weighted_registry()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in "ab":
        (tmp_path / folder / "net.bin").write_bytes(b"the same weights")

    def pipeline(weights, threads):
        return AnomalyPipeline(load_config(overrides={"detector": "weighted", "features": ["speed"],
                                                      "weighted": {"weights": str(weights), "threads": threads}}),
                               registry)

    fitted = pipeline(tmp_path / "a" / "net.bin", 2)
    clips = [scene_frames(seed, 40, anomalies=False) for seed in range(2)]
    fitted.fit([(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(clips)])
    fitted.save(tmp_path / "model.npz")
    pipeline(tmp_path / "b" / "net.bin", 1).load(tmp_path / "model.npz")  # same content, other path and threads
    (tmp_path / "a" / "net.bin").write_bytes(b"other weights")
    with pytest.raises(ModelFileError, match=r"weighted\.weights: model 'sha256:[0-9a-f]{64}', configuration "
                                             r"'sha256:[0-9a-f]{64}'"):
        pipeline(tmp_path / "a" / "net.bin", 2).load(tmp_path / "model.npz")


def rewritten(path, target, edit, consistent: bool):
    """A copy of model file ``path`` with its metadata changed by ``edit``; its checksum recomputed
    over arrays and metadata (``consistent``: a well-formed file with a bad field) or over the
    arrays only, as version 2 did (an edit that checksum did not see)."""
    import json

    from tao_ros.core import modelfile

    arrays, metadata = load_model(path)
    edit(metadata)
    metadata["sha256"] = modelfile._digest(arrays, metadata if consistent else None)
    blob = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    with open(target, "wb") as handle:
        np.savez_compressed(handle, **arrays, **{modelfile._METADATA_KEY: blob})
    return target


def test_metadata_is_covered_by_the_checksum_and_has_a_schema(fitted_pipeline, tmp_path):
    """Metadata of the wrong shape ended in 'unexpected TypeError' (exit 1), and the checksum
    covered the arrays only: an edited setting went unnoticed."""
    from tao_ros.core.modelfile import ModelContents

    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    edited = rewritten(path, tmp_path / "edited.npz", lambda m: m["settings"]["post"].update(threshold=9.0), False)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(edited)
    for edit, field in [(lambda m: m.update(frame_size=[240, 360]), "frame_size"),
                        (lambda m: m.update(layout={"features": ["speed"]}), "layout"),
                        (lambda m: m.update(settings={"fit": 3}), "settings"),
                        (lambda m: m.update(unscored="pose"), "unscored")]:
        with pytest.raises(ModelFileError, match=f"metadata field '{field}'"):
            ModelContents.read(rewritten(path, tmp_path / f"{field}.npz", edit, True))
