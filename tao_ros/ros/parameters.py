"""Parameters changed while the node runs (``ros2 param set``): which may change, and whether the
new value is valid and takes effect."""

from __future__ import annotations

from tao_ros.config import OPTIONS, Config, coerce
from tao_ros.core.pipeline import AnomalyPipeline
from tao_ros.errors import ConfigError

RUNTIME_PARAMETERS = ("threshold", "threshold_quantile", "prompt_interval")
"""Parameters that may change while the node runs; the others need a restart (reconfigure)."""


def change_parameter(config: Config, pipeline: AnomalyPipeline, name: str, value) -> str | None:
    """Apply ``name = value`` to ``config`` and ``pipeline``; None if accepted, else why not."""
    if name not in RUNTIME_PARAMETERS:
        return f"{name} cannot change while running (only {', '.join(RUNTIME_PARAMETERS)}); reconfigure the node"
    try:
        value = coerce(name, value, OPTIONS[name])
    except ConfigError as exc:
        return str(exc)
    quantile = config.threshold_quantile
    if name == "threshold" and quantile > 0 and pipeline.training_totals is not None:
        return (f"threshold has no effect while threshold_quantile ({quantile:g}) sets the threshold "
                f"({pipeline.threshold:.3g}): set threshold_quantile to 0 first")
    config.options[name] = value
    pipeline.config.options[name] = value
    if name == "prompt_interval":
        pipeline.prompts.interval = value
    return None
