"""Many cameras on one machine: all in one process (one instance of each neural model, shared)
against one process per camera.

    python benchmarks/multi_camera.py [--cameras 1 2 4] [--profile weight-free --profile pretrained]
        [--seconds 30] [--repeats 3] [--scenes ped2 avenue ped1] [--weights ../shared/weights]
        [--cache /tmp/tao_ros_multi_camera]
    python benchmarks/multi_camera.py --batching   # the appearance backbone: frames one by one or batched

Camera i replays the test frames of dev scene i mod 3 of ``--scenes`` (Ped2 and Ped1 at 10 fps,
Avenue at 25) in real time, as image messages handed to its ``AnomalyEngine`` (what ``anomaly_node`` runs, ROS-free:
DDS costs alike in both set-ups), whose worker thread takes the newest frame and publishes its
outputs. Each scene's model is fitted once on its first 300 normal frames (``--cache``). Every
set-up runs in fresh processes, so that memory is theirs alone.

Prints per set-up, the median of ``--repeats`` runs that alternate between the set-ups (this
machine's speed drifts by up to a fifth between minutes): processed frames per second per camera
(mean, and the lowest camera's: under load every camera must get its share), in total (and its
range over the runs), frames dropped for a newer one (share of those received), latency from a
frame's arrival to its outputs (p50 / p95), the CPU the process(es) used while measured (100% = one
core) and the frames processed per CPU-second, and the resident memory of the process(es) at the end
(sum over processes). Under load one process gives every camera the same share of frames (its
shared models serve the cameras in turn), while separate processes get the same share of CPU time,
so that a camera with cheaper frames (Ped1's 238x158) gets more of them: with mixed scenes the
totals compare different mixes of frames; ``--scenes ped2`` compares like with like.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from object_stage import PROFILES, SCENES, SHARED, scene_frames, weight_overrides

from tao_ros.config import load_config
from tao_ros.core.pipeline import AnomalyPipeline

SCENE_ORDER = ["ped2", "avenue", "ped1"]
FPS = {"ped2": 10.0, "avenue": 25.0, "ped1": 10.0}
FIT_FRAMES = 300


def config_overrides(profile: str, weights: Path) -> dict:
    return weight_overrides(weights, False) if profile == "pretrained" else {}


def fitted_model(cache: Path, scene: str, profile: str, weights: Path) -> Path:
    """The scene's model of ``profile`` fitted on its first 300 normal frames, kept in ``cache``."""
    path = cache / f"{scene}-{profile}.npz"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        training, _ = scene_frames(SCENES[scene], FIT_FRAMES, 0)
        pipeline = AnomalyPipeline(load_config(PROFILES[profile], config_overrides(profile, weights)))
        pipeline.fit(training)
        pipeline.save(path)
    return path


def resident_mb() -> float:
    """This process's resident memory now, MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def backbone_batching(weights: Path, cameras: int = 2, repeats: int = 10) -> None:
    """Print the appearance backbone's time for ``cameras`` frames of each scene's size (as
    ``AppearanceFeature.embed`` scales them), one call each against one batched call."""
    import cv2
    import torch

    from tao_ros.plugins import PluginRegistry

    params = load_config(PROFILES["pretrained"], config_overrides("pretrained", weights)).plugin_params["appearance"]
    feature = PluginRegistry.discover().create("feature", "appearance", params)
    print(f"appearance backbone ({params['architecture']}, to 1/16 resolution), {cameras} frames, "
          f"{torch.get_num_threads()} threads, median of {repeats}\n")
    print(f"{'scene':<8}{'input':>10}{'one call each ms':>18}{'one batch ms':>14}")
    for scene in SCENE_ORDER:
        height, width = cv2.imread(str(min((SCENES[scene] / "testing" / "frames").glob("*/*.jpg")))).shape[:2]
        size = feature.input_size(height, width)
        frames = torch.rand(cameras, 3, size[1], size[0])
        times = {"each": [], "batch": []}
        with torch.inference_mode():
            for _ in range(repeats + 2):
                start = time.perf_counter()
                for k in range(cameras):
                    feature.backbone(frames[k:k + 1])
                times["each"].append(time.perf_counter() - start)
                start = time.perf_counter()
                feature.backbone(frames)
                times["batch"].append(time.perf_counter() - start)
        each, batch = (np.median(times[k][2:]) * 1e3 for k in ("each", "batch"))
        print(f"{scene:<8}{f'{size[0]}x{size[1]}':>10}{each:>18.1f}{batch:>14.1f}")


def serve(cameras: list[int], profile: str, weights: Path, cache: Path, seconds: float, order: list[str]) -> dict:
    """Run ``cameras`` (indices; camera i replays scene i mod len(order) of ``order``) in this process for
    ``seconds`` -> per camera processed, received, dropped and latencies, the process's CPU seconds
    while measured and its resident memory."""
    import cv2

    from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image
    from tao_ros.ros.engine import AnomalyEngine
    from tao_ros.ros.handoff import InputFrame
    from tao_ros.ros.msgdefs import typestore

    cv2.setNumThreads(1)
    types = MessageTypes.from_typestore(typestore("jazzy"))
    scenes = [order[i % len(order)] for i in cameras]
    engines = [AnomalyEngine(load_config(PROFILES[profile], {**config_overrides(profile, weights),
                                                              "model_path": str(cache / f"{s}-{profile}.npz")}),
                             node_name=f"/camera{i}/anomaly_node") for i, s in zip(cameras, scenes)]
    latencies = [[] for _ in engines]
    running, started = threading.Event(), threading.Event()
    running.set()

    def feed(k: int) -> None:  # a camera: the scene's test frames in real time, stamped with their send time
        paths = sorted(p for clip in sorted((SCENES[scenes[k]] / "testing" / "frames").iterdir()) if clip.is_dir()
                       for p in sorted(clip.iterdir()))
        period, n = 1.0 / FPS[scenes[k]], 0
        started.wait()
        start = time.monotonic()
        while running.is_set():
            image = cv2.imread(str(paths[n % len(paths)]))
            stamp = time.monotonic_ns()
            engines[k].submit(InputFrame(numpy_to_image(types, make_header(types, stamp, "cam"), image, "bgr8")))
            n += 1
            time.sleep(max(0.0, start + n * period - time.monotonic()))

    def work(k: int) -> None:  # the camera's worker thread, as anomaly_node runs it
        def publish(outputs) -> None:
            engines[k].messages(outputs, types)
            stamp = outputs.header.stamp.sec * 10**9 + outputs.header.stamp.nanosec
            latencies[k].append((time.monotonic_ns() - stamp) / 1e6)

        started.wait()
        while running.is_set():
            engines[k].step(timeout=0.1, publish=publish)

    threads = [threading.Thread(target=f, args=(k,), daemon=True) for k in range(len(engines)) for f in (feed, work)]
    for thread in threads:
        thread.start()
    warm_up = 5.0  # first calls allocate; counted from here on
    started.set()
    time.sleep(warm_up)
    counts0 = [(e.counts["processed"], e.counts["received"], e.counts["dropped_stale"]) for e in engines]
    for lat in latencies:
        lat.clear()
    cpu0 = time.process_time()  # all threads of the process, the models' own included
    time.sleep(seconds)
    running.clear()
    cpu = time.process_time() - cpu0
    counts1 = [(e.counts["processed"], e.counts["received"], e.counts["dropped_stale"]) for e in engines]
    memory = resident_mb()
    for thread in threads:
        thread.join(5)
    return {"cameras": [{"processed": c1[0] - c0[0], "received": c1[1] - c0[1], "dropped": c1[2] - c0[2],
                         "latency_ms": lat} for c0, c1, lat in zip(counts0, counts1, latencies)],
            "cpu_seconds": cpu, "memory_mb": memory, "seconds": seconds}


def run_set_up(cameras: int, processes: int, profile: str, args) -> dict:
    """``cameras`` cameras in ``processes`` processes (1 or one per camera), started together."""
    groups = np.array_split(np.arange(cameras), processes)
    children = [subprocess.Popen([sys.executable, __file__, "--serve", ",".join(map(str, g)), "--profile", profile,
                                  "--seconds", str(args.seconds), "--weights", str(args.weights),
                                  "--cache", str(args.cache), "--scenes", *args.scenes], stdout=subprocess.PIPE,
                                 text=True)
                for g in groups]
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"a serving process failed ({child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    per_camera = [c for r in results for c in r["cameras"]]
    fps = np.array([c["processed"] / args.seconds for c in per_camera])
    latency = np.concatenate([c["latency_ms"] for c in per_camera]) if per_camera else np.zeros(0)
    received = sum(c["received"] for c in per_camera)
    cpu = sum(r["cpu_seconds"] for r in results)
    return {"cpu": cpu / args.seconds, "per_cpu_second": fps.sum() * args.seconds / max(cpu, 1e-9), "fps_mean": fps.mean(), "fps_min": fps.min(), "fps_total": fps.sum(),
            "dropped": sum(c["dropped"] for c in per_camera) / max(received, 1),
            "p50": np.percentile(latency, 50) if len(latency) else float("nan"),
            "p95": np.percentile(latency, 95) if len(latency) else float("nan"),
            "memory_mb": sum(r["memory_mb"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4], help="numbers of cameras to serve")
    parser.add_argument("--profile", action="append", choices=sorted(PROFILES), default=None,
                        help="profile(s); default both (the pretrained one only with --weights)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per set-up (after 5 s warm-up)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each set-up, alternating; medians printed")
    parser.add_argument("--scenes", nargs="+", choices=SCENE_ORDER, default=SCENE_ORDER,
                        help="scenes the cameras replay in turn (camera i: scene i mod their number)")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights", help="folder of the pretrained models")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tao_ros_multi_camera"), help="fitted models")
    parser.add_argument("--batching", action="store_true",
                        help="only time the appearance backbone on frames one by one against batched")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)  # a child: serve these camera indices
    args = parser.parse_args()
    profiles = args.profile or [p for p in PROFILES if p != "pretrained" or args.weights.is_dir()]
    if args.batching:
        backbone_batching(args.weights)
        return
    if args.serve is not None:
        cameras = [int(i) for i in args.serve.split(",")]
        print(json.dumps(serve(cameras, profiles[0], args.weights, args.cache, args.seconds, args.scenes)))
        return
    for profile in profiles:
        for scene in set(args.scenes):
            fitted_model(args.cache, scene, profile, args.weights)
    replayed = [args.scenes[i % len(args.scenes)] for i in range(max(args.cameras))]
    print(f"{args.seconds:.0f} s per set-up on this machine; cameras replay "
          f"{', '.join(replayed)} ({' / '.join(f'{FPS[s]:.0f}' for s in replayed)} fps)\n")
    print(f"{'profile':<13}{'cameras':>8}  {'set-up':<14}{'fps/camera':>11}{'lowest':>8}{'total fps':>10}"
          f"{'dropped':>9}{'p50 ms':>8}{'p95 ms':>8}{'CPU':>6}{'frames/CPU s':>13}{'memory MB':>11}"
          "   total fps over the runs")
    for profile in profiles:
        for cameras in args.cameras:
            set_ups = [(1, "one process")] + ([(cameras, "a process each")] if cameras > 1 else [])
            runs = {name: [] for _, name in set_ups}
            for _ in range(args.repeats):  # set-ups alternate: a busy spell of the machine hits both
                for processes, name in set_ups:
                    runs[name].append(run_set_up(cameras, processes, profile, args))
            for _, name in set_ups:
                r = {key: np.median([run[key] for run in runs[name]]) for key in runs[name][0]}
                spread = [run["fps_total"] for run in runs[name]]
                print(f"{profile:<13}{cameras:>8}  {name:<14}{r['fps_mean']:>11.1f}{r['fps_min']:>8.1f}"
                      f"{r['fps_total']:>10.1f}{r['dropped']:>9.0%}{r['p50']:>8.0f}{r['p95']:>8.0f}"
                      f"{r['cpu']:>6.0%}{r['per_cpu_second']:>13.1f}{r['memory_mb']:>11.0f}   {min(spread):.1f}-{max(spread):.1f}", flush=True)


if __name__ == "__main__":
    main()
