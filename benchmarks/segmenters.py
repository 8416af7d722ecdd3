"""Per-frame latency and peak memory of the segmenters for 1, 4 and 16 tracked objects.

    python benchmarks/segmenters.py [--device cpu|cuda] [--frames 500] [--sam2-frames 100]
                                    [--sam2-image-size 1024] [--sam2-checkpoint PATH]
                                    [--person-weights ../shared/weights/pose_landmark_full.tflite]

Each (segmenter, objects) case runs in its own process so that peak memory is its own. Objects
are prompted at frame 0 and re-prompted every 10 frames on a synthetic scene. 'overhead' is
end-to-end update() time divided by the time inside the models (SAM2's image encoder and
track_step; the foreground segmenter's per-object segmentation; the person segmenter's BlazePose
calls, its objects prompted as people): what the streaming bookkeeping costs on top of inference.
Without a checkpoint SAM2 runs with random weights (same cost); without BlazePose weights the person
segmenter is left out.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def timed(function, bucket: list, synchronize):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        synchronize()
        bucket.append(time.perf_counter() - start)
        return result
    return wrapper


def run_case(segmenter_name: str, objects: int, frames: int, device: str, image_size: int, checkpoint: str,
             person_weights: str = "") -> dict:
    import torch

    from tao_ros.plugins import PluginRegistry
    from tao_ros.types import Detections, FrameContext, Prompt

    registry = PluginRegistry.discover()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    inference: list[float] = []
    if segmenter_name == "sam2":
        params = {"device": device, "image_size": image_size, "patience": 10**6, "max_objects": 64}
        params.update({"checkpoint": checkpoint} if checkpoint else {"allow_random_weights": True})
        segmenter = registry.create("segmenter", "sam2", params)
        segmenter.model.forward_image = timed(segmenter.model.forward_image, inference, sync)
        segmenter.model.track_step = timed(segmenter.model.track_step, inference, sync)
    elif segmenter_name == "person":
        segmenter = registry.create("segmenter", "person", {"weights": person_weights, "patience": 10**6,
                                                            "max_objects": 64})
        segmenter.model.masks = timed(segmenter.model.masks, inference, sync)
    else:
        segmenter = registry.create("segmenter", "foreground", {"patience": 10**6, "max_objects": 64})
        segmenter.segment = timed(segmenter.segment, inference, sync)
    label = "person" if segmenter_name == "person" else "object"
    height, width = 480, 640
    rng = np.random.default_rng(0)
    grid = int(np.ceil(np.sqrt(objects)))
    cell_w, cell_h = width // grid, height // grid
    boxes = np.array([[(i % grid) * cell_w + 5, (i // grid) * cell_h + 5, (i % grid + 1) * cell_w - 5,
                       (i // grid + 1) * cell_h - 5] for i in range(objects)], dtype=float)
    ids = np.arange(1, objects + 1)
    base = rng.integers(60, 200, (height, width, 3), dtype=np.uint8)
    latencies, model_time = [], []
    for t in range(frames):
        image = np.roll(base, t, axis=1)
        foreground = np.zeros((height, width), bool)
        for x1, y1, x2, y2 in boxes.astype(int):
            foreground[y1 + 10:y2 - 10, x1 + 10:x2 - 10] = True
        context = FrameContext(t, image, image[..., 0], None, None, foreground)
        prompts = [Prompt(t, tuple(b), label, 5.0, int(i)) for b, i in zip(boxes, ids)] if t % 10 == 0 else []
        before = len(inference)
        start = time.perf_counter()
        segmenter.update(context, prompts, Detections(boxes, ids=ids))
        sync()
        latencies.append(time.perf_counter() - start)
        model_time.append(sum(inference[before:]))
    skip = min(5, frames // 10)  # warm-up frames
    lat, inf = np.array(latencies[skip:]), np.array(model_time[skip:])
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"median_ms": float(np.median(lat) * 1000), "p95_ms": float(np.percentile(lat, 95) * 1000),
            "peak_mb": float(peak), "overhead": float(lat.sum() / max(inf.sum(), 1e-9)), "frames": frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=500, help="frames per case for the foreground segmenter")
    parser.add_argument("--sam2-frames", type=int, default=500, help="frames per case for SAM2")
    parser.add_argument("--sam2-image-size", type=int, default=1024)
    parser.add_argument("--sam2-checkpoint", default="")
    parser.add_argument("--person-weights", default=str(Path(__file__).resolve().parents[2] / "shared" / "weights" /
                                                         "pose_landmark_full.tflite"),
                        help="BlazePose landmark model for the person segmenter ('' or missing: left out)")
    parser.add_argument("--objects", default="1,4,16")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        name, objects = args.case.split(":")
        frames = args.sam2_frames if name == "sam2" else args.frames
        print(json.dumps(run_case(name, int(objects), frames, args.device, args.sam2_image_size,
                                  args.sam2_checkpoint, args.person_weights)))
        return
    peak_label = "peak GPU MB" if args.device.startswith("cuda") else "peak RSS MB"
    print(f"device {args.device}; 640x480 frames; SAM2 image size {args.sam2_image_size}"
          f"{'' if args.sam2_checkpoint else ' (random weights)'}\n")
    print(f"{'segmenter':<12}{'objects':>8}{'frames':>8}{'median ms':>11}{'p95 ms':>9}{peak_label:>13}{'overhead':>10}")
    names = ["foreground", "person", "sam2"] if Path(args.person_weights).is_file() else ["foreground", "sam2"]
    for name in names:
        for objects in (int(n) for n in args.objects.split(",")):
            command = [sys.executable, __file__, "--case", f"{name}:{objects}", "--device", args.device,
                       "--frames", str(args.frames), "--sam2-frames", str(args.sam2_frames),
                       "--sam2-image-size", str(args.sam2_image_size), "--sam2-checkpoint", args.sam2_checkpoint,
                       "--person-weights", args.person_weights]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{name:<12}{objects:>8}  failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name:<12}{objects:>8}{r['frames']:>8}{r['median_ms']:>11.1f}{r['p95_ms']:>9.1f}"
                  f"{r['peak_mb']:>13.0f}{r['overhead']:>10.3f}")


if __name__ == "__main__":
    main()
