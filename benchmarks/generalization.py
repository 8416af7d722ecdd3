"""Leave-one-clip-out protocol: which free settings generalize to a test clip never looked at.

    python benchmarks/generalization.py --data ../shared/data/ucsd-ped2-dev [--jobs 2] [--cache DIR]

The density models are fitted on the normal training clips only. Every candidate setting (how the
speed is measured, which features are summed, the kNN's k, z-score, min-max or log z-score
standardization) scores every test clip once. Then, for each test clip in turn, the setting is
chosen on the *other* test clips and the frame AUROC of that choice is reported on the held-out
clip. Among settings whose AUROC on the choosing clips lies within one standard error of the best,
the simplest is chosen (fewest knobs: departures from the paper's z-scored speed + depth sum and
from the plain median speed and k=5): with four clips a difference
smaller than the spread between clips says nothing about footage not seen.

Prints: every candidate's frame AUROC per clip and pooled; per fold the chosen setting and its
held-out AUROC; each feature alone and combined for the setting most folds chose. The shipped
defaults (config/anomaly.yaml) are that setting.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tao_ros.config import load_config
from tao_ros.core.pipeline import AnomalyPipeline
from tao_ros.eval.groundtruth import read_ground_truth
from tao_ros.eval.metrics import roc_auc
from tao_ros.io.sources import open_clips

# Described once: features whose settings are not in question.
SHARED_FEATURES = ["velocity", "depth", "motion_ae"]

# How the scalar speed is measured: (name, knobs beyond the plain median, speed.* parameters).
SPEED_VARIANTS = [
    ("median", 0, {"percentile": 50.0, "part_size": 0.0, "min_samples": 1, "window": 5, "smoothing": "track"}),
    ("p90", 1, {"percentile": 90.0, "part_size": 0.0, "min_samples": 1, "window": 5, "smoothing": "track"}),
    ("p90-parts", 2, {"percentile": 90.0, "part_size": 0.05, "min_samples": 1, "window": 5, "smoothing": "track"}),
    ("p90-parts-warmup", 3, {"percentile": 90.0, "part_size": 0.05, "min_samples": 4, "window": 6,
                             "smoothing": "track"}),
    ("median-advected", 1, {"percentile": 50.0, "part_size": 0.0, "min_samples": 1, "window": 6,
                            "smoothing": "advected"}),
    ("p90-advected", 2, {"percentile": 90.0, "part_size": 0.0, "min_samples": 1, "window": 6,
                         "smoothing": "advected"}),
    ("p90-parts-advected", 3, {"percentile": 90.0, "part_size": 0.05, "min_samples": 1, "window": 6,
                               "smoothing": "advected"}),
    ("p90-parts-advected-warmup", 4, {"percentile": 90.0, "part_size": 0.05, "min_samples": 4, "window": 6,
                                      "smoothing": "advected"}),
    ("median-perspective", 1, {"percentile": 50.0, "part_size": 0.0, "min_samples": 1, "window": 5,
                               "perspective": "depth", "smoothing": "track"}),
    ("p90-parts-warmup-perspective", 4, {"percentile": 90.0, "part_size": 0.05, "min_samples": 4, "window": 6,
                                         "perspective": "depth", "smoothing": "track"}),
]
PAPER_FEATURES = ["speed", "depth"]
FEATURE_SETS = [["speed"], ["velocity"], ["motion_ae"], ["speed", "depth"], ["velocity", "depth"],
                ["speed", "motion_ae"], ["speed", "depth", "motion_ae"], ["speed", "velocity", "depth"]]
K_VALUES = [5, 10]
STANDARDIZATIONS = ["zscore", "minmax", "logz"]  # the paper's z-score first


@dataclass
class Described:
    """Feature vectors of one extraction: normal training objects and per test clip objects."""

    training: dict[str, np.ndarray]
    groups: np.ndarray
    test: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]  # clip -> ([N] frame of each object, vectors)

    def joined(self, other: Described) -> Described:
        """Both extractions' features of the same objects (the detector is deterministic)."""
        if len(self.groups) != len(other.groups):
            raise RuntimeError("extractions saw different objects: the detector is not deterministic")
        return Described({**self.training, **other.training}, self.groups,
                         {c: (frames, {**vectors, **other.test[c][1]}) for c, (frames, vectors) in self.test.items()})


def describe(data: Path, features: list[str], overrides: dict) -> Described:
    """Fit the scene (depth source, learned features) and describe every training and test object."""
    import cv2

    cv2.setNumThreads(1)
    pipeline = AnomalyPipeline(load_config(overrides={"features": features, "segmenter": "none", **overrides}))
    training = [(c.name, c.frames) for c in open_clips(data / "training" / "frames")]
    pipeline.fit_scene(training)
    rows, groups = pipeline.describe_normal(training)
    test = {}
    for clip in open_clips(data / "testing" / "frames"):
        pipeline.reset()
        frames, vectors = [], {name: [] for name in features}
        for frame in clip.frames():
            context, detections, described = pipeline.describe(frame)
            frames.append(np.full(len(detections), context.frame_index))
            for name in features:
                vectors[name].append(described[name])
        test[clip.name] = (np.concatenate(frames), {k: np.concatenate(v) for k, v in vectors.items()})
    return Described(rows, groups, test)


def cached_describe(data: Path, cache: Path | None, name: str, features: list[str], overrides: dict) -> Described:
    """``describe``, stored as arrays in ``cache/NAME.npz`` and read from there when present."""
    path = cache / f"{name}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as arrays:
            clips = sorted({k.split("/")[1] for k in arrays.files if k.startswith("test/")})
            return Described({f: arrays[f"training/{f}"] for f in features}, arrays["groups"],
                             {c: (arrays[f"test/{c}/frames"], {f: arrays[f"test/{c}/{f}"] for f in features})
                              for c in clips})
    described = describe(data, features, overrides)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"training/{f}": v for f, v in described.training.items()}
        arrays["groups"] = described.groups
        for clip, (frames, vectors) in described.test.items():
            arrays[f"test/{clip}/frames"] = frames
            arrays.update({f"test/{clip}/{f}": v for f, v in vectors.items()})
        np.savez_compressed(path, **arrays)
    return described


def frame_scores(described: Described, features: list[str], k: int, standardization: str,
                 lengths: dict[str, int]) -> dict[str, np.ndarray]:
    """Clip -> [T] highest object score of each frame (-inf where no object), with density models of
    ``features`` (kNN, ``k``) fitted on the training objects, standardized by ``standardization``."""
    pipeline = AnomalyPipeline(load_config(overrides={"features": features, "segmenter": "none", "knn": {"k": k},
                                                      "standardization": standardization}))
    pipeline.fit_density(described.training, described.groups)
    scores = {}
    for clip, (frames, vectors) in described.test.items():
        _, total = pipeline.score_features(vectors, len(frames))
        best = np.full(lengths[clip], -np.inf)
        np.maximum.at(best, frames.astype(int), total)
        scores[clip] = best
    return scores


def auroc(labels: dict[str, np.ndarray], scores: dict[str, np.ndarray], clips: list[str]) -> float:
    """Frame AUROC of ``clips`` pooled; frames without objects rank below every object."""
    label = np.concatenate([labels[c] for c in clips])
    score = np.concatenate([scores[c] for c in clips])
    finite = score[np.isfinite(score)]
    return roc_auc(label, np.where(np.isfinite(score), score, finite.min() - 1.0 if finite.size else 0.0))


@dataclass
class Candidate:
    speed: str
    features: list[str]
    k: int
    standardization: str
    knobs: int
    scores: dict[str, np.ndarray]

    @property
    def label(self) -> str:
        return f"{'+'.join(self.features)} speed={self.speed} k={self.k} {self.standardization}"


def choose(candidates: list[Candidate], labels, clips: list[str]) -> Candidate:
    """The simplest candidate within one standard error (spread of per-clip AUROCs / sqrt(clips)) of
    the best pooled AUROC on ``clips``."""
    pooled = np.array([auroc(labels, c.scores, clips) for c in candidates])
    best = candidates[int(np.argmax(pooled))]
    per_clip = [auroc(labels, best.scores, [clip]) for clip in clips]
    tolerance = np.std(per_clip) / np.sqrt(len(clips))
    near = [c for c, value in zip(candidates, pooled) if value >= pooled.max() - tolerance]
    return min(near, key=lambda c: (c.knobs, -auroc(labels, c.scores, clips)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="UCSD-style folder (training/, testing/)")
    parser.add_argument("--jobs", type=int, default=2, help="processes describing settings in parallel")
    parser.add_argument("--cache", type=Path, default=None, help="folder to keep described features in")
    args = parser.parse_args()

    truths = read_ground_truth(args.data, "ped2")
    labels = {}
    for truth in truths:
        labels[truth.name] = np.zeros(truth.num_frames, dtype=bool)
        for region in truth.regions:
            labels[truth.name][region.frame] = True
    clips = sorted(labels)
    lengths = {c: len(labels[c]) for c in clips}

    extractions = [("shared", SHARED_FEATURES, {})]
    extractions += [(f"speed-{name}", ["speed"], {"speed": params}) for name, _, params in SPEED_VARIANTS]
    # spawn: forked children of a process that has started OpenCV's or torch's threads can hang
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = dict(zip([e[0] for e in extractions],
                        pool.map(cached_describe, itertools.repeat(args.data), itertools.repeat(args.cache),
                                 *zip(*extractions))))
    described = {name: done[f"speed-{name}"].joined(done["shared"]) for name, _, _ in SPEED_VARIANTS}
    candidates = []
    for (speed, speed_knobs, _), features, k, standardization in itertools.product(
            SPEED_VARIANTS, FEATURE_SETS, K_VALUES, STANDARDIZATIONS):
        if "speed" not in features and speed != SPEED_VARIANTS[0][0]:
            continue  # the speed setting changes nothing without the speed feature
        # knobs: departures from the paper's design (speed and depth summed, z-scores) and the plain settings
        knobs = (speed_knobs if "speed" in features else 0) + len(set(features) ^ set(PAPER_FEATURES)) \
            + (k != K_VALUES[0]) + (standardization != STANDARDIZATIONS[0])
        candidates.append(Candidate(speed, features, k, standardization, knobs,
                                    frame_scores(described[speed], features, k, standardization, lengths)))

    print(f"frame AUROC per test clip; density models fitted on {len(described[SPEED_VARIANTS[0][0]].groups)} "
          "normal training objects\n")
    width = max(len(c.label) for c in candidates) + 2
    print(f"{'candidate':<{width}}{'knobs':>6}" + "".join(f"{c:>8}" for c in clips) + f"{'pooled':>8}")
    for candidate in candidates:
        print(f"{candidate.label:<{width}}{candidate.knobs:>6}"
              + "".join(f"{auroc(labels, candidate.scores, [c]):>8.3f}" for c in clips)
              + f"{auroc(labels, candidate.scores, clips):>8.3f}")

    print("\nleave-one-clip-out: chosen on the other clips, frame AUROC on the held-out clip\n")
    print(f"{'held out':<10}{'chosen':<{width}}{'on others':>10}{'held out':>10}")
    held_out, chosen = [], []
    for clip in clips:
        others = [c for c in clips if c != clip]
        pick = choose(candidates, labels, others)
        chosen.append(pick)
        held_out.append(auroc(labels, pick.scores, [clip]))
        print(f"{clip:<10}{pick.label:<{width}}{auroc(labels, pick.scores, others):>10.3f}{held_out[-1]:>10.3f}")
    print(f"{'mean':<10}{'':<{width}}{'':>10}{np.mean(held_out):>10.3f}")
    print(f"{'worst':<10}{'':<{width}}{'':>10}{np.min(held_out):>10.3f}")

    labels_chosen = [c.label for c in chosen]
    default = chosen[max(range(len(chosen)), key=lambda i: labels_chosen.count(labels_chosen[i]))]
    print(f"\nmost chosen: {default.label}; each feature alone and the chosen sum (its speed setting, k)\n")
    print(f"{'features':<28}" + "".join(f"{c:>8}" for c in clips) + f"{'pooled':>8}")
    for features in [[f] for f in ["speed", *SHARED_FEATURES]] + [default.features]:
        scores = frame_scores(described[default.speed], features, default.k, default.standardization, lengths)
        print(f"{'+'.join(features):<28}" + "".join(f"{auroc(labels, scores, [c]):>8.3f}" for c in clips)
              + f"{auroc(labels, scores, clips):>8.3f}")


if __name__ == "__main__":
    main()
