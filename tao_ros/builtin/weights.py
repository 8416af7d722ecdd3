"""Safe loading of model weights for the neural plugins: tensors only, never code from the file."""

from __future__ import annotations

from pathlib import Path

from tao_ros.errors import PluginError


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
