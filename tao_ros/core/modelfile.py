"""Fitted-model files: named numpy arrays plus JSON metadata in one ``.npz``, never pickled, and
the mapping of a fitted pipeline onto them.

The metadata holds a SHA-256 over every array (name, dtype, shape, bytes), so a file changed
after saving is rejected; loading uses ``allow_pickle=False``. It also records every setting that
shaped the model and the frame size it was fitted at, so that a model is never used under a
configuration, or on a camera, it does not describe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tao_ros import __version__
from tao_ros.core.scoring import Standardizer
from tao_ros.errors import ModelFileError
from tao_ros.plugins import check_params

if TYPE_CHECKING:
    from tao_ros.core.pipeline import AnomalyPipeline

log = logging.getLogger(__name__)

FORMAT = "tao_ros.model"
FORMAT_VERSION = 2
_METADATA_KEY = "__metadata__"


def _digest(arrays: dict[str, np.ndarray]) -> str:
    sha = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        sha.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()


def save_model(path: str | Path, arrays: dict[str, np.ndarray], metadata: dict) -> Path:
    """Write ``arrays`` (numeric only) and JSON-serializable ``metadata`` to ``path``."""
    path = Path(path)
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise ModelFileError(f"array {name!r} has dtype object, which cannot be stored without pickle")
    meta = {**metadata, "format": FORMAT, "format_version": FORMAT_VERSION, "sha256": _digest(arrays)}
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
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format {metadata.get('format')!r} version {metadata.get('format_version')!r}, "
                             f"this tao_ros reads {FORMAT!r} version {FORMAT_VERSION}; refit with 'tao-ros fit'")
    if metadata.get("sha256") != _digest(arrays):
        raise ModelFileError(f"{path}: checksum mismatch, the file was modified after 'tao-ros fit' wrote it; "
                             "refit or restore the original")
    return arrays, metadata


# ---------------------------------------------------------------------- a pipeline as a model file
FIT_OPTIONS = ("detector", "depth_source", "features", "scorer", "standardization", "combination",
               "max_training_samples", "fit_chunk_frames")
"""Options that shape a fitted model: loading it under other values is an error."""
POST_OPTIONS = ("threshold", "threshold_quantile", "score_window", "merge_iou", "prompt_interval", "segmenter")
"""Options that act after scoring: loading a model under other values only warns."""


def pipeline_settings(pipeline: AnomalyPipeline) -> dict[str, dict]:
    """Every setting, defaults resolved, as {"fit": {...}, "post": {...}}: "fit" shaped the fitted
    model (detector, depth source, features, scorer, their parameters), "post" only acts after
    scoring (threshold, merging, prompts, segmenter). Devices are neither: a model runs anywhere."""
    config, registry = pipeline.config, pipeline.registry
    plugins = {"detector": [config.detector], "depth": [config.depth_source], "feature": config.features,
               "scorer": [config.scorer], "segmenter": [] if config.segmenter == "none" else [config.segmenter]}

    def resolved(kinds):
        return {f"{name}.{key}": value for kind in kinds for name in plugins[kind]
                for key, value in check_params(registry.info(kind, name), config.params_for(name)).items()
                if key != "device"}

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


def _layout(pipeline: AnomalyPipeline) -> dict:
    return {"features": {name: list(plugin.plugin.columns) for name, plugin in pipeline.features.items()}}


def save_pipeline(pipeline: AnomalyPipeline, path) -> Path:
    """Write a fitted pipeline's state (depth source, learned features, density models,
    standardizers, normal score quantiles) with its settings, layout and frame size."""
    arrays = {f"depth/{k}": v for k, v in pipeline.depth.plugin.state().items()}
    for name, learner in pipeline.learned_features.items():
        arrays.update({f"feature/{name}/{k}": v for k, v in learner.state().items()})
    for name in set(pipeline.features) - pipeline.unscored:
        arrays.update({f"scorer/{name}/{k}": v for k, v in pipeline.scorers[name].state().items()})
        arrays[f"standardizer/{name}"] = pipeline.standardizers[name].stats
    arrays["training_totals"] = pipeline.training_totals
    if pipeline.training_frame_maxima is not None:
        arrays["training_frame_maxima"] = pipeline.training_frame_maxima
    frame_size = None if pipeline.frame_size is None else {"height": pipeline.frame_size[0],
                                                           "width": pipeline.frame_size[1]}
    return save_model(path, arrays, {"tao_ros_version": __version__, "layout": _layout(pipeline),
                                     "settings": pipeline_settings(pipeline), "frame_size": frame_size,
                                     "unscored": sorted(pipeline.unscored)})


def load_pipeline(pipeline: AnomalyPipeline, path) -> None:
    """Load a model file into ``pipeline``; ModelFileError saying what differs if it does not fit
    the pipeline's configuration (a "post" setting that differs only warns)."""
    arrays, metadata = load_model(path)
    saved_settings = metadata.get("settings")
    if saved_settings is None:
        log.warning("%s does not record the settings it was fitted with (older tao_ros): they cannot be checked", path)
    else:
        wanted = pipeline_settings(pipeline)
        fit_differences = setting_differences(saved_settings.get("fit", {}), wanted["fit"])
        if fit_differences:
            raise ModelFileError(f"{path} was fitted with other settings: " + "; ".join(fit_differences)
                                 + ". Refit with 'tao-ros fit' under this configuration, or configure as the model was.")
        for difference in setting_differences(saved_settings.get("post", {}), wanted["post"]):
            log.warning("%s: %s (applies after scoring: the model stays valid)", path, difference)
    saved, wanted_layout = metadata.get("layout", {}), _layout(pipeline)
    problems = []
    for name, columns in wanted_layout["features"].items():
        if name not in saved.get("features", {}):
            problems.append(f"feature {name!r} is not in the model (it has {sorted(saved.get('features', {}))})")
        elif saved["features"][name] != columns:
            problems.append(f"feature {name!r}: model columns {saved['features'][name]}, plugin columns {columns}")
    if problems:
        raise ModelFileError(f"{path} does not match the configuration: " + "; ".join(problems)
                             + ". Refit with 'tao-ros fit' or change the configuration.")

    def section(prefix):
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    try:
        pipeline.depth.plugin.load_state(section("depth/"))
        for name, learner in pipeline.learned_features.items():
            learner.load_state(section(f"feature/{name}/"))
        pipeline.unscored = set(metadata.get("unscored", []))
        for name in set(pipeline.features) - pipeline.unscored:
            pipeline.scorers[name].load_state(section(f"scorer/{name}/"))
            pipeline.standardizers[name] = Standardizer(arrays[f"standardizer/{name}"])
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise ModelFileError(f"{path}: its arrays do not fit the configured plugins ({type(exc).__name__}: {exc}); "
                             "refit with 'tao-ros fit'") from None
    pipeline.training_totals = arrays.get("training_totals")
    pipeline.training_frame_maxima = arrays.get("training_frame_maxima")
    size = metadata.get("frame_size")
    pipeline.frame_size = None if size is None else (int(size["height"]), int(size["width"]))
    if size is None:
        log.warning("%s does not record the frame size it was fitted at (older tao_ros): frames of any size are "
                    "accepted", path)
    pipeline.fitted = True
