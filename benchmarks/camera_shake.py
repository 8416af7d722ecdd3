"""Frame AUROC when the camera shakes, with and without the motion detector's stabilization.

    python benchmarks/camera_shake.py --data ../shared/data/ucsd-ped2-dev [--shakes 0 2 4]

The density models are fitted on the data's normal training clips as filmed (a calm day); each
test frame is then shifted by a random translation (normal, standard deviation SHAKE pixels per
axis, a fresh draw each frame, borders replicated), as a camera on a vibrating mount or a robot
would see it. Prints the frame AUROC per test clip and pooled for every shake, stabilization off
and on (motion.stabilize).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tao_ros.config import load_config
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
from tao_ros.eval.groundtruth import read_ground_truth
from tao_ros.eval.metrics import roc_auc
from tao_ros.io.sources import open_clips


def shaken(image: np.ndarray, shake: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` shifted by a random translation of ``shake`` pixels standard deviation per axis."""
    import cv2

    if not shake:
        return image
    dx, dy = rng.normal(0, shake, 2)
    return cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), image.shape[1::-1],
                          borderMode=cv2.BORDER_REPLICATE)


def frame_scores(pipeline: AnomalyPipeline, data: Path, shake: float) -> dict[str, np.ndarray]:
    """Clip -> [T] highest object score of each (shaken) test frame; the same shakes for every run."""
    scores = {}
    for clip in open_clips(data / "testing" / "frames"):
        rng = np.random.default_rng(7)
        pipeline.reset()
        best = []
        for frame in clip.frames():
            result = pipeline.process(StreamFrame(shaken(frame.image, shake, rng)))
            best.append(result.scores.max() if len(result.scores) else -np.inf)
        scores[clip.name] = np.array(best)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="UCSD-style folder (training/, testing/)")
    parser.add_argument("--shakes", type=float, nargs="+", default=[0.0, 2.0, 4.0],
                        help="standard deviations of the per-frame shift, pixels")
    args = parser.parse_args()

    labels = {}
    for truth in read_ground_truth(args.data, "ped2"):
        labels[truth.name] = np.zeros(truth.num_frames, dtype=bool)
        for region in truth.regions:
            labels[truth.name][region.frame] = True
    clips = sorted(labels)
    training = [(c.name, c.frames) for c in open_clips(args.data / "training" / "frames")]

    rows = []
    for stabilize in (False, True):
        pipeline = AnomalyPipeline(load_config(overrides={"segmenter": "none", "motion": {"stabilize": stabilize}}))
        pipeline.fit(training)
        for shake in args.shakes:
            scores = frame_scores(pipeline, args.data, shake)
            finite = {c: np.where(np.isfinite(s), s, -1e12) for c, s in scores.items()}
            per_clip = [roc_auc(labels[c], finite[c]) for c in clips]
            pooled = roc_auc(np.concatenate([labels[c] for c in clips]), np.concatenate([finite[c] for c in clips]))
            rows.append((shake, stabilize, per_clip, pooled))

    print("frame AUROC, test frames shaken (fitted on the training clips as filmed)\n")
    print(f"{'shake px':>9}{'stabilize':>11}" + "".join(f"{c:>8}" for c in clips) + f"{'pooled':>8}")
    for shake, stabilize, per_clip, pooled in sorted(rows, key=lambda r: (r[0], r[1])):
        print(f"{shake:>9.1f}{'on' if stabilize else 'off':>11}" + "".join(f"{v:>8.3f}" for v in per_clip)
              + f"{pooled:>8.3f}")


if __name__ == "__main__":
    main()
