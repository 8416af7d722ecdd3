"""Replay throughput of the node's code path on a long synthetic bag, and whether memory stays flat.

    python benchmarks/replay.py [--frames 2000] [--width 640] [--height 480]

Writes a camera-only synthetic bag (raw bgr8), fits the weight-free default on a normal scene of the
same camera, then feeds every bag message through the engine exactly as 'tao-ros replay' does
(decode, pipeline, output messages; the output bag writing is left out so the figures are the
node's). Prints frames per second, per-frame latency median/p95, peak RSS, and RSS after frame 200
vs. after the last frame.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()

    from rosbags.highlevel import AnyReader

    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
    from tao_ros.eval.synth import Camera, Scene, write_scene_bag
    from tao_ros.io.messages import MessageTypes
    from tao_ros.ros.engine import AnomalyEngine
    from tao_ros.ros.msgdefs import typestore
    from tao_ros.io.sources import paired_messages
    from tao_ros.ros.engine import InputFrame

    scale = args.width / 360
    camera = Camera(args.width, args.height, focal=260 * scale, horizon_row=50 * args.height / 240)
    work = Path(tempfile.mkdtemp(prefix="tao_ros_replay_bench_"))
    try:
        start = time.perf_counter()
        write_scene_bag(work / "long", Scene(1, args.frames, anomalies=True, camera=camera), camera_only=True)
        print(f"wrote a {args.frames}-frame {args.width}x{args.height} bag in {time.perf_counter() - start:.0f} s")
        config = load_config()
        pipeline = AnomalyPipeline(config)
        pipeline.fit([("normal", lambda: (StreamFrame(f[0]) for f in
                                          Scene(0, 300, anomalies=False, camera=camera).render()))])
        engine = AnomalyEngine(config, pipeline)
        types = MessageTypes.from_typestore(typestore("jazzy"))
        latencies, memory = [], {}
        begin = time.perf_counter()
        with AnyReader([work / "long"]) as reader:
            for index, (_, image_msg, _, _) in enumerate(paired_messages(reader, "/camera/image_raw", None), 1):
                start = time.perf_counter()
                outputs = engine.process(InputFrame(image_msg))
                engine.messages(outputs, types)
                latencies.append(time.perf_counter() - start)
                if index in (200, args.frames):
                    memory[index] = rss_mb()
        elapsed = time.perf_counter() - begin
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ms = np.array(latencies) * 1000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{'frames':>7}{'fps (with bag reading)':>24}{'median ms':>11}{'p95 ms':>9}{'peak RSS MB':>13}"
          f"{'RSS@200 MB':>12}{f'RSS@{args.frames} MB':>14}")
    print(f"{len(ms):>7}{len(ms) / elapsed:>24.1f}{np.median(ms):>11.1f}{np.percentile(ms, 95):>9.1f}{peak:>13.0f}"
          f"{memory.get(200, float('nan')):>12.0f}{memory.get(args.frames, float('nan')):>14.0f}")
    print(f"dropped (bad input): {sum(engine.bad_input.values())}, processed: {engine.counts['processed']}")


if __name__ == "__main__":
    main()
