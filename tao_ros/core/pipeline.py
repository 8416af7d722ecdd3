"""The object-level anomaly stage and its hand-off to the segmenter, free of ROS and file formats.

frame -> detector -> depth -> features -> per-feature density scores -> standardized sum
      -> smoothed along each track -> threshold -> IoU merging -> prompts -> segmenter masks
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from tao_ros.config import Config
from tao_ros.core.geometry import merge_overlapping
from tao_ros.core.instances import compose_instances
from tao_ros.core.modelfile import ModelContents, model_settings
from tao_ros.core.prompts import AnomalyHold, PromptScheduler, score_memory
from tao_ros.core.scoring import Standardizer, combine
from tao_ros.core.tracking import ObjectIds, TrackHistory
from tao_ros.errors import InputError, ModelFileError, PluginError
from tao_ros.plugins import GuardedPlugin, PluginRegistry
from tao_ros.types import UNTRACKED, Detections, FrameContext, FrameResult

log = logging.getLogger(__name__)

TOTAL_QUANTILES = np.concatenate([np.linspace(0.0, 0.99, 100), [0.995, 0.998, 0.999, 1.0]])
"""Quantile levels of the normal objects' held-out summed scores kept in the model file."""


@dataclass
class StreamFrame:
    """One input frame: [H, W, 3] uint8 BGR (or [H, W] grey) image, optional aligned depth image, and
    optionally its 0-based index in the source (frames a source could not decode leave gaps: outputs
    keep the source's numbering). Without an index, frames are numbered as they come."""

    image: np.ndarray
    depth: np.ndarray | None = None
    index: int | None = None


def as_bgr(image: np.ndarray) -> np.ndarray:
    """[H, W], [H, W, 1], [H, W, 3] or [H, W, 4] uint8 -> [H, W, 3] uint8 BGR; InputError otherwise."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"frame of dtype {image.dtype}: expected uint8 (8-bit mono or colour)")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise InputError(f"frame of shape {image.shape}: expected [H, W] or [H, W, 1|3|4]")


@dataclass(frozen=True)
class Detected:
    """What the detector found in one frame, kept between fit's two passes: its detections and its
    foreground mask, bit-packed ([H, W] bool -> H * W / 8 bytes), or None where it made none."""

    detections: Detections
    packed: np.ndarray | None
    shape: tuple[int, int] | None

    @classmethod
    def of(cls, detections: Detections, foreground: np.ndarray | None) -> Detected:
        if foreground is None:
            return cls(detections, None, None)
        return cls(detections, np.packbits(foreground, axis=None), foreground.shape)

    def foreground(self) -> np.ndarray | None:
        if self.packed is None:
            return None
        return np.unpackbits(self.packed, count=self.shape[0] * self.shape[1]).reshape(self.shape).astype(bool)


def frame_maxima(scores: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """[N] object scores and [N] frame of each -> [F] highest score of each frame that holds an
    object (in frame order); empty for no objects."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return np.zeros(0)
    numbers, index = np.unique(frames, return_inverse=True)
    highest = np.full(len(numbers), -np.inf)
    np.maximum.at(highest, index, scores)
    return highest


def no_progress(iterator, **_):
    """The progress callback that shows nothing: the iterator itself."""
    return iterator


class AnomalyPipeline:
    """Stateful per-stream pipeline: ``fit`` on normal clips, then ``process`` frames one by one."""

    def __init__(self, config: Config, registry: PluginRegistry | None = None):
        self.config = config
        self.registry = registry or PluginRegistry.discover()
        self.registry.check_config(config.plugin_params)
        create = self._create
        self.detector = GuardedPlugin("detector", create("detector", config.detector))
        self.depth = GuardedPlugin("depth", create("depth", config.depth_source))
        self.features = {name: GuardedPlugin("feature", create("feature", name)) for name in config.features}
        self.scorers = {name: create("scorer", config.scorer) for name in config.features}
        self.standardizers: dict[str, Standardizer] = {}
        # features that described too few normal objects to model (pose where every person is smaller
        # than pose.min_height): they score nothing with this model
        self.unscored: set[str] = set()
        self.training_totals: np.ndarray | None = None
        self.training_frame_maxima: np.ndarray | None = None  # the same quantiles of normal frames' highest score
        self.score_memory: int | None = None  # frames a normal object's score remembers (score_memory)
        self.empty_boxes = 0  # boxes with no area the detector returned, dropped
        self.segmenter = None
        if config.segmenter != "none":
            self.segmenter = GuardedPlugin("segmenter", create("segmenter", config.segmenter))
        self.score_history = TrackHistory(config.score_window)
        self.prompts = PromptScheduler(config.prompt_interval)
        self.hold = AnomalyHold(self.hold_frames)
        self.object_ids = ObjectIds()
        self.last_seen: dict[int, tuple[float, str]] = {}  # object id -> its latest score and label, bounded
        self.timings: dict[str, float] = {}  # seconds spent per stage (and per feature) on the last frame
        self.frame_size: tuple[int, int] | None = None  # (height, width) the model was fitted at
        self.fitted = False
        self.reset()

    @property
    def plugins(self) -> list[GuardedPlugin]:
        """Every plugin of the pipeline, in the order frames pass them."""
        return [self.detector, self.depth, *self.features.values(), *([self.segmenter] if self.segmenter else [])]

    def _create(self, kind: str, name: str):
        """Instantiate a plugin with its configured parameters; plugins with a ``device`` parameter
        not set for them get the pipeline's ``device``."""
        params = self.config.params_for(name)
        if "device" in self.registry.info(kind, name).cls.params:
            params.setdefault("device", self.config.device)
        return self.registry.create(kind, name, params)

    # ------------------------------------------------------------------ stream state
    def reset(self) -> None:
        """Start a new stream (new clip, new resolution): forget background, tracks and history."""
        self.frame_index = 0
        self.previous_gray = None
        for plugin in self.plugins:
            if hasattr(plugin.plugin, "reset"):  # depth sources hold no stream state
                plugin.call("reset", None)
        self.score_history.reset()
        self.prompts.reset()
        self.hold.reset()
        self.object_ids.reset()
        self.last_seen.clear()

    def _context(self, frame: StreamFrame) -> FrameContext:
        import cv2

        image = as_bgr(frame.image)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.previous_gray is not None and self.previous_gray.shape != gray.shape:
            log.warning("frame size changed from %s to %s: restarting the stream state",
                        self.previous_gray.shape[::-1], gray.shape[::-1])
            self.reset()
        next_in_line = self.frame_index  # the index this frame has when none was skipped
        if frame.index is not None:
            self.frame_index = frame.index
        elapsed = 1 if self.previous_gray is None else max(1, self.frame_index - next_in_line + 1)
        context = FrameContext(self.frame_index, image, gray, self.previous_gray, frame.depth, elapsed_frames=elapsed)
        self.previous_gray = gray
        self.frame_index += 1
        return context

    def describe(self, frame: StreamFrame, detected: Detected | None = None
                 ) -> tuple[FrameContext, Detections, dict[str, np.ndarray]]:
        """Detect and describe the objects of the next frame -> (context, detections, name -> [N, D]).
        ``detected``: what the detector found in this frame on an earlier pass (fit's second pass
        describes the normal frames without running the detector again)."""
        start = time.perf_counter()
        context = self._context(frame)
        if detected is None:
            detections = self._detect(context)
        else:
            detections, context.foreground = detected.detections, detected.foreground()
        described = time.perf_counter()
        self.timings["detect"] = described - start
        detections = self.object_ids.assign(detections)
        n = len(detections)
        depth = self._checked(self.depth.call("estimate", None, context, detections), (n,), self.depth.name)
        features = {}
        for name, plugin in self.features.items():
            started = time.perf_counter()
            columns = len(plugin.plugin.columns)
            features[name] = self._checked(plugin.call("extract", None, context, detections, depth), (n, columns), name)
            self.timings[f"feature_{name}"] = time.perf_counter() - started
        self.timings["describe"] = time.perf_counter() - described
        return context, detections, features

    def _detect(self, context: FrameContext) -> Detections:
        detections = self.detector.call("detect", Detections.empty, context)
        if not isinstance(detections, Detections):
            log.error("detector %r returned %r instead of Detections: frame skipped", self.detector.name,
                      type(detections).__name__)
            detections = Detections.empty()
        xyxy = detections.xyxy
        empty = (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
        if empty.any():
            # a box with no area is no object in view (one carried past the border, a degenerate
            # prediction): never scored, published or written
            if not self.empty_boxes:
                log.warning("detector %r returned boxes with no area (x2 <= x1 or y2 <= y1): dropped; "
                            "AnomalyPipeline.empty_boxes counts them", self.detector.name)
            self.empty_boxes += int(empty.sum())
            detections = detections[~empty]
        return detections

    @staticmethod
    def _checked(values, shape: tuple, plugin_name: str) -> np.ndarray:
        """Plugin output as float array of ``shape``; NaN (unknown) where the plugin failed or misbehaved."""
        if values is not None:
            values = np.asarray(values, dtype=np.float64)
            if values.shape == shape:
                return values
            log.error("plugin %r returned shape %s, expected %s: values treated as unknown", plugin_name,
                      values.shape, shape)
        return np.full(shape, np.nan)

    # ------------------------------------------------------------------ scoring
    def process(self, frame: StreamFrame) -> FrameResult:
        """Score the objects of the next frame of the stream, merge the anomalous ones, prompt, segment."""
        if not self.fitted:
            raise ModelFileError("no fitted model: load one (model_path / --model) or run 'tao-ros fit' first")
        frame = StreamFrame(as_bgr(frame.image), frame.depth, frame.index)
        if self.frame_size is not None and frame.image.shape[:2] != self.frame_size:
            (height, width), (fit_height, fit_width) = frame.image.shape[:2], self.frame_size
            # speeds, sizes and the ground plane are in pixels: at another size every object looks odd
            raise InputError(f"frame is {width}x{height} but the model was fitted on {fit_width}x{fit_height} "
                             f"frames: refit on this camera's frames ('tao-ros fit', ~/calibrate) or resize the "
                             f"frames to {fit_width}x{fit_height} before the node")
        context, detections, features = self.describe(frame)
        scoring = time.perf_counter()
        feature_scores, total = self.score_features(features, len(detections))
        scores = self.score_history.smooth(detections.ids, total[:, None])[:, 0]
        scores, anomalous = self.hold.update(context.frame_index, detections.ids, scores, scores > self.threshold)
        for object_id, score, label in zip(detections.ids.tolist(), scores.tolist(), detections.labels.tolist()):
            self.last_seen.pop(object_id, None)
            self.last_seen[object_id] = score, label  # most recently seen last, so the oldest go first
        while len(self.last_seen) > 4096:
            self.last_seen.pop(next(iter(self.last_seen)))
        merged, merged_scores = self._merge(detections[anomalous], scores[anomalous])
        prompts = self.prompts.update(context.frame_index, merged, merged_scores)
        result = FrameResult(context.frame_index, detections, scores, feature_scores, anomalous, merged,
                             merged_scores, prompts, foreground=context.foreground)
        segmenting = time.perf_counter()
        self.timings["score"] = segmenting - scoring
        if self.segmenter is not None:
            logits = self.segmenter.call("update", dict, context, prompts, merged)
            if not isinstance(logits, dict):
                log.error("segmenter %r returned %r instead of a dict: no masks this frame", self.segmenter.name,
                          type(logits).__name__)
                logits = {}
            result.instance_mask, result.instance_ids, result.instance_regions = compose_instances(
                context.gray.shape, logits)
            # an object the segmenter still follows while the detector lost it keeps its last score
            # and label
            last = [self.last_seen.get(o, (np.nan, "object")) for o in result.instance_ids.tolist()]
            result.instance_scores = np.array([score for score, _ in last])
            result.instance_labels = [label for _, label in last]
        self.timings["segment"] = time.perf_counter() - segmenting
        return result

    def score_features(self, features: dict[str, np.ndarray], n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Feature name -> [N, D] vectors of N objects -> (name -> [N] standardized score, [N] summed score).
        An object a feature cannot describe (NaN) gets NaN for it and that feature's typical value in the sum."""
        feature_scores = {}
        for name in self.features:
            values = features[name]
            scores = np.full(n, np.nan)
            known = np.all(np.isfinite(values), axis=1)
            if known.any() and name not in self.unscored:
                scores[known] = self.standardizers[name](self.scorers[name].score(values[known]),
                                                         self.config.standardization)
            feature_scores[name] = scores
        return feature_scores, combine(feature_scores, n, self.typical_scores, self.config.combination)

    @property
    def typical_scores(self) -> dict[str, float]:
        """Feature name -> the standardized score of a typical normal object, which an object the
        feature cannot describe gets in the combination."""
        return {name: standardizer.typical(self.config.standardization)
                for name, standardizer in self.standardizers.items() if name in self.features}

    def normal_share(self, scores: np.ndarray) -> np.ndarray:
        """[N] summed scores -> [N] in [0, 1]: the share of the normal training objects whose held-out
        summed score is lower (0.99: more anomalous than 99% of normal objects); monotone in the
        score, comparable across models. 0 for unknown (NaN) scores."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.training_totals is None:
            raise ModelFileError("no fitted model: the share of normal objects needs one")
        return np.nan_to_num(np.interp(scores, self.training_totals, TOTAL_QUANTILES), nan=0.0)

    @property
    def threshold(self) -> float:
        """The score above which an object is anomalous: ``threshold``, or with ``threshold_quantile``
        set, that quantile of the normal frames' highest held-out object score, so that about
        1 - quantile of normal frames carry a false box whatever the number of objects per frame
        (a model fitted without frames, by an older tao_ros: that quantile of the normal objects')."""
        quantile = self.config.threshold_quantile
        if quantile <= 0 or self.training_totals is None:
            return self.config.threshold
        normal = self.training_totals if self.training_frame_maxima is None else self.training_frame_maxima
        return float(np.interp(quantile, TOTAL_QUANTILES, normal))

    @property
    def hold_frames(self) -> int:
        """Frames an object stays anomalous along its track after its last anomalous frame
        (``AnomalyHold``): ``hold_frames``, or with it -1, the fitted model's ``score_memory`` (0 for a
        model without one, fitted by an older tao_ros)."""
        if self.config.hold_frames >= 0:
            return self.config.hold_frames
        return self.score_memory or 0

    def _merge(self, boxes: Detections, scores: np.ndarray) -> tuple[Detections, np.ndarray]:
        """Merge overlapping anomalous boxes; a merged box keeps the id and label of its top-scoring member."""
        merged_xyxy, group = merge_overlapping(boxes.xyxy, self.config.merge_iou)
        best = np.array([np.flatnonzero(group == g)[np.argmax(scores[group == g])] for g in range(len(merged_xyxy))],
                        dtype=np.int64)
        picked = boxes[best]
        return Detections(merged_xyxy, picked.confidence, picked.labels, picked.ids), scores[best]

    # ------------------------------------------------------------------ fitting
    def fit(self, clips: Iterable[tuple[str, Callable[[], Iterator[StreamFrame]]]], progress=None) -> dict:
        """Fit depth source, density models and standardizers on normal clips.

        ``clips``: (name, callable returning a fresh iterator of frames) per clip; each clip is read
        twice (once to detect objects and learn the ground plane, once to describe them), the
        detector runs on the first pass only. ``progress`` wraps an iterator (e.g. tqdm). Returns a
        summary (samples per feature).
        """
        clips = list(clips)
        errors_before = [plugin.errors for plugin in self.plugins]
        detected = self.fit_scene(clips, progress)
        described = self.describe_normal(clips, progress, detected)
        failed = [f"{plugin.kind} {plugin.name!r} failed {plugin.errors - before} times"
                  for plugin, before in zip(self.plugins, errors_before) if plugin.errors > before]
        if failed:
            # a stream goes on past a plugin's failure; a fit must not: its model would hold part
            # of the evidence configured, and nothing would say so later
            raise PluginError(f"fit stopped: {', '.join(failed)} on the normal frames (the errors are logged above); "
                              "fix the plugin's weights or parameters and fit again")
        return self.fit_density(*described)

    @property
    def learned_features(self) -> dict:
        """Name -> feature plugin of the features that learn from normal footage (``LearnedFeature``)."""
        return {name: plugin.plugin for name, plugin in self.features.items() if hasattr(plugin.plugin, "collect")}

    def fit_scene(self, clips: list[tuple[str, Callable[[], Iterator[StreamFrame]]]], progress=None
                  ) -> list[list[Detected]]:
        """First pass over the normal clips: detect every frame's objects; the depth source (e.g. the
        ground plane) and the learned features learn from them. Returns what was detected, per clip
        and frame, for ``describe_normal``."""
        progress = progress or no_progress
        detected, shape, shape_of = [], None, None
        learners = self.learned_features
        for name, frames in clips:
            self.reset()
            detected.append([])
            for frame in progress(frames(), desc=f"detecting {name}"):
                context = self._context(frame)
                if shape is not None and context.gray.shape != shape:
                    raise InputError(f"normal data of two frame sizes: {shape_of} has {shape[1]}x{shape[0]}, {name} "
                                     f"{context.gray.shape[1]}x{context.gray.shape[0]} frames; a model holds one camera "
                                     "at one size: fit one model per camera resolution (or resize the frames)")
                shape, shape_of = context.gray.shape, name
                detections = self._detect(context)
                detected[-1].append(Detected.of(detections, context.foreground))
                for learner in learners.values():
                    learner.collect(context, detections)
        if shape is None:
            raise InputError("no frames in the normal data: check the fit sources")
        self.frame_size = tuple(shape)
        # unguarded: a failed fit must stop 'fit'
        self.depth.plugin.fit([d.detections for clip in detected for d in clip], shape)
        for learner in learners.values():
            learner.fit()
        return detected

    def describe_normal(self, clips: list[tuple[str, Callable[[], Iterator[StreamFrame]]]], progress=None,
                        detected: list[list[Detected]] | None = None
                        ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Second pass: every normal object's feature vectors -> (name -> [N, D], NaN where unknown;
        [N] chunk of footage of each object for held-out training scores (``fit_chunk_frames`` frames,
        numbered in time order, a gap between clips); [N] the normal frame it is on,
        numbered across clips; [N] its track, numbered across clips, -1 untracked). ``detected``: ``fit_scene``'s result, so that the detector does not
        run again (None: it does)."""
        progress = progress or no_progress
        rows = {name: [np.zeros((0, len(p.plugin.columns)))] for name, p in self.features.items()}
        groups, frame_of, tracks = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        frames_before = 0  # normal frames of the clips before this one
        # Held-out training scores leave out a chunk of footage and the chunks next to it (h-block
        # cross-validation): an object seen in a chunk is still in view just before and after it,
        # and would match itself there, making normal look too tight; leaving out whole clips
        # instead makes it look too loose where there are few (two long videos: each half scored
        # against the other alone). Chunks are numbered in time order with a gap between clips, so
        # that numbers next to each other are footage next to each other.
        first_group = 0
        for clip_index, (name, frames) in enumerate(clips):
            self.reset()
            k = -1
            for k, frame in enumerate(progress(frames(), desc=f"features {name}")):
                if detected is not None and k >= len(detected[clip_index]):
                    raise InputError(f"clip {name} gave more frames on the second pass than on the first: "
                                     "fit needs sources that read the same frames twice")
                context, detections, features = self.describe(frame, None if detected is None
                                                              else detected[clip_index][k])
                groups.append(np.full(len(detections), first_group + k // self.config.fit_chunk_frames))
                frame_of.append(np.full(len(detections), frames_before + k))
                # object ids are below 2 ** 16 (ObjectIds): clip and id in one number
                tracks.append(np.where(detections.ids == UNTRACKED, -1, (clip_index << 16) + detections.ids))
                for feature, values in features.items():
                    rows[feature].append(values)
            frames_before += k + 1
            if k >= 0:
                first_group += k // self.config.fit_chunk_frames + 2
        self.reset()
        return ({name: np.concatenate(values) for name, values in rows.items()}, np.concatenate(groups),
                np.concatenate(frame_of), np.concatenate(tracks))

    def fit_density(self, rows: dict[str, np.ndarray], groups: np.ndarray, frames: np.ndarray | None = None,
                    tracks: np.ndarray | None = None) -> dict:
        """Fit each configured feature's density model and standardizer on normal objects' vectors
        (name -> [N, D], NaN rows unknown; [N] groups; [N] normal frame of each object, for the
        threshold as a share of normal frames, see ``threshold``; [N] track of each object, -1
        untracked, for how long an object's score remembers, see ``hold_frames``) -> summary (objects
        per feature)."""
        keep = np.arange(len(groups))
        if len(groups) > self.config.max_training_samples:
            keep = np.linspace(0, len(groups) - 1, self.config.max_training_samples).astype(int)
        summary, standardized = {}, {}
        self.unscored = set()
        for feature in self.features:
            values = rows[feature][keep]
            known = np.all(np.isfinite(values), axis=1)
            summary[feature] = int(known.sum())
            try:
                training_scores = self.scorers[feature].fit(values[known], groups[keep][known])
                self.standardizers[feature] = Standardizer.fit(training_scores)
            except InputError as exc:
                # one feature that cannot describe this camera's normal objects must not make the
                # others unusable: it scores nothing, and fit says so
                log.warning("feature %r described %d of %d normal objects, too few to model (%s): it scores "
                            "nothing with this model; check its parameters or fit on other footage",
                            feature, summary[feature], len(keep), exc)
                self.unscored.add(feature)
                continue
            standardized[feature] = np.full(len(keep), np.nan)
            standardized[feature][known] = self.standardizers[feature](training_scores, self.config.standardization)
        if self.features and self.unscored == set(self.features):
            raise InputError(f"no feature could be modelled from the normal data ({summary} objects described per "
                             "feature): fit on more normal footage or check the features' parameters")
        # quantiles of the normal objects' held-out summed scores, for thresholds set as a false-alarm rate
        totals = combine(standardized, len(keep), self.typical_scores, self.config.combination)
        self.training_totals = np.quantile(totals, TOTAL_QUANTILES)
        self.training_frame_maxima = None
        if frames is not None:
            self.training_frame_maxima = np.quantile(frame_maxima(totals, np.asarray(frames)[keep]), TOTAL_QUANTILES)
        self.score_memory = None
        if frames is not None and tracks is not None:
            self.score_memory = score_memory(totals, np.asarray(tracks)[keep], np.asarray(frames)[keep])
        self.hold.frames = self.hold_frames
        self.fitted = True
        self.reset()
        return summary

    # ------------------------------------------------------------------ model files
    def _layout(self) -> dict[str, list[str]]:
        return {name: list(plugin.plugin.columns) for name, plugin in self.features.items()}

    def save(self, path) -> None:
        """Write the fitted state (depth source, learned features, density models, standardizers,
        normal score quantiles) with its settings, layout and frame size to ``path`` (see
        ``core.modelfile``)."""
        arrays = {f"depth/{k}": v for k, v in self.depth.plugin.state().items()}
        for name, learner in self.learned_features.items():
            arrays.update({f"feature/{name}/{k}": v for k, v in learner.state().items()})
        for name in set(self.features) - self.unscored:
            arrays.update({f"scorer/{name}/{k}": v for k, v in self.scorers[name].state().items()})
            arrays[f"standardizer/{name}"] = self.standardizers[name].stats
        arrays["training_totals"] = self.training_totals
        if self.training_frame_maxima is not None:
            arrays["training_frame_maxima"] = self.training_frame_maxima
        if self.score_memory is not None:
            arrays["score_memory"] = np.array([self.score_memory], np.int64)
        ModelContents(arrays, self._layout(), model_settings(self.config, self.registry), self.frame_size,
                      sorted(self.unscored)).write(path)

    def load(self, path) -> None:
        """Load a model file; ModelFileError saying what differs if it does not fit this configuration."""
        model = ModelContents.read(path)
        model.check_fits(path, model_settings(self.config, self.registry), self._layout())
        try:
            self.depth.plugin.load_state(model.section("depth/"))
            for name, learner in self.learned_features.items():
                learner.load_state(model.section(f"feature/{name}/"))
            self.unscored = set(model.unscored)
            for name in set(self.features) - self.unscored:
                self.scorers[name].load_state(model.section(f"scorer/{name}/"))
                self.standardizers[name] = Standardizer(model.arrays[f"standardizer/{name}"])
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise ModelFileError(f"{path}: its arrays do not fit the configured plugins ({type(exc).__name__}: "
                                 f"{exc}); refit with 'tao-ros fit'") from None
        self.training_totals = model.arrays.get("training_totals")
        self.training_frame_maxima = model.arrays.get("training_frame_maxima")
        memory = model.arrays.get("score_memory")
        self.score_memory = None if memory is None else int(memory[0])
        self.hold.frames = self.hold_frames
        self.frame_size = model.frame_size
        self.fitted = True
