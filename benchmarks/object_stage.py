"""Frames per second of the object-level stage (what 'tao-ros run' does per frame), per stage.

    python benchmarks/object_stage.py [--data ../shared/data/ucsd-ped2-dev] [--frames 600]

Fits on the data's training clips (or a synthetic normal scene when no data is given), then runs
the test clips frame by frame and prints milliseconds per frame (median, p95) and frames per
second for each stage, with and without the weight-free segmenter.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tao_ros.config import load_config
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
from tao_ros.io.sources import open_clips


def frames_and_training(data: Path | None, limit: int):
    if data is not None:
        training = [(c.name, c.frames) for c in open_clips(data / "training" / "frames")]
        test = [f for c in open_clips(data / "testing" / "frames") for f in c.frames()][:limit]
        return training, test, "UCSD Ped2 dev"
    from tao_ros.eval.synth import Scene

    normal = [StreamFrame(f[0]) for f in Scene(0, 300, anomalies=False).render()]
    test = [StreamFrame(f[0]) for f in Scene(1, limit, anomalies=True).render()]
    return [("synthetic", lambda: iter(normal))], test, "synthetic scene"


def measure(pipeline: AnomalyPipeline, frames) -> dict[str, np.ndarray]:
    pipeline.reset()
    stages = {"detect": [], "describe": [], "score": [], "segment": [], "total": []}
    for frame in frames:
        start = time.perf_counter()
        pipeline.process(frame)
        stages["total"].append(time.perf_counter() - start)
        for stage in ("detect", "describe", "score", "segment"):
            stages[stage].append(pipeline.timings.get(stage, 0.0))
    return {k: np.array(v) * 1000 for k, v in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="UCSD-style folder (training/frames, testing/frames)")
    parser.add_argument("--frames", type=int, default=600, help="test frames to time")
    args = parser.parse_args()
    training, test, source = frames_and_training(args.data, args.frames)
    height, width = test[0].image.shape[:2]
    print(f"{source}: {len(test)} frames of {width}x{height}, CPU, weight-free default configuration\n")
    print(f"{'configuration':<26}{'stage':<10}{'median ms':>10}{'p95 ms':>9}{'fps':>8}")
    fitted = None
    for label, segmenter in (("object stage only", "none"), ("with foreground segmenter", "foreground")):
        pipeline = AnomalyPipeline(load_config(overrides={"segmenter": segmenter}))
        if fitted is None:
            pipeline.fit(training)
            fitted = Path("/tmp/tao_ros_benchmark_model.npz")
            pipeline.save(fitted)
        else:
            pipeline.load(fitted)
        measure(pipeline, test[:20])  # warm-up
        times = measure(pipeline, test)
        for stage, ms in times.items():
            if stage == "segment" and segmenter == "none":
                continue
            fps = 1000.0 / ms.mean() if ms.mean() > 0 else float("inf")
            print(f"{label:<26}{stage:<10}{np.median(ms):>10.2f}{np.percentile(ms, 95):>9.2f}{fps:>8.1f}")
            label = ""


if __name__ == "__main__":
    main()
