"""Accuracy of the 3D outputs on synthetic RGB-D scenes with exact ground truth.

    python benchmarks/localization.py [--seeds 0 1 2] [--train-frames 400] [--test-frames 300]

Per seed: the pipeline is fitted on a normal scene (aligned depth, as 'tao-ros demo' does), then
the test scene goes through the node's code path (``AnomalyEngine``: image, aligned 32FC1 depth and
the exact camera_info as messages) and every published 3D detection is compared with the
ground-truth anomalous object under its 2D box: its visible surface back-projected with the exact
depth. Two truths: the part of the object inside the detection's box (what the detection claims:
the error of the 3D step itself) and the whole object (also counting 2D boxes that cover only part
of it, e.g. a crate the detector split in two). Prints per seed and overall: anomalous detections
(on an anomalous object), the share given a 3D position (every synthetic object has valid depth),
the centroid error relative to the object's distance (median, p95; and the median in metres), and
the extent error (x and y, metres), for the part in the box and for the whole object.
"""

from __future__ import annotations

import argparse

import numpy as np

from tao_ros.config import load_config
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
from tao_ros.eval.location import box_mask, instance_under, location_errors, true_extent, true_extents
from tao_ros.eval.synth import Camera, Scene
from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image
from tao_ros.ros.engine import AnomalyEngine, InputFrame
from tao_ros.ros.msgdefs import typestore

TYPES = MessageTypes.from_typestore(typestore("jazzy"))
RGBD = {"depth_source": "depth_image", "speed": {"perspective": "depth"}, "use_depth": True}


def camera_info(camera: Camera):
    k = camera.intrinsics()
    return TYPES.new("sensor_msgs/msg/CameraInfo", header=make_header(TYPES, 0, "camera_optical_frame"),
                     width=k.width, height=k.height, distortion_model="plumb_bob", d=np.zeros(5),
                     k=np.array([k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1.0]), r=np.eye(3).reshape(-1), p=np.zeros(12))


def measure(seed: int, train_frames: int, test_frames: int) -> dict:
    config = load_config(overrides=RGBD)
    pipeline = AnomalyPipeline(config)
    normal = Scene(seed, train_frames, anomalies=False)
    pipeline.fit([("normal", lambda: (StreamFrame(image, depth) for image, depth, *_ in normal.render()))])
    engine = AnomalyEngine(config, pipeline)
    scene = Scene(seed + 1, test_frames, anomalies=True)
    intrinsics = scene.camera.intrinsics()
    engine.submit_camera_info(camera_info(scene.camera))
    rows, unmatched = [], 0
    for t, (image, depth, instances, anomalous_ids) in enumerate(scene.render()):
        header = make_header(TYPES, 10**9 + t * 10**8, "camera_optical_frame")
        outputs = engine.process(InputFrame(numpy_to_image(TYPES, header, image, "bgr8"),
                                            numpy_to_image(TYPES, header, depth, "32FC1")))
        if outputs is None:
            continue
        messages = engine.messages(outputs, TYPES)
        boxes = {d.id: d.bbox for d in messages["~/detections"].detections}
        located = {d.id: d.bbox for d in messages["~/detections_3d"].detections}
        anomalous = np.where(np.isin(instances, list(anomalous_ids)), instances, 0)
        truth = true_extents(anomalous, depth, intrinsics)
        for object_id, box in boxes.items():
            cx, cy, w, h = box.center.position.x, box.center.position.y, box.size_x, box.size_y
            xyxy = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            true_id = int(instance_under(xyxy[None], anomalous)[0])
            if true_id == 0:
                unmatched += 1
                continue
            if object_id not in located:
                rows.append((np.nan,) * 6)
                continue
            bbox = located[object_id]
            centre = np.array([bbox.center.position.x, bbox.center.position.y, bbox.center.position.z])
            size = np.array([bbox.size.x, bbox.size.y, bbox.size.z])
            part = true_extent((anomalous == true_id) & box_mask(xyxy, anomalous.shape), depth, intrinsics)
            rows.append(location_errors(centre, size, *part) + location_errors(centre, size, *truth[true_id]))
    return {"rows": np.array(rows, dtype=np.float64).reshape(-1, 6), "unmatched": unmatched}


def errors(rows: np.ndarray) -> str:
    distance, relative, extent = rows[:, 0], rows[:, 1], rows[:, 2]
    return (f"{np.median(relative):>9.2%} {np.percentile(relative, 95):>9.2%} {np.median(relative * distance):>7.3f} "
            f"{np.median(extent):>8.3f}")


def summary(name: str, rows: np.ndarray, unmatched: int) -> str:
    located = rows[np.isfinite(rows[:, 0])]
    share = len(located) / max(len(rows), 1)
    if not len(located):
        return f"{name:<6} {len(rows):>8} {share:>8.1%}   (no positions)"
    return (f"{name:<6} {len(rows):>8} {share:>8.1%} {np.median(located[:, 0]):>7.1f} | {errors(located[:, :3])} | "
            f"{errors(located[:, 3:])} | {unmatched:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-frames", type=int, default=400)
    parser.add_argument("--test-frames", type=int, default=300)
    args = parser.parse_args()
    print("3D positions of anomalous objects on synthetic RGB-D scenes (exact ground truth)")
    print("objects: published anomalous detections on an anomalous object; located: share with a 3D position;")
    print("error: centroid error relative to the object's distance (median, p95) and in metres (median);")
    print("extent: x/y size error (m, median); against the part of the object in the detection's box, and")
    print("against the whole object; false: published detections on no anomalous object (not scored)\n")
    columns = f"{'err med':>9} {'err p95':>9} {'err m':>7} {'extent m':>8}"
    print(f"{'':<6} {'':>8} {'':>8} {'':>7} | {'the part in the box':<36} | {'the whole object':<36} |")
    print(f"{'seed':<6} {'objects':>8} {'located':>8} {'dist m':>7} | {columns} | {columns} | {'false':>6}")
    results = []
    for seed in args.seeds:
        result = measure(seed, args.train_frames, args.test_frames)
        results.append(result)
        print(summary(str(seed), result["rows"], result["unmatched"]), flush=True)
    print(summary("all", np.concatenate([r["rows"] for r in results]), sum(r["unmatched"] for r in results)))


if __name__ == "__main__":
    main()
