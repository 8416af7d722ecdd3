"""From what height, and how little covered by another person, a person holds a pose worth scoring:
derives ``pose.min_height`` and ``pose.max_covered`` from normal data.

    python benchmarks/pose_reliability.py [--scene avenue=../shared/data/cuhk-avenue-dev] [--weights ../shared/weights]

On each scene's normal training clips, the open-set detector boxes people and BlazePose measures
every one of them, whatever their height (``pose.min_height: 1``). Each normal pose is scored by
the kNN density model fitted on the scene's other training clips (held out, as ``fit`` standardizes).
Normal poses are normal: where their held-out distance is high, the landmarks are noise, and noise
outscores a real pose anomaly. Prints the held-out distance per height decile, and the height from
which people are no noisier than those taller than them: the lowest decile whose median distance is at
most the median of every taller person's. That is where ``pose.min_height`` belongs. Then, among the
people that tall, the held-out distance by the largest share of their box another person's box covers
(their crop holds two people): the share up to which each bin is no noisier than every less covered
person is where ``pose.max_covered`` belongs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tao_ros.builtin.pose import covered_by_people
from tao_ros.builtin.scorers import KnnScorer
from tao_ros.config import load_config
from tao_ros.core.pipeline import AnomalyPipeline
from tao_ros.io.sources import open_clips

SHARED = Path(__file__).resolve().parents[2] / "shared"
SCENES = {"avenue": SHARED / "data" / "cuhk-avenue-dev"}
COVERED_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # bin 0.0-0.1 holds the uncovered people too


def normal_poses(data: Path, weights: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every person of the normal clips with a pose -> ([N] box height, [N] largest share of the box
    another person's box covers, [N, 34] pose, [N] clip index)."""
    pipeline = AnomalyPipeline(load_config(overrides={
        "detector": "open_set", "features": ["pose"], "segmenter": "none",
        "open_set": {"weights": str(weights / "yolov8n_int8.tflite")},
        "pose": {"weights": str(weights / "pose_landmark_full.tflite"), "min_height": 1, "max_covered": 1.0,
                 "window": 1}}))
    labels = pipeline.features["pose"].plugin.p["labels"]
    heights, covered, poses, groups = [], [], [], []
    clips = open_clips(data / "training" / "frames")
    pipeline.fit_scene([(clip.name, clip.frames) for clip in clips])  # the ground plane the detector's boxes need
    for index, clip in enumerate(clips):
        pipeline.reset()
        for frame in clip.frames():
            _, detections, described = pipeline.describe(frame)
            known = np.all(np.isfinite(described["pose"]), axis=1)
            heights.append(detections.height[known])
            covered.append(covered_by_people(detections, labels)[known])
            poses.append(described["pose"][known])
            groups.append(np.full(int(known.sum()), index))
    return np.concatenate(heights), np.concatenate(covered), np.concatenate(poses), np.concatenate(groups)


def reliable_from(heights: np.ndarray, distances: np.ndarray, bins: int = 10) -> tuple[list[tuple], float]:
    """[N] heights and held-out distances -> (rows (low, high, count, median distance) per height
    quantile bin, the lowest bin's low edge whose median is at most the median of every taller person's;
    the tallest bin's low edge where none is)."""
    edges = np.quantile(heights, np.linspace(0, 1, bins + 1))
    rows, found = [], float(edges[-2])
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (heights >= low) & (heights < high)
        rows.append((low, high, int(inside.sum()), float(np.median(distances[inside]))))
    for low, high, _, median in rows[:-1]:
        if median <= np.median(distances[heights >= high]):
            found = float(low)
            break
    return rows, found


def reliable_below(covered: np.ndarray, distances: np.ndarray, edges: tuple[float, ...]) -> tuple[list[tuple], float]:
    """[N] covered shares and held-out distances of people tall enough -> (rows (low, high, count,
    median distance) per bin of ``edges``, the high edge of the last bin, counting up from the least
    covered, whose median is at most the median of every less covered person's)."""
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (covered >= low) & ((covered < high) if high < edges[-1] else (covered <= high))
        rows.append((low, high, int(inside.sum()), float(np.median(distances[inside])) if inside.any() else np.nan))
    found = float(edges[1])
    for low, high, count, median in rows[1:]:
        if count and median > np.median(distances[covered < low]):
            break
        found = float(high)
    return rows, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", default=None, metavar="NAME=PATH",
                        help="a scene with training/frames of normal clips; default: the second dev scene (Ped2's "
                             "people are all smaller than 100 px)")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights", help="folder of the pretrained models")
    args = parser.parse_args()
    scenes = dict(s.split("=", 1) for s in args.scene) if args.scene else {k: str(v) for k, v in SCENES.items()}
    for scene, path in scenes.items():
        heights, covered, poses, groups = normal_poses(Path(path), args.weights)
        distances = KnnScorer(k=5).fit(poses, groups)
        rows, height = reliable_from(heights, distances)
        print(f"\n{scene}: {len(heights)} normal people with a pose; held-out kNN distance (k=5) by box height\n")
        print(f"{'height (px)':<14}{'people':>8}{'median distance':>17}")
        for low, high, count, median in rows:
            print(f"{f'{low:.0f}-{high:.0f}':<14}{count:>8}{median:>17.2f}")
        print(f"\nno noisier than taller people from {height:.0f} px: pose.min_height for {scene}")

        # among the people tall enough, held out against each other as the feature will see them
        tall = heights >= height
        distances = KnnScorer(k=5).fit(poses[tall], groups[tall])
        rows, share = reliable_below(covered[tall], distances, COVERED_EDGES)
        print(f"\n{scene}: the {int(tall.sum())} people from {height:.0f} px; held-out kNN distance by the largest share "
              f"of their box another person's box covers\n")
        print(f"{'covered':<14}{'people':>8}{'median distance':>17}")
        for low, high, count, median in rows:
            print(f"{f'{low:.2f}-{high:.2f}':<14}{count:>8}{median:>17.2f}")
        print(f"\nno noisier than less covered people up to a share of {share:.2f}: pose.max_covered for {scene}")


if __name__ == "__main__":
    main()
