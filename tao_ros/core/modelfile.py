"""Fitted-model files: named numpy arrays plus JSON metadata in one ``.npz``, never pickled.

The metadata holds a SHA-256 over every array (name, dtype, shape, bytes), so a file changed
after saving is rejected; loading uses ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from tao_ros.errors import ModelFileError

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
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the same to the user
        # numpy's own message may suggest allow_pickle=True, which a model file never needs
        reason = "it holds pickled objects" if "pickle" in str(exc) else exc.__class__.__name__
        raise ModelFileError(f"{path} is not a tao_ros model file (numpy .npz, {reason}): refit it with "
                             "'tao-ros fit' or pass the right file") from None
    if _METADATA_KEY not in arrays:
        raise ModelFileError(f"{path} has no tao_ros metadata: it was not written by 'tao-ros fit'")
    try:
        metadata = json.loads(arrays.pop(_METADATA_KEY).tobytes().decode())
    except ValueError as exc:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({exc}); refit the model") from exc
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format {metadata.get('format')!r} version {metadata.get('format_version')!r}, "
                             f"this tao_ros reads {FORMAT!r} version {FORMAT_VERSION}; refit with 'tao-ros fit'")
    if metadata.get("sha256") != _digest(arrays):
        raise ModelFileError(f"{path}: checksum mismatch, the file was modified after 'tao-ros fit' wrote it; "
                             "refit or restore the original")
    return arrays, metadata
