"""Configuration: the packaged file, the ROS 2 parameter layout, and errors naming key and value."""

from __future__ import annotations

import pytest

from tao_ros.config import DEFAULT_CONFIG_PATH, OPTIONS, load_config
from tao_ros.errors import ConfigError


def test_packaged_config_is_valid_and_ros_shaped():
    import yaml

    document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    assert "ros__parameters" in document["/**"]
    config = load_config()
    assert config.detector == "motion"
    # every weight-free feature, and as the options' defaults (a node without the file gets the same)
    assert config.features == ["speed", "depth", "velocity", "position", "heading", "relative_speed", "dwell"]
    assert (config.features, config.standardization, config.combination) == \
        (OPTIONS["features"].default, OPTIONS["standardization"].default, OPTIONS["combination"].default)
    assert config.params_for("motion")["close_size"] == 5


def test_plain_mapping_and_node_named_layouts(tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text("threshold: 4\nspeed:\n  window: 3\n")
    config = load_config(plain)
    assert config.threshold == 4.0 and config.params_for("speed") == {"window": 3}
    named = tmp_path / "named.yaml"
    named.write_text("anomaly_node:\n  ros__parameters:\n    prompt_interval: 9\n")
    assert load_config(named).prompt_interval == 9


@pytest.mark.parametrize("text, message", [
    ("thresold: 2", r"thresold: unknown option .*\(value 2\); did you mean 'threshold'\? allowed: autostart"),
    ("threshold_quantile: 7", r"threshold_quantile: 7.0 is not allowed; it must be <= 1.0"),
    ("merge_iou: 7", r"merge_iou: 7.0 is not allowed; it must be <= 1.0"),
    ("threshold: high", r"threshold: 'high' is not allowed; expected a float"),
    ("standardization: rank", r"standardization: 'rank' is not allowed; choose from \['zscore', 'minmax', 'logz', 'tail'\]"),
    ("prompt_interval: 0", r"prompt_interval: 0 is not allowed; it must be >= 1"),
    ("features: speed", r"features: 'speed' is not allowed; expected a list"),
    ("score_window: true", r"score_window: True is not allowed; expected a int"),
])
def test_bad_values_name_key_value_and_what_is_allowed(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_every_option_is_documented():
    for key, param in OPTIONS.items():
        assert param.doc.endswith("."), key


def test_the_readme_option_table_is_the_options():
    from pathlib import Path

    def shown(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + ", ".join(map(str, value)) + "]"
        return repr(value) if isinstance(value, str) else str(value)

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("| option | default | meaning |"):]
    table = table[:table.index("\n\n")].splitlines()[2:]
    assert table == [f"| `{key}` | `{shown(param.default)}` | {param.doc} |" for key, param in OPTIONS.items()]


def test_ros_own_parameters_of_a_node_file_are_accepted_and_ignored(tmp_path):
    path = tmp_path / "node.yaml"
    path.write_text("/**:\n  ros__parameters:\n    use_sim_time: true\n    qos_overrides:\n"
                    "      /image:\n        subscription:\n          depth: 3\n    threshold: 2.5\n")
    config = load_config(path)
    assert config.threshold == 2.5 and not config.plugin_params


@pytest.mark.parametrize("overrides, message", [
    ({"motoin": {"min_area": 0.001}}, r"motoin: unknown plugin section .*did you mean 'motion'\?"),
    ({"motion": {"min_aera": 0.001}}, r"motion.min_aera: unknown parameter .*did you mean 'motion.min_area'\?"),
    ({"knn": {"k": 0}}, r"knn.k: 0 is not allowed; it must be >= 1"),  # a plugin not in use is checked too
    ({"scorer": "knn", "mahalanobis": {"k": 3}}, r"mahalanobis.k: unknown parameter"),
    ({"speed": {"percentile": 150.0}}, r"speed.percentile: 150.0 is not allowed; it must be <= 100.0"),
])
def test_every_plugin_section_and_parameter_is_checked_at_any_depth(overrides, message):
    from tao_ros.core.pipeline import AnomalyPipeline

    with pytest.raises(ConfigError, match=message):
        AnomalyPipeline(load_config(overrides=overrides))


def test_command_line_assignments_are_read_as_yaml_and_validated_like_the_file():
    from tao_ros.config import parse_assignments

    parsed = parse_assignments(["open_set.weights=/models/yolo.tflite", "threshold_quantile=0.995",
                                "features=[speed, depth, appearance]", "model_path="])
    assert parsed == {"open_set.weights": "/models/yolo.tflite", "threshold_quantile": 0.995,
                      "features": ["speed", "depth", "appearance"], "model_path": ""}
    config = load_config(None, parsed)
    assert config.plugin_params["open_set"]["weights"] == "/models/yolo.tflite" and config.threshold_quantile == 0.995
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignments(["threshold"])
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        load_config(None, parse_assignments(["thresold=0.5"]))


def test_fit_refuses_a_misspelled_command_line_parameter_with_exit_2(tmp_path, capsys):
    from tao_ros.cli import main

    assert main(["fit", str(tmp_path), "-o", str(tmp_path / "m.npz"), "-p", "thresold=0.5"]) == 2
    assert "did you mean 'threshold'" in capsys.readouterr().err


def test_values_that_pass_alone_but_not_together_are_refused_naming_both():
    from tao_ros.errors import ConfigError

    with pytest.raises(ConfigError, match="depth_min .*5.* must be below depth_max .*1"):
        load_config(overrides={"depth_min": 5.0, "depth_max": 1.0})
    assert load_config(overrides={"depth_min": 0.5, "depth_max": 8.0}).depth_max == 8.0
