"""Frame AUROC of the default pipeline on footage unlike the development clips: a shaking camera, a
camera of higher resolution, and a node too busy to process every frame.

    python benchmarks/robustness.py --data ../shared/data/ucsd-ped2-dev [--shakes 0 2 4] [--scales 1.78]
                                    [--skips 2 3]

Shake: the density models are fitted on the data's normal training clips as filmed (a calm day);
each test frame is then shifted by a random translation (normal, standard deviation SHAKE pixels
per axis, a fresh draw each frame, borders replicated), as a camera on a vibrating mount or a robot
would see it; stabilization (motion.stabilize) off and on.

Resolution: training and test frames are scaled up by SCALE (the same scene seen by a camera with
more pixels), fitted and scored as such; the weight-free plugins work at 240 rows
(tao_ros/builtin/resolution.py), so the figures should stay those of scale 1.

Skipped frames: fitted on every frame, only every SKIP-th test frame is processed (a node's worker
busy with one frame while the next ones arrive), numbered as they came (the node numbers frames as
received) or, as a pipeline unaware of the gaps would, consecutively.

Prints the frame AUROC per test clip and pooled for each case, and the share of normal test frames
with an object above the model's threshold (false alarms at the operating point).
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


def frames_of(clip, shake: float = 0.0, scale: float = 1.0, skip: int = 1, numbered: bool = True):
    """Every ``skip``-th frame of the clip as ``altered`` gives it (the same shakes for every run),
    with its index in the clip or, ``numbered`` False, without (taken as consecutive)."""
    rng = np.random.default_rng(7)
    return (StreamFrame(altered(frame.image, shake, scale, rng), index=index if numbered else None)
            for index, frame in enumerate(clip.frames()) if index % skip == 0)


def frame_scores(pipeline: AnomalyPipeline, data: Path, shake: float = 0.0, scale: float = 1.0, skip: int = 1,
                 numbered: bool = True) -> dict[str, np.ndarray]:
    """Clip -> [T] highest object score of each test frame (-inf where none; frames not processed
    are left out)."""
    scores = {}
    for clip in open_clips(data / "testing" / "frames"):
        pipeline.reset()
        best = [r.scores.max() if len(r.scores) else -np.inf
                for r in map(pipeline.process, frames_of(clip, shake, scale, skip, numbered))]
        scores[clip.name] = np.array(best)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="UCSD-style folder (training/, testing/)")
    parser.add_argument("--shakes", type=float, nargs="+", default=[0.0, 2.0, 4.0],
                        help="standard deviations of the per-frame shift, pixels")
    parser.add_argument("--scales", type=float, nargs="*", default=[16 / 9],
                        help="factors the frames are scaled up by (training and test)")
    parser.add_argument("--skips", type=int, nargs="*", default=[2, 3],
                        help="process only every SKIP-th test frame")
    args = parser.parse_args()

    labels = {}
    for truth in read_ground_truth(args.data, "ped2"):
        labels[truth.name] = np.zeros(truth.num_frames, dtype=bool)
        for region in truth.regions:
            labels[truth.name][region.frame] = True
    clips = sorted(labels)

    def measured(pipeline: AnomalyPipeline, scores: dict[str, np.ndarray], skip: int = 1
                 ) -> tuple[list[float], float, float]:
        """(per-clip frame AUROC, pooled AUROC, share of normal frames above the threshold)."""
        finite = {c: np.where(np.isfinite(s), s, -1e12) for c, s in scores.items()}
        label = {c: labels[c][::skip] for c in clips}
        pooled_labels, pooled_scores = (np.concatenate([d[c] for c in clips]) for d in (label, finite))
        return ([roc_auc(label[c], finite[c]) for c in clips], roc_auc(pooled_labels, pooled_scores),
                float((pooled_scores[~pooled_labels] > pipeline.threshold).mean()))

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
                         *measured(pipeline, frame_scores(pipeline, args.data, shake=shake))))
    for skip in args.skips:  # the last pipeline is the default one
        for numbered in (False, True):
            rows.append((f"every {skip} frames", "numbered" if numbered else "consecutive",
                         *measured(pipeline, frame_scores(pipeline, args.data, skip=skip, numbered=numbered), skip)))
    for scale in args.scales:
        pipeline = fitted(scale)
        rows.append((f"scale {scale:.2f}", "default", *measured(pipeline, frame_scores(pipeline, args.data, scale=scale))))

    print("frame AUROC per test clip and pooled; share of normal frames above the threshold\n")
    print(f"{'case':<18}{'setting':<16}" + "".join(f"{c:>8}" for c in clips) + f"{'pooled':>8}{'alarms':>8}")
    for case, setting, per_clip, pooled, alarms in rows:
        print(f"{case:<18}{setting:<16}" + "".join(f"{v:>8.3f}" for v in per_clip) + f"{pooled:>8.3f}{alarms:>8.3f}")


if __name__ == "__main__":
    main()
