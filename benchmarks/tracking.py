"""Identity switches of the motion detector's tracks on synthetic scenes with exact ground truth.

    python benchmarks/tracking.py [--scenes 3] [--frames 300]

Renders seeded synthetic test scenes (walkers crossing each other, fast movers, carts), runs the
motion detector frame by frame, and compares its boxes and ids with every ground-truth object's
visible box: object-frames matched (IoU >= 0.5), identity switches (CLEAR-MOT), switches per 100
matched object-frames. Two trackers on the same blobs, the detector's own (``motion``'s
``BoxTracker``) and ultralytics' ByteTrack fed the same boxes, each with and without splitting
blobs that merged tracked objects (``motion.split_merged``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tao_ros.eval.metrics import count_id_switches
from tao_ros.eval.synth import Scene
from tao_ros.plugins import PluginRegistry
from tao_ros.types import FrameContext


class ByteTrackAdapter:
    """ultralytics' BYTETracker behind the ``BoxTracker`` interface (boxes in, ids out; -1 = no track).
    Blobs have no confidence: each gets 1.0."""

    def __init__(self):
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML

        import ultralytics

        config = Path(ultralytics.__file__).parent / "cfg" / "trackers" / "bytetrack.yaml"
        self.args = SimpleNamespace(**YAML.load(config))
        self.tracker_class = BYTETracker
        self.reset()

    def reset(self) -> None:
        self.tracker = self.tracker_class(self.args)

    def recent(self) -> np.ndarray:
        """[T, 4] current boxes of the confirmed tracks."""
        return np.array([track.xyxy for track in self.tracker.tracked_stracks], np.float64).reshape(-1, 4)

    def update(self, xyxy: np.ndarray) -> np.ndarray:
        ids = np.full(len(xyxy), -1, dtype=np.int64)
        tracked = self.tracker.update(_Boxes(np.asarray(xyxy, np.float32)))
        for row in tracked:  # x1, y1, x2, y2, track id, score, class, detection index
            ids[int(row[7])] = int(row[4])
        return ids


class _Boxes:
    """The slice of ultralytics' Boxes that BYTETracker reads."""

    def __init__(self, xyxy: np.ndarray):
        self.xyxy = xyxy.reshape(-1, 4)
        self.conf = np.ones(len(self.xyxy), np.float32)
        self.cls = np.zeros(len(self.xyxy), np.float32)

    @property
    def xywh(self) -> np.ndarray:
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2
        return np.concatenate([xy, self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> _Boxes:
        return _Boxes(self.xyxy[index])


def truth_boxes(instances: np.ndarray, min_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """[H, W] uint16 instance ids -> ([G] ids, [G, 4] visible boxes) of objects with enough pixels."""
    ids, boxes = [], []
    for object_id in np.unique(instances[instances > 0]):
        ys, xs = np.nonzero(instances == object_id)
        if len(ys) >= min_pixels:
            ids.append(object_id)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.array(ids, np.int64), np.array(boxes, np.float64).reshape(-1, 4)


def run(tracker_name: str, split: bool, seed: int, frames: int):
    registry = PluginRegistry.discover()
    detector = registry.create("detector", "motion", {"split_merged": split})
    if tracker_name == "bytetrack":
        detector.tracker = ByteTrackAdapter()
    detector.reset()
    rows, previous = [], None
    for index, (image, _, instances, _) in enumerate(Scene(seed, frames, anomalies=True).render()):
        gray = image[..., 0]
        detections = detector.detect(FrameContext(index, image, gray, previous))
        previous = gray
        min_pixels = int(detector.p["min_area"] * gray.size)
        truth_ids, truth_xyxy = truth_boxes(instances, min_pixels)
        tracked = detections.ids >= 0
        rows.append((truth_ids, truth_xyxy, detections.ids[tracked], detections.xyxy[tracked]))
    return count_id_switches(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=3, help="seeded synthetic test scenes")
    parser.add_argument("--frames", type=int, default=300, help="frames per scene")
    args = parser.parse_args()
    print(f"{args.scenes} synthetic test scenes x {args.frames} frames, 360x240, motion detector blobs\n")
    print(f"{'tracker':<12}{'split':>6}{'scene':>6}{'object-frames':>15}{'matched':>9}{'id switches':>13}"
          f"{'per 100':>9}")
    for tracker, split in (("own", False), ("own", True), ("bytetrack", False), ("bytetrack", True)):
        totals = np.zeros(3, np.int64)
        for seed in range(1, args.scenes + 1):
            counts = run(tracker, split, seed, args.frames)
            totals += (counts.truth, counts.matched, counts.id_switches)
            print(f"{tracker:<12}{split!s:>6}{seed:>6}{counts.truth:>15}{counts.recall:>9.3f}{counts.id_switches:>13}"
                  f"{100 * counts.id_switches / max(counts.matched, 1):>9.2f}")
        print(f"{tracker:<12}{split!s:>6}{'all':>6}{totals[0]:>15}{totals[1] / max(totals[0], 1):>9.3f}"
              f"{totals[2]:>13}{100 * totals[2] / max(totals[1], 1):>9.2f}")


if __name__ == "__main__":
    main()
