"""Fitted-model files: named numpy arrays plus JSON metadata in one ``.npz``, never pickled; what
a model's metadata must hold (``ModelContents``) and the identity of the settings that shaped it.

The metadata holds a SHA-256 over every array (name, dtype, shape, bytes) and over the rest of
the metadata, so a file changed after saving is rejected; loading uses ``allow_pickle=False``. It
records every setting that shaped the model (``model_settings``: weights by their content, not
their path; how a plugin runs, its threads or device, left out) and the frame size it was fitted
at, so that a model is never used under a configuration, or on a camera, it does not describe.

This module knows files and settings, not the pipeline: ``AnomalyPipeline.save`` and ``load`` map
their fitted state onto ``ModelContents``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tao_ros import __version__
from tao_ros.config import Config
from tao_ros.errors import ModelFileError
from tao_ros.plugins import PluginRegistry, check_params

log = logging.getLogger(__name__)

FORMAT = "tao_ros.model"
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)
"""Version 2 files (checksum over the arrays only) are still read."""
_METADATA_KEY = "__metadata__"


def _digest(arrays: dict[str, np.ndarray], metadata: dict | None) -> str:
    """SHA-256 over the arrays and (from format version 3) the metadata but its own checksum."""
    sha = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        sha.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        sha.update(array.tobytes())
    if metadata is not None:
        sha.update(json.dumps({k: v for k, v in metadata.items() if k != "sha256"}, sort_keys=True).encode())
    return sha.hexdigest()


def save_model(path: str | Path, arrays: dict[str, np.ndarray], metadata: dict) -> Path:
    """Write ``arrays`` (numeric only) and JSON-serializable ``metadata`` to ``path``."""
    path = Path(path)
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise ModelFileError(f"array {name!r} has dtype object, which cannot be stored without pickle")
    meta = {**metadata, "format": FORMAT, "format_version": FORMAT_VERSION}
    meta["sha256"] = _digest(arrays, meta)
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written beside and renamed: a crash never leaves a half-written model where a good one was
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "wb") as handle:  # a file handle keeps numpy from appending ".npz"
            np.savez_compressed(handle, **arrays, **{_METADATA_KEY: blob})
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_model(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a model file -> (arrays, metadata); ModelFileError if missing, foreign or tampered."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found: create it with 'tao-ros fit NORMAL_DATA --output {path}'")
    refit = "refit it with 'tao-ros fit' or pass the right file"
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a tao_ros model file (not a numpy .npz archive): {refit}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as exc:
        # numpy's own message suggests allow_pickle=True, which a model file never needs
        reason = "it holds pickled objects" if "pickle" in str(exc) else str(exc)
        raise ModelFileError(f"{path} is not a tao_ros model file ({reason}): {refit}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged archive means the same to the user
        raise ModelFileError(f"{path} is not a readable model file ({type(exc).__name__}: {exc}): {refit}") from None
    if _METADATA_KEY not in arrays:
        raise ModelFileError(f"{path} has no tao_ros metadata: it was not written by 'tao-ros fit'; {refit}")
    try:
        metadata = json.loads(arrays.pop(_METADATA_KEY).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({exc}); refit the model") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: metadata is a JSON {type(metadata).__name__}, not an object: it was not "
                             f"written by 'tao-ros fit'; {refit}")
    version = metadata.get("format_version")
    if metadata.get("format") != FORMAT or version not in READABLE_VERSIONS:
        raise ModelFileError(f"{path}: format {metadata.get('format')!r} version {version!r}, this tao_ros reads "
                             f"{FORMAT!r} versions {list(READABLE_VERSIONS)}; refit with 'tao-ros fit'")
    if metadata.get("sha256") != _digest(arrays, metadata if version >= 3 else None):
        raise ModelFileError(f"{path}: checksum mismatch, the file was modified after 'tao-ros fit' wrote it; "
                             "refit or restore the original")
    return arrays, metadata


# ---------------------------------------------------------------------- what a model holds
@dataclass
class ModelContents:
    """A fitted model as stored: named arrays and the metadata that says what they describe.

    ``settings``: {"fit": {...}, "post": {...}} (``model_settings``); ``layout``: feature name ->
    its columns; ``frame_size``: (height, width) it was fitted at; ``unscored``: features that
    described too few normal objects to model. ``settings`` and ``frame_size`` are None in files of
    older tao_ros versions that did not record them.
    """

    arrays: dict[str, np.ndarray]
    layout: dict[str, list[str]]
    settings: dict[str, dict] | None
    frame_size: tuple[int, int] | None
    unscored: list[str] = field(default_factory=list)
    version: str = __version__

    def write(self, path) -> Path:
        size = None if self.frame_size is None else {"height": int(self.frame_size[0]),
                                                     "width": int(self.frame_size[1])}
        return save_model(path, self.arrays, {"tao_ros_version": self.version, "layout": {"features": self.layout},
                                              "settings": self.settings, "frame_size": size,
                                              "unscored": sorted(self.unscored)})

    @classmethod
    def read(cls, path) -> ModelContents:
        """A model file's contents; ModelFileError naming the field if its metadata is not as written."""
        arrays, metadata = load_model(path)

        def bad(what: str) -> ModelFileError:
            return ModelFileError(f"{path}: metadata field {what}; the file was not written by 'tao-ros fit' or "
                                  "was edited: refit the model")

        layout = metadata.get("layout")
        features = layout.get("features") if isinstance(layout, dict) else None
        if not isinstance(features, dict) or not all(
                isinstance(name, str) and isinstance(columns, list) and all(isinstance(c, str) for c in columns)
                for name, columns in features.items()):
            raise bad("'layout' must be {'features': {name: [column, ...]}}")
        settings = metadata.get("settings")
        if settings is not None and not (isinstance(settings, dict) and
                                         all(isinstance(settings.get(k), dict) for k in ("fit", "post"))):
            raise bad("'settings' must be {'fit': {...}, 'post': {...}}")
        size = metadata.get("frame_size")
        if size is not None and not (isinstance(size, dict) and all(
                isinstance(size.get(k), int) and not isinstance(size.get(k), bool) and size[k] > 0
                for k in ("height", "width"))):
            raise bad("'frame_size' must be {'height': pixels, 'width': pixels}")
        unscored = metadata.get("unscored", [])
        if not isinstance(unscored, list) or not all(isinstance(name, str) for name in unscored):
            raise bad("'unscored' must be a list of feature names")
        version = metadata.get("tao_ros_version", "unknown")
        if not isinstance(version, str):
            raise bad("'tao_ros_version' must be a string")
        return cls(arrays, features, settings, None if size is None else (size["height"], size["width"]),
                   unscored, version)

    def section(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays named ``prefix``..., by the rest of their name."""
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    def check_fits(self, path, settings: dict[str, dict], layout: dict[str, list[str]]) -> None:
        """ModelFileError saying what differs if the model does not fit a configuration of these
        ``settings`` and feature ``layout``; a "post" setting that differs only warns."""
        if self.settings is None:
            log.warning("%s does not record the settings it was fitted with (older tao_ros): they cannot be "
                        "checked", path)
        else:
            differences = setting_differences(self.settings["fit"], settings["fit"])
            if differences:
                raise ModelFileError(f"{path} was fitted with other settings: " + "; ".join(differences)
                                     + ". Refit with 'tao-ros fit' under this configuration, or configure as the "
                                       "model was.")
            for difference in setting_differences(self.settings["post"], settings["post"]):
                log.warning("%s: %s (applies after scoring: the model stays valid)", path, difference)
        problems = []
        for name, columns in layout.items():
            if name not in self.layout:
                problems.append(f"feature {name!r} is not in the model (it has {sorted(self.layout)})")
            elif self.layout[name] != columns:
                problems.append(f"feature {name!r}: model columns {self.layout[name]}, plugin columns {columns}")
        if problems:
            raise ModelFileError(f"{path} does not match the configuration: " + "; ".join(problems)
                                 + ". Refit with 'tao-ros fit' or change the configuration.")
        if self.frame_size is None:
            log.warning("%s does not record the frame size it was fitted at (older tao_ros): frames of any size "
                        "are accepted", path)


# ---------------------------------------------------------------------- a model's identity
FIT_OPTIONS = ("detector", "depth_source", "features", "scorer", "standardization", "combination",
               "max_training_samples", "fit_chunk_frames")
"""Options that shape a fitted model: loading it under other values is an error."""
POST_OPTIONS = ("threshold", "threshold_quantile", "score_window", "hold_frames", "merge_iou", "prompt_interval",
                "segmenter")
"""Options that act after scoring: loading a model under other values only warns."""


def file_identity(value):
    """A file parameter's value as it identifies a model: ``sha256:<hex>`` of the file's content
    where ``value`` names a file, else ``value`` itself (a model config such as ``yolov8n.yaml``)."""
    path = Path(str(value)).expanduser() if value else None
    if path is None or not path.is_file():
        return value
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return f"sha256:{sha.hexdigest()}"


def model_settings(config: Config, registry: PluginRegistry) -> dict[str, dict]:
    """Every setting, defaults resolved, as {"fit": {...}, "post": {...}}: "fit" shaped the fitted
    model (detector, depth source, features, scorer, their parameters), "post" only acts after
    scoring (threshold, merging, prompts, segmenter). How a plugin runs (``Param.runtime``: threads,
    devices) is neither: a model runs anywhere. Files (``Param.content``: weights) count by content."""
    plugins = {"detector": [config.detector], "depth": [config.depth_source], "feature": config.features,
               "scorer": [config.scorer], "segmenter": [] if config.segmenter == "none" else [config.segmenter]}

    def resolved(kinds):
        values = {}
        for kind in kinds:
            for name in plugins[kind]:
                info = registry.info(kind, name)
                for key, value in check_params(info, config.params_for(name)).items():
                    declared = info.cls.params[key]
                    if key != "device" and not declared.runtime:
                        values[f"{name}.{key}"] = file_identity(value) if declared.content else value
        return values

    options = config.options
    return {"fit": {**{k: options[k] for k in FIT_OPTIONS}, **resolved(("detector", "depth", "feature", "scorer"))},
            "post": {**{k: options[k] for k in POST_OPTIONS}, **resolved(("segmenter",))}}


def setting_differences(saved: dict, wanted: dict) -> list[str]:
    """"key: model X, configuration Y" for each setting that differs; a plugin in one of the two
    only is named once (by its option), not by each of its parameters."""
    def shown(values, key):
        return repr(values[key]) if key in values else "unset"

    plugins = {k.split(".")[0] for k in saved} & {k.split(".")[0] for k in wanted}
    return [f"{key}: model {shown(saved, key)}, configuration {shown(wanted, key)}"
            for key in sorted(set(saved) | set(wanted))
            if saved.get(key) != wanted.get(key) and ("." not in key or key.split(".")[0] in plugins)]
