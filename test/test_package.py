"""package.xml declares exactly what the package imports (rosdep keys), nothing unused."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from tao_ros.io.messages import MessageTypes

ROOT = Path(__file__).resolve().parent.parent
ROS_PACKAGES = {"rclpy", "std_msgs", "builtin_interfaces", "geometry_msgs", "sensor_msgs", "vision_msgs", "std_srvs",
                "diagnostic_msgs", "visualization_msgs", "rcl_interfaces", "lifecycle_msgs", "launch", "launch_ros", "ament_index_python"}
ROSDEP_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "sklearn": "python3-sklearn",
               "cv2": "python3-opencv", "yaml": "python3-yaml", "tqdm": "python3-tqdm", "pluggy": "python3-pluggy",
               "matplotlib": "python3-matplotlib"}
PIP_ONLY = {"rosbags", "torch", "torchvision", "ultralytics", "sam2", "hydra",  # setup.py installs them; no rosdep key
            "ai_edge_litert", "onnxruntime"}


def imported_modules() -> set[str]:
    """Top-level modules imported by the package and its launch files, plus the message packages
    ``MessageTypes.from_rclpy`` imports by name (``RCLPY_TYPES``)."""
    modules = set()
    for path in [*ROOT.joinpath("tao_ros").rglob("*.py"), *ROOT.joinpath("launch").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules | {name.split("/")[0] for name in MessageTypes.RCLPY_TYPES}


def test_exec_depends_are_exactly_the_imports():
    declared = {e.text for e in ElementTree.parse(ROOT / "package.xml").getroot().iter("exec_depend")}
    imported = imported_modules()
    third_party = imported - {"tao_ros"} - set(__import__("sys").stdlib_module_names)
    unknown = third_party - ROS_PACKAGES - set(ROSDEP_KEYS) - PIP_ONLY
    assert not unknown, f"imports without a known rosdep key or pip note: {unknown}"
    expected = (third_party & ROS_PACKAGES) | {ROSDEP_KEYS[m] for m in third_party & set(ROSDEP_KEYS)}
    expected.add("lifecycle_msgs")  # rclpy.lifecycle's messages: the node is a lifecycle node
    assert declared == expected, (f"declared but not imported: {sorted(declared - expected)}; "
                                  f"imported but not declared: {sorted(expected - declared)}")
    assert "cv_bridge" not in declared and "message_filters" not in declared


def test_every_file_setup_py_installs_exists():
    """setup.py installed a py.typed that did not exist."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    package_data = next(k.value for k in call.keywords if k.arg == "package_data")
    for key, files in zip(package_data.keys, package_data.values):
        for name in ast.literal_eval(files):
            assert (ROOT / "tao_ros" / name).is_file(), f"setup.py installs tao_ros/{name}, which does not exist"
