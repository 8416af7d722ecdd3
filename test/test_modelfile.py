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
