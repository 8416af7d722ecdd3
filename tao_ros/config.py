"""Configuration: one schema for the CLI and the ROS 2 node, read from ``config/anomaly.yaml``.

The file is a ROS 2 parameter file (``/**: ros__parameters: {...}``); a plain mapping works too.
Nested mappings flatten to dotted names as ROS 2 does: ``motion: {min_area: 40}`` is the
parameter ``motion.min_area``, a parameter of the plugin named ``motion``. Keys without a dot are
the pipeline's own options, listed in ``OPTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tao_ros.errors import ConfigError
from tao_ros.hookspecs import Param

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "anomaly.yaml"

OPTIONS: dict[str, Param] = {
    "detector": Param("motion", "Detector plugin (see 'tao-ros plugins')."),
    "depth_source": Param("ground_plane", "Depth plugin: 'ground_plane' (fixed camera, no depth image) or "
                                          "'depth_image' (aligned depth image)."),
    "features": Param(["speed", "depth", "velocity", "position", "heading", "relative_speed", "dwell"],
                      "Feature plugins whose standardized scores are combined (default: all the weight-free ones; "
                      "the paper uses speed and depth)."),
    "scorer": Param("knn", "Density model plugin: 'knn' or 'mahalanobis'."),
    "standardization": Param("tail", "How each feature's score is scaled by the training scores: 'zscore' "
                                       "(mean/std), 'minmax' (min to 99.9th percentile), 'logz' (z-score of the log) or 'tail' "
                                       "(the surprise -log P(normal score >= s), a Pareto tail beyond the normal scores).",
                             choices=("zscore", "minmax", "logz", "tail")),
    "combination": Param("excess", "How the standardized feature scores are combined: 'sum' (as the paper) or "
                                "'excess' (each feature's excess over its typical normal score, so that evidence "
                                "that carries nothing for a scene adds no spread). A feature that cannot describe "
                                "an object gives it a typical normal object's score under both.",
                         choices=("sum", "excess")),
    "threshold": Param(1.5, "Objects whose combined standardized score exceeds this are anomalous (when "
                            "threshold_quantile is 0)."),
    "threshold_quantile": Param(0.99, "If > 0, the threshold is this quantile of the normal training frames' highest "
                                     "held-out object score (e.g. 0.99: about 1 normal frame in 100 carries a false "
                                     "box, however many objects a frame holds), instead of 'threshold'.",
                                minimum=0.0, maximum=1.0),
    "score_window": Param(1, "Frames over which an object's score is averaged along its track (1 = no "
                             "smoothing).", minimum=1),
    "hold_frames": Param(-1, "Frames an object stays anomalous along its track after the last frame it scored above "
                             "the threshold, with that frame's score, so that masks and boxes follow it instead of "
                             "blinking: -1 = how long a normal object's score remembers its past (the e-folding lag "
                             "of its autocorrelation along normal tracks, learned in fit); 0 = off.", minimum=-1),
    "merge_iou": Param(0.3, "Anomalous boxes of one frame overlapping with IoU above this are merged.",
                       minimum=0.0, maximum=1.0),
    "prompt_interval": Param(5, "Every this many frames each anomalous box becomes a segmenter prompt "
                                "(an object turning anomalous, new or again, is prompted at once).", minimum=1),
    "segmenter": Param("foreground", "Segmenter plugin ('foreground': weight-free; 'person': BlazePose's person "
                                     "segmentation for people, the weight-free mask for the rest; 'sam2': SAM2 with "
                                     "a checkpoint), or 'none' for boxes only."),
    "model_path": Param("", "Fitted model file (from 'tao-ros fit'); '' = none yet."),
    "device": Param("cpu", "Device of neural plugins (those with a 'device' parameter not set for them): "
                           "'cpu' or 'cuda'/'cuda:N'."),
    "fit_chunk_frames": Param(50, "Held-out training scores score each chunk of this many normal frames of a "
                                  "clip by a model fitted without it and the chunks just before and after it, "
                                  "where the same objects are still in view.", minimum=1),
    # --- 3D positions (with an aligned depth image and camera intrinsics) ---
    "depth_min": Param(0.1, "Nearest valid depth reading in metres (the sensor's minimum range); nearer ones "
                            "are ignored for 3D positions.", minimum=0.0),
    "depth_max": Param(50.0, "Farthest valid depth reading in metres (the sensor's maximum range).", minimum=0.0),
    "min_depth_pixels": Param(20, "An object gets a 3D position only from at least this many valid depth "
                                  "pixels on its surface (else none, counted).", minimum=1),
    "marker_lifetime": Param(0.5, "Node: seconds an RViz marker of ~/markers stays without an update.",
                             minimum=0.0),
    # --- ROS 2 node only (the CLI ignores these) ---
    "compressed": Param(False, "Node: subscribe to 'image/compressed' (sensor_msgs/CompressedImage) instead of "
                               "'image'."),
    "use_depth": Param(False, "Node: also subscribe to 'depth' (aligned 16UC1 mm or 32FC1 m), paired with the "
                              "image by approximate time, and to 'camera_info' (of the depth-aligned, rectified "
                              "image) for the 3D outputs."),
    "sync_slop": Param(0.05, "Node: most seconds between an image and the depth image paired with it.",
                       minimum=0.0),
    "qos_reliability": Param("best_effort", "Node: input QoS reliability ('best_effort' as sensor data, or "
                                            "'reliable').", choices=("best_effort", "reliable")),
    "qos_depth": Param(5, "Node: input QoS history depth.", minimum=1),
    "autostart": Param(True, "Node: configure and activate the lifecycle node at start-up."),
    "calibration_frames": Param(300, "Node: frames recorded by the ~/calibrate service to learn what is normal.",
                                minimum=10),
    "diagnostics_period": Param(1.0, "Node: seconds between /diagnostics messages.", minimum=0.1),
    "max_training_samples": Param(40000, "At most this many normal objects are kept to fit the density "
                                         "models (evenly subsampled).", minimum=100),
}


@dataclass
class Config:
    """Validated configuration: pipeline ``options`` and per-plugin parameters."""

    options: dict = field(default_factory=lambda: {k: p.default for k, p in OPTIONS.items()})
    plugin_params: dict[str, dict] = field(default_factory=dict)

    def __getattr__(self, key):
        options = self.__dict__.get("options", {})
        if key in options:
            return options[key]
        raise AttributeError(key)

    def params_for(self, plugin_name: str) -> dict:
        return dict(self.plugin_params.get(plugin_name, {}))


def coerce(key: str, value, param: Param):
    """Check ``value`` against ``param`` (type of its default, choices, minimum) and return it."""
    default = param.default
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, type(default[0])) for v in value) \
            if default else isinstance(value, (list, tuple))
        value = list(value) if ok else value
    else:
        ok = isinstance(value, type(default)) and not isinstance(value, bool)
    if not ok:
        raise ConfigError(f"{key}: {value!r} is not allowed; expected a {type(default).__name__} "
                          f"like {default!r}")
    if param.choices:
        bad = [v for v in (value if isinstance(value, list) else [value]) if v not in param.choices]
        if bad:
            raise ConfigError(f"{key}: {value!r} is not allowed; choose from {list(param.choices)}")
    if param.minimum is not None and isinstance(value, (int, float)) and value < param.minimum:
        raise ConfigError(f"{key}: {value!r} is not allowed; it must be >= {param.minimum}")
    if param.maximum is not None and isinstance(value, (int, float)) and value > param.maximum:
        raise ConfigError(f"{key}: {value!r} is not allowed; it must be <= {param.maximum}")
    return value


def unknown_key(key: str, value, known, what: str) -> ConfigError:
    """ConfigError for ``key`` not among ``known``, naming the nearest valid name."""
    import difflib

    nearest = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {nearest[0]!r}? " if nearest else ""
    return ConfigError(f"{key}: unknown {what} (value {value!r}); {hint}allowed: {', '.join(sorted(known)) or 'none'}")


ROS_OWN_PARAMETERS = ("use_sim_time", "start_type_description_service")
"""Parameters every ROS 2 node has: accepted in a parameter file, ignored by the pipeline (so is
``qos_overrides.*``)."""


def is_ros_own(key: str) -> bool:
    return key in ROS_OWN_PARAMETERS or key.startswith("qos_overrides.")


def flatten(mapping: dict, prefix: str = "") -> dict:
    """Nested mapping -> dotted keys, as ROS 2 names parameters."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def ros_parameters(document) -> dict:
    """The parameter mapping of a ROS 2 parameter file (first node entry) or a plain mapping."""
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"configuration must be a mapping, got {type(document).__name__}")
    for value in document.values():
        if isinstance(value, dict) and "ros__parameters" in value:
            return value["ros__parameters"] or {}
    return document


def from_mapping(mapping: dict) -> Config:
    """Validate flat or nested ``mapping`` into a Config; raise ConfigError naming the first bad key."""
    config = Config()
    for key, value in flatten(mapping).items():
        if is_ros_own(key):
            continue
        if "." in key:
            plugin, param = key.split(".", 1)
            config.plugin_params.setdefault(plugin, {})[param] = value
        elif key in OPTIONS:
            config.options[key] = coerce(key, value, OPTIONS[key])
        else:
            raise unknown_key(key, value, OPTIONS, "option (or write PLUGIN.PARAM for a plugin's parameter)")
    check_together(config.options)
    return config


def check_together(options: dict) -> None:
    """ConfigError naming the parameters whose values each pass alone but cannot work together."""
    if options["depth_min"] >= options["depth_max"]:
        raise ConfigError(f"depth_min ({options['depth_min']:g}) must be below depth_max ({options['depth_max']:g}): "
                          "they are the sensor's nearest and farthest valid readings in metres")


def parse_assignments(assignments: list[str]) -> dict:
    """``["KEY=VALUE", ...]`` (the command line's -p) -> {KEY: VALUE}, each value read as YAML
    (``0.5`` a float, ``[speed, depth]`` a list, ``/models/a.pt`` a string); ConfigError without '='."""
    import yaml

    parsed = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals or not key:
            raise ConfigError(f"-p {assignment!r}: expected KEY=VALUE, e.g. -p open_set.weights=/models/yolo.tflite")
        try:
            parsed[key.strip()] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"-p {assignment!r}: the value is not valid YAML: {exc}") from None
    return parsed


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Read ``path`` (default: the packaged ``config/anomaly.yaml``), apply ``overrides``, validate."""
    import yaml

    path = Path(path) if path else DEFAULT_CONFIG_PATH
    mapping = {}
    if path.exists():
        try:
            mapping = flatten(ros_parameters(yaml.safe_load(path.read_text())))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    elif path != DEFAULT_CONFIG_PATH:
        raise ConfigError(f"{path}: configuration file not found; pass an existing file or omit --config")
    try:
        return from_mapping({**mapping, **flatten(overrides or {})})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
