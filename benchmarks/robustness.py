"""Frame AUROC of the default pipeline on footage unlike the development clips: a shaking camera and
a camera of higher resolution.

    python benchmarks/robustness.py --data ../shared/data/ucsd-ped2-dev [--shakes 0 2 4] [--scales 1.78]

Shake: the density models are fitted on the data's normal training clips as filmed (a calm day);
each test frame is then shifted by a random translation (normal, standard deviation SHAKE pixels
per axis, a fresh draw each frame, borders replicated), as a camera on a vibrating mount or a robot
would see it; stabilization (motion.stabilize) off and on.

Resolution: training and test frames are scaled up by SCALE (the same scene seen by a camera with
more pixels), fitted and scored as such; the weight-free plugins work at 240 rows
(tao_ros/builtin/resolution.py), so the figures should stay those of scale 1.

Prints the frame AUROC per test clip and pooled for each case.
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


def altered(image: np.ndarray, shake: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` scaled by ``scale``, then shifted by a random translation of ``shake`` pixels
    standard deviation per axis."""
    import cv2

    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    if shake:
        dx, dy = rng.normal(0, shake, 2)
        image = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), image.shape[1::-1],
                               borderMode=cv2.BORDER_REPLICATE)
    return image


def frames_of(clip, shake: float = 0.0, scale: float = 1.0):
    """The clip's frames as ``altered`` gives them; the same shakes for every run."""
    rng = np.random.default_rng(7)
    return (StreamFrame(altered(frame.image, shake, scale, rng)) for frame in clip.frames())


def frame_scores(pipeline: AnomalyPipeline, data: Path, shake: float, scale: float) -> dict[str, np.ndarray]:
    """Clip -> [T] highest object score of each altered test frame."""
    scores = {}
    for clip in open_clips(data / "testing" / "frames"):
        pipeline.reset()
        best = [r.scores.max() if len(r.scores) else -np.inf
                for r in map(pipeline.process, frames_of(clip, shake, scale))]
        scores[clip.name] = np.array(best)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="UCSD-style folder (training/, testing/)")
    parser.add_argument("--shakes", type=float, nargs="+", default=[0.0, 2.0, 4.0],
                        help="standard deviations of the per-frame shift, pixels")
    parser.add_argument("--scales", type=float, nargs="*", default=[16 / 9],
                        help="factors the frames are scaled up by (training and test)")
    args = parser.parse_args()

    labels = {}
    for truth in read_ground_truth(args.data, "ped2"):
        labels[truth.name] = np.zeros(truth.num_frames, dtype=bool)
        for region in truth.regions:
            labels[truth.name][region.frame] = True
    clips = sorted(labels)

    def auroc(scores: dict[str, np.ndarray]) -> tuple[list[float], float]:
        finite = {c: np.where(np.isfinite(s), s, -1e12) for c, s in scores.items()}
        return ([roc_auc(labels[c], finite[c]) for c in clips],
                roc_auc(np.concatenate([labels[c] for c in clips]), np.concatenate([finite[c] for c in clips])))

    def fitted(scale: float = 1.0, **overrides) -> AnomalyPipeline:
        pipeline = AnomalyPipeline(load_config(overrides={"segmenter": "none", **overrides}))
        pipeline.fit([(c.name, lambda c=c: frames_of(c, scale=scale))
                      for c in open_clips(args.data / "training" / "frames")])
        return pipeline

    rows = []
    for stabilize in (False, True):
        pipeline = fitted(motion={"stabilize": stabilize})
        for shake in args.shakes:
            rows.append((f"shake {shake:.1f} px", f"stabilize {'on' if stabilize else 'off'}",
                         *auroc(frame_scores(pipeline, args.data, shake, 1.0))))
    for scale in args.scales:
        rows.append((f"scale {scale:.2f}", "default", *auroc(frame_scores(fitted(scale), args.data, 0.0, scale))))

    print("frame AUROC per test clip and pooled\n")
    print(f"{'case':<16}{'setting':<16}" + "".join(f"{c:>8}" for c in clips) + f"{'pooled':>8}")
    for case, setting, per_clip, pooled in rows:
        print(f"{case:<16}{setting:<16}" + "".join(f"{v:>8.3f}" for v in per_clip) + f"{pooled:>8.3f}")


if __name__ == "__main__":
    main()
