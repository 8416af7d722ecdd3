"""The node as a process over DDS: camera frames published at a rate, outputs received, per frame latency.

    python benchmarks/node_dds.py [--frames 600] [--rate 15 30] [--width 640] [--height 480]

Fits the weight-free default on a synthetic normal scene of the camera, starts ``anomaly_node`` as a
process (as ``ros2 launch`` does; own ROS_DOMAIN_ID, localhost discovery), publishes a synthetic
test scene on ``image`` (raw bgr8, reliable) at each rate and receives ``~/anomaly_mask``. Prints,
per rate: frames sent, outputs received, output rate, latency from publishing a frame to receiving
its output (median, p95), and frames the node skipped to stay current (newest-frame hand-off).
Both processes share this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rate", type=float, nargs="+", default=[15.0, 30.0], help="publishing rates (Hz)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

    import rclpy
    from sensor_msgs.msg import Image

    from tao_ros.config import DEFAULT_CONFIG_PATH, load_config
    from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
    from tao_ros.eval.synth import Camera, Scene
    from tao_ros.io.messages import MessageTypes, header_stamp_ns, make_header, numpy_to_image

    scale = args.width / 360
    camera = Camera(args.width, args.height, focal=260 * scale, horizon_row=50 * args.height / 240)
    work = Path(tempfile.mkdtemp(prefix="tao_ros_node_bench_"))
    pipeline = AnomalyPipeline(load_config())
    pipeline.fit([("normal", lambda: (StreamFrame(f[0]) for f in Scene(0, 300, anomalies=False, camera=camera).render()))])
    pipeline.save(work / "model.npz")
    frames = [f[0] for f in Scene(1, args.frames, anomalies=True, camera=camera).render()]
    process = subprocess.Popen([shutil.which("anomaly_node"), "--ros-args", "--params-file", str(DEFAULT_CONFIG_PATH),
                                "-p", f"model_path:={work / 'model.npz'}", "-p", "qos_reliability:=reliable"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    node = rclpy.create_node("tao_ros_node_benchmark")
    types = MessageTypes.from_rclpy()
    received: dict[int, float] = {}
    node.create_subscription(Image, "/anomaly_node/anomaly_mask",
                             lambda msg: received.setdefault(header_stamp_ns(msg.header), time.monotonic()), 50)
    publisher = node.create_publisher(Image, "/image", 10)
    print(f"{len(frames)} frames of {args.width}x{args.height} per rate, weight-free default, CPU\n")
    print(f"{'rate Hz':>8}{'sent':>6}{'received':>10}{'output fps':>12}{'median ms':>11}{'p95 ms':>8}{'skipped':>9}")
    try:
        while publisher.get_subscription_count() == 0:
            rclpy.spin_once(node, timeout_sec=0.1)
        for run, rate in enumerate(args.rate):
            received.clear()
            sent: dict[int, float] = {}
            messages = [numpy_to_image(types, make_header(types, (run * 100_000 + t + 1) * 10**9, "cam"), image, "bgr8")
                        for t, image in enumerate(frames)]  # built beforehand: a camera driver's cost is not ours
            begin = time.monotonic()
            for t, msg in enumerate(messages):
                stamp = header_stamp_ns(msg.header)
                due = begin + t / rate
                while time.monotonic() < due:
                    rclpy.spin_once(node, timeout_sec=max(0.0, due - time.monotonic()))
                sent[stamp] = time.monotonic()
                publisher.publish(msg)
            end = time.monotonic() + 3.0
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.05)
            latency = np.array([received[s] - sent[s] for s in received if s in sent]) * 1000
            span = max(received.values()) - min(received.values()) if len(received) > 1 else float("nan")
            print(f"{rate:>8.0f}{len(sent):>6}{len(latency):>10}{(len(latency) - 1) / span:>12.1f}"
                  f"{np.median(latency):>11.1f}{np.percentile(latency, 95):>8.1f}{len(sent) - len(latency):>9}")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
        node.destroy_node()
        rclpy.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
