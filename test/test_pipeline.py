"""The object-level stage end to end on synthetic scenes with exact ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import scene_frames
from tao_ros.core.geometry import iou_matrix, mask_to_box
from tao_ros.core.pipeline import AnomalyPipeline, StreamFrame
from tao_ros.core.prompts import AnomalyHold, PromptScheduler, score_memory
from tao_ros.errors import InputError, ModelFileError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import UNTRACKED, Detections


def single_object_scores(pipeline, frames):
    """Track id of the scene -> scores of the detections that cover that one object alone."""
    pipeline.reset()
    scores: dict[int, list[float]] = {}
    for image, _, instances, _ in frames:
        result = pipeline.process(StreamFrame(image))
        truth_ids = [i for i in np.unique(instances) if i]
        truth_boxes = np.array([mask_to_box(instances == i) for i in truth_ids]).reshape(-1, 4)
        iou = iou_matrix(result.detections.xyxy, truth_boxes)
        for k in range(len(result.detections)):
            matched = np.flatnonzero(iou[k] > 0.1)
            if len(matched) == 1 and iou[k, matched[0]] > 0.5:  # a blob of one object only
                scores.setdefault(int(truth_ids[matched[0]]), []).append(float(result.scores[k]))
    return scores


def test_fast_and_large_objects_entering_mid_clip_score_above_the_walkers(fitted_pipeline):
    # few walkers, so that the anomalies are mostly seen on their own (not merged into a crowd's blob)
    scores = single_object_scores(fitted_pipeline, scene_frames(7, 80, anomalies=True, walkers=4))
    walkers = {k: np.median(v) for k, v in scores.items() if k < 100 and len(v) >= 5}
    assert len(walkers) >= 3
    assert {100, 101} <= set(scores), "both anomalies must be detected on their own"
    # the fast mover above every walker; the crate (odd only in size) above all walkers but one: with
    # all the evidence, a walker going a way few of the 27 normal walkers went (scene 7's walker 1)
    # scores on direction and place too
    assert np.median(scores[100]) > max(walkers.values()), (scores[100], walkers)
    below_crate = sum(np.median(scores[101]) > walker for walker in walkers.values())
    assert below_crate >= len(walkers) - 1, (scores[101], walkers)


def test_process_requires_a_fitted_model():
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline

    with pytest.raises(ModelFileError, match="tao-ros fit"):
        AnomalyPipeline(load_config()).process(StreamFrame(np.zeros((8, 8, 3), np.uint8)))


def test_results_are_consistent_and_anomalous_boxes_are_merged(fitted_pipeline):
    fitted_pipeline.reset()
    for image, *_ in scene_frames(7, 40, anomalies=True):
        result = fitted_pipeline.process(StreamFrame(image))
        n = len(result.detections)
        assert result.scores.shape == (n,) and result.anomalous.shape == (n,)
        np.testing.assert_array_equal(result.anomalous, result.scores >= fitted_pipeline.threshold)
        iou = iou_matrix(result.merged.xyxy, result.merged.xyxy)
        np.fill_diagonal(iou, 0)
        assert not (iou > 0.3).any()
        assert len(result.merged) <= result.anomalous.sum()


def test_a_model_knows_the_frame_size_it_was_fitted_at(fitted_pipeline, tmp_path):
    """Speeds, sizes and the ground plane are in pixels: a model fitted at 360x240 run on 720x480
    frames flagged most normal objects, silently. Now it refuses them, naming both sizes, also
    after a save and load."""
    import cv2

    from tao_ros.config import load_config

    frame = scene_frames(5, 1, anomalies=False)[0][0]
    big = cv2.resize(frame, (720, 480))
    assert fitted_pipeline.frame_size == frame.shape[:2]
    with pytest.raises(InputError, match=r"frame is 720x480 but the model was fitted on 360x240 frames: refit"):
        fitted_pipeline.process(StreamFrame(big))
    fitted_pipeline.save(tmp_path / "m.npz")
    loaded = AnomalyPipeline(load_config())
    loaded.load(tmp_path / "m.npz")
    assert loaded.frame_size == (240, 360)
    # how long a normal object's score remembers, learned in fit, travels in the model file and sets
    # the hold unless the configuration gives one
    assert fitted_pipeline.score_memory >= 1 and loaded.score_memory == fitted_pipeline.score_memory
    assert loaded.hold.frames == fitted_pipeline.score_memory
    fixed = AnomalyPipeline(load_config(overrides={"hold_frames": 0}))
    fixed.load(tmp_path / "m.npz")
    assert fixed.hold.frames == 0
    with pytest.raises(InputError, match="720x480"):
        loaded.process(StreamFrame(big))
    assert loaded.process(StreamFrame(frame)).frame_index == 0


def test_fit_on_clips_of_two_frame_sizes_says_so():
    import cv2

    from tao_ros.config import load_config

    small = [f[0] for f in scene_frames(0, 20, anomalies=False)]
    large = [cv2.resize(f, (720, 480)) for f in small]
    pipeline = AnomalyPipeline(load_config())
    with pytest.raises(InputError, match=r"two frame sizes: a has 360x240, b 720x480 frames.*one model per camera"):
        pipeline.fit([("a", lambda: (StreamFrame(f) for f in small)), ("b", lambda: (StreamFrame(f) for f in large))])


def test_frame_size_change_restarts_the_stream_of_a_model_without_frame_size(fitted_pipeline, caplog):
    """Models of older versions record no frame size: frames of any size are scored, and a new
    size starts a new stream."""
    fitted_pipeline.reset()
    size = fitted_pipeline.frame_size
    fitted_pipeline.frame_size = None
    try:
        fitted_pipeline.process(StreamFrame(np.full((60, 80, 3), 128, np.uint8)))
        result = fitted_pipeline.process(StreamFrame(np.full((40, 50), 128, np.uint8)))
    finally:
        fitted_pipeline.frame_size = size
    assert "frame size changed" in caplog.text
    assert result.frame_index == 0


def test_bad_frames_are_input_errors(fitted_pipeline):
    with pytest.raises(InputError, match="dtype float32"):
        fitted_pipeline.process(StreamFrame(np.zeros((8, 8, 3), np.float32)))
    with pytest.raises(InputError, match="shape"):
        fitted_pipeline.process(StreamFrame(np.zeros((8, 8, 2), np.uint8)))


def test_prompts_at_intervals_and_for_objects_turning_anomalous():
    scheduler = PromptScheduler(interval=5)
    boxes = Detections(np.array([[0, 0, 4, 4]]), labels=["object"], ids=[7])
    emitted = [len(scheduler.update(t, boxes, np.array([3.0]))) for t in range(1, 12)]
    # id 7 is new at frame 1, then prompted at frames 5 and 10 only
    assert emitted == [1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    two = Detections(np.array([[0, 0, 4, 4], [9, 9, 12, 12]]), ids=[7, 8])
    prompts = scheduler.update(12, two, np.array([3.0, 4.0]))
    assert [(p.object_id, p.frame_index, p.box, p.score) for p in prompts] == [(8, 12, (9.0, 9.0, 12.0, 12.0), 4.0)]
    # id 7 not anomalous at frame 13: anomalous again at 14, it is prompted at once
    assert [p.object_id for p in scheduler.update(13, two[np.array([False, True])], np.array([4.0]))] == []
    assert [p.object_id for p in scheduler.update(14, two, np.array([3.0, 4.0]))] == [7]


def test_anomaly_hold_keeps_an_object_anomalous_along_its_track_for_its_frames():
    hold = AnomalyHold(frames=3)
    ids = np.array([7, 8, UNTRACKED])
    scores, anomalous = hold.update(0, ids, np.array([9.0, 1.0, 9.0]), np.array([True, False, True]))
    np.testing.assert_array_equal(anomalous, [True, False, True])
    flags = []
    for frame in range(1, 6):  # id 7 drops below the threshold from frame 1 on
        scores, anomalous = hold.update(frame, ids, np.array([2.0, 1.0, 2.0]), np.zeros(3, bool))
        flags.append(anomalous.tolist())
        if anomalous[0]:
            assert scores[0] == 9.0  # held with the score of its last anomalous frame
    # held on frames 1-3 (within 3 frames of frame 0), not after; never an untracked object or id 8
    assert flags == [[True, False, False]] * 3 + [[False, False, False]] * 2
    assert hold.last == {}  # forgotten once past the hold: bounded
    off = AnomalyHold(frames=0)
    off.update(0, ids[:1], np.array([9.0]), np.array([True]))
    assert not off.update(1, ids[:1], np.array([2.0]), np.array([False]))[1][0]


def test_score_memory_is_the_e_folding_lag_along_tracks(rng):
    # AR(1) scores along 200 tracks of 300 frames: autocorrelation 0.9 ** lag, 1/e at lag 9.5; each
    # track also has an offset of its own, which is no dip and must not lengthen the memory
    tracks, frames, scores = [], [], []
    for track in range(200):
        value, offset = rng.normal(), 3 * rng.normal()
        for frame in range(300):
            value = 0.9 * value + np.sqrt(1 - 0.81) * rng.normal()
            tracks.append(track), frames.append(frame), scores.append(offset + value)
    memory = score_memory(np.array(scores), np.array(tracks), np.array(frames))
    assert memory in (9, 10, 11)
    # scores independent from frame to frame forget at once; untracked objects teach nothing
    assert score_memory(rng.normal(size=600), np.repeat(np.arange(20), 30), np.tile(np.arange(30), 20)) == 1
    assert score_memory(np.arange(5.0), np.full(5, -1), np.arange(5)) == 0
    assert score_memory(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)) == 0


def test_score_memory_is_not_set_by_one_track_whose_score_drifts_far(rng):
    # 40 tracks of 60 frames forgetting at once (independent scores), and one track of 130 frames whose
    # score climbs 20 times their spread over its life: its deviations, remembered for its whole life,
    # outweighed all the others' pooled in one unit (33 frames; on Avenue's normal footage 41-43 against 3-4)
    tracks, frames = np.repeat(np.arange(40), 60), np.tile(np.arange(60), 40)
    scores = rng.normal(size=40 * 60)
    drifting = np.linspace(0.0, 20.0, 130) + rng.normal(size=130)
    tracks, frames = np.concatenate([tracks, np.full(130, 40)]), np.concatenate([frames, np.arange(130)])
    assert score_memory(np.concatenate([scores, drifting]), tracks, frames) <= 2
    # a track whose score never changes shows no dip: left out, not divided by its zero spread
    assert score_memory(np.concatenate([scores, np.full(130, 7.0)]), tracks, frames) == 1


def test_detections_validate_their_columns():
    with pytest.raises(InputError, match=r"shape \[N, 4\]"):
        Detections(np.zeros((2, 3)))
    with pytest.raises(InputError, match="x1 <= x2"):
        Detections(np.array([[5, 0, 1, 1]]))
    with pytest.raises(InputError, match=r"ids must have shape \(1,\)"):
        Detections(np.array([[0, 0, 1, 1]]), ids=[1, 2])
    empty = Detections.empty()
    assert len(empty) == 0 and empty[np.zeros(0, bool)].xyxy.shape == (0, 4)


class DeviceDetector:
    """Records the device it was given."""

    name = "device_detector"
    params = {"device": Param("cpu", "device")}

    def __init__(self, device):
        self.device = device

    def detect(self, context):
        return Detections.empty()

    def reset(self):
        pass


class DevicePlugin:
    @hookimpl
    def tao_ros_add_detectors(self):
        return [DeviceDetector]


def test_pipeline_device_reaches_plugins_unless_set_for_them():
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline
    from tao_ros.plugins import PluginRegistry

    registry = PluginRegistry.discover(extra_plugins=(DevicePlugin(),))
    inherited = AnomalyPipeline(load_config(overrides={"device": "cuda:1", "detector": "device_detector"}), registry)
    assert inherited.detector.plugin.device == "cuda:1"
    own = AnomalyPipeline(load_config(overrides={"device": "cuda:1", "detector": "device_detector",
                                                 "device_detector": {"device": "cpu"}}), registry)
    assert own.detector.plugin.device == "cpu"


def test_threshold_quantile_is_that_quantile_of_normal_frames_highest_object_score(fitted_pipeline):
    from tao_ros.core.pipeline import TOTAL_QUANTILES, frame_maxima

    totals, maxima = fitted_pipeline.training_totals, fitted_pipeline.training_frame_maxima
    assert maxima.shape == totals.shape == TOTAL_QUANTILES.shape and np.all(np.diff(maxima) >= 0)
    # a frame's highest object scores at least as high as its objects: with several objects a frame,
    # the frames' quantile lies above the objects' (about 1% of frames, not of objects, get a box)
    at = TOTAL_QUANTILES.tolist().index(0.99)
    assert maxima[at] > totals[at]
    config = fitted_pipeline.config
    try:
        config.options["threshold_quantile"] = 0.99
        assert fitted_pipeline.threshold == pytest.approx(maxima[at])
        config.options["threshold_quantile"] = 0.0
        assert fitted_pipeline.threshold == config.threshold
        config.options["threshold_quantile"] = 0.99
        fitted_pipeline.training_frame_maxima = None  # a model file of an older tao_ros: the objects' quantile
        assert fitted_pipeline.threshold == pytest.approx(totals[at])
    finally:
        config.options["threshold_quantile"] = 0.99
        fitted_pipeline.training_frame_maxima = maxima
    np.testing.assert_array_equal(frame_maxima(np.array([1.0, 5.0, 2.0, 0.5]), np.array([3, 3, 7, 9])), [5.0, 2.0, 0.5])
    assert frame_maxima(np.zeros(0), np.zeros(0, np.int64)).shape == (0,)


def test_fit_in_steps_equals_fit_and_groups_are_chunks_in_time_order():
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline

    clips = [scene_frames(seed, 40, anomalies=False) for seed in range(2)]
    sources = [(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(clips)]
    whole = AnomalyPipeline(load_config(overrides={"fit_chunk_frames": 15}))
    whole.fit(sources)
    steps = AnomalyPipeline(load_config(overrides={"fit_chunk_frames": 15}))
    steps.fit_scene(sources)
    rows, groups, frames, tracks = steps.describe_normal(sources)
    # 40 frames a clip in chunks of 15: 0, 1, 2 and, after a gap that keeps the clips apart, 4, 5, 6
    assert set(np.unique(groups)) == {0, 1, 2, 4, 5, 6}
    assert all(len(values) == len(groups) for values in rows.values())
    # frames numbered across the clips: the second clip's follow the first's 40
    assert frames.min() >= 0 and frames.max() < 80 and np.all(frames[groups >= 4] >= 40)
    np.testing.assert_array_equal(groups, np.where(frames < 40, frames // 15, 4 + (frames - 40) // 15))
    # tracks numbered apart per clip: no track of the first clip goes on in the second
    assert not set(tracks[(frames < 40) & (tracks >= 0)]) & set(tracks[(frames >= 40) & (tracks >= 0)])
    steps.fit_density(rows, groups, frames, tracks)
    assert steps.score_memory == whole.score_memory and steps.score_memory >= 1
    # a clip that gives no frame (a folder emptied by hand) numbers nothing and shifts nothing
    with_empty = [sources[0], ("empty", lambda: iter([])), sources[1]]
    _, groups_again, frames_again, _ = steps.describe_normal(with_empty)
    np.testing.assert_array_equal(frames_again, frames)
    np.testing.assert_array_equal(groups_again, groups)
    # float32 optical flow may differ in its last bits between runs (OpenCV's threads); totals near
    # 0 (the excess rule) need an absolute tolerance too
    np.testing.assert_allclose(steps.training_totals, whole.training_totals, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(steps.training_frame_maxima, whole.training_frame_maxima, rtol=1e-5, atol=1e-5)
    probe = {name: values[:25] for name, values in rows.items()}
    np.testing.assert_allclose(steps.score_features(probe, 25)[1], whole.score_features(probe, 25)[1], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("feature, params, stored", [
    ("motion_ae", {"epochs": 2}, "weights/"),
    ("appearance", {"weights": "yolov8n.yaml", "image_size": 128, "components": 4}, "axes"),
])
def test_a_learned_feature_is_trained_in_fit_and_travels_in_the_model_file(tmp_path, feature, params, stored):
    from tao_ros.config import load_config
    from tao_ros.core.modelfile import load_model
    from tao_ros.core.pipeline import AnomalyPipeline

    torch = pytest.importorskip("torch")
    if feature == "appearance":
        pytest.importorskip("ultralytics")
    config = load_config(overrides={"features": ["speed", feature], feature: params})
    clips = [scene_frames(seed, 40, anomalies=False) for seed in range(2)]
    torch.manual_seed(0)  # appearance's random backbone: the same in both pipelines, as a weights file gives
    fitted = AnomalyPipeline(config)
    fitted.fit([(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(clips)])
    fitted.save(tmp_path / "model.npz")
    arrays, _ = load_model(tmp_path / "model.npz")
    assert any(k.startswith(f"feature/{feature}/{stored}") for k in arrays)
    torch.manual_seed(0)
    loaded = AnomalyPipeline(config)
    loaded.load(tmp_path / "model.npz")
    for pipeline in (fitted, loaded):
        pipeline.reset()
    for image, *_ in scene_frames(5, 20, anomalies=True):
        a, b = fitted.process(StreamFrame(image)), loaded.process(StreamFrame(image))
        np.testing.assert_allclose(a.feature_scores[feature], b.feature_scores[feature], rtol=1e-5)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-5)  # float32 flow of two fits


def test_a_model_loads_only_under_the_settings_it_was_fitted_with(tmp_path, caplog):
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline

    clips = [scene_frames(seed, 40, anomalies=False) for seed in range(2)]
    fitted = AnomalyPipeline(load_config())
    fitted.fit([(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(clips)])
    fitted.save(tmp_path / "model.npz")
    for overrides, differing in [({"knn": {"k": 9}}, "knn.k: model 5, configuration 9"),
                                 ({"speed": {"perspective": "depth"}}, "speed.perspective: model 'none'"),
                                 ({"depth_source": "depth_image"}, "depth_source: model 'ground_plane'"),
                                 ({"motion": {"min_area": 0.001}}, "motion.min_area: model 0.0006")]:
        with pytest.raises(ModelFileError, match="fitted with other settings: .*" + differing):
            AnomalyPipeline(load_config(overrides=overrides)).load(tmp_path / "model.npz")
    caplog.clear()
    post = AnomalyPipeline(load_config(overrides={"merge_iou": 0.5, "segmenter": "none", "device": "cuda"}))
    post.load(tmp_path / "model.npz")  # post-processing and device only: loads, warns
    assert post.fitted and "merge_iou: model 0.3, configuration 0.5" in caplog.text
    assert "segmenter: model 'foreground', configuration 'none'" in caplog.text
    assert "foreground.patience" not in caplog.text and "device" not in caplog.text  # named once, by its option


def test_a_feature_that_describes_no_normal_object_scores_nothing_and_the_model_says_so(tmp_path, caplog):
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline

    clips = [scene_frames(seed, 40, anomalies=False) for seed in range(2)]
    sources = [(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(clips)]
    # every walker is lower than pose.min_height: a camera whose people are too small to hold a pose
    with_pose = AnomalyPipeline(load_config(overrides={"features": ["speed", "pose"], "pose": {"min_height": 1000}}))
    summary = with_pose.fit(sources)
    assert summary["pose"] == 0 and with_pose.unscored == {"pose"}
    assert "feature 'pose' described 0 of" in caplog.text and "scores nothing" in caplog.text
    with_pose.save(tmp_path / "model.npz")
    loaded = AnomalyPipeline(load_config(overrides={"features": ["speed", "pose"], "pose": {"min_height": 1000}}))
    loaded.load(tmp_path / "model.npz")
    assert loaded.unscored == {"pose"}
    speed_only = AnomalyPipeline(load_config(overrides={"features": ["speed"]}))
    speed_only.fit(sources)
    assert loaded.threshold == pytest.approx(speed_only.threshold, rel=1e-5)
    for pipeline in (loaded, speed_only):
        pipeline.reset()
    for image, *_ in scene_frames(5, 20, anomalies=True):
        a, b = loaded.process(StreamFrame(image)), speed_only.process(StreamFrame(image))
        assert np.isnan(a.feature_scores["pose"]).all()
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-5)  # float32 flow of two fits
    with pytest.raises(InputError, match="no feature could be modelled"):
        AnomalyPipeline(load_config(overrides={"features": ["pose"], "pose": {"min_height": 1000}})).fit(sources)


@pytest.mark.parametrize("id_style", ["huge track ids", "no track ids"])
def test_one_id_per_object_in_detections_instance_mask_and_objects_csv(id_style):
    """A detector whose track ids do not fit 16 bits, or that gives none: every output still names an
    object by one id, the value of its pixels, stable along its track and unique in a frame."""
    from types import SimpleNamespace

    from tao_ros.builtin.motion import MotionDetector
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline
    from tao_ros.io.outputs import object_rows
    from tao_ros.plugins import PluginRegistry
    from tao_ros.ros.outputs import anomalous_objects

    class RelabelledDetector(MotionDetector):
        name = "relabelled"

        def detect(self, context):
            found = super().detect(context)
            self.own_ids = found.ids  # the motion tracker's ids, for the test to compare with
            ids = found.ids + 70_000 if id_style == "huge track ids" else np.full(len(found), UNTRACKED)
            return Detections(found.xyxy, ids=ids)

    registry = PluginRegistry.discover(extra_plugins=(SimpleNamespace(
        tao_ros_add_detectors=hookimpl(lambda: [RelabelledDetector])),))
    pipeline = AnomalyPipeline(load_config(overrides={"detector": "relabelled"}), registry)
    clips = [scene_frames(seed, 60, anomalies=False) for seed in range(2)]
    pipeline.fit([(f"clip{i}", lambda c=c: (StreamFrame(f[0]) for f in c)) for i, c in enumerate(clips)])
    own_to_public: dict[int, set] = {}
    segmented = 0
    for image, *_ in scene_frames(7, 60, anomalies=True):
        result = pipeline.process(StreamFrame(image))
        ids = result.detections.ids
        assert ((ids >= 1) & (ids <= 65535)).all() and len(set(ids.tolist())) == len(ids)
        boxes, published, _, _ = anomalous_objects(result)
        pixel_values = set(np.unique(result.instance_mask).tolist()) - {0}
        assert set(published.tolist()) == pixel_values  # Detection2D.id = the value of its pixels
        tracked = set(result.instance_ids.tolist())
        for object_id, _, _ in object_rows(result):
            assert object_id in set(ids.tolist()) | pixel_values
            assert (result.instance_mask == object_id).any() == (object_id in tracked)
        segmented += len(published)
        for own, public in zip(pipeline.detector.plugin.own_ids.tolist(), ids.tolist()):
            own_to_public.setdefault(own, set()).add(public)
    assert segmented > 0
    # one public id per track all along (with no track ids, the IoU tracker follows the same boxes
    # as the motion detector's own), and no public id for two tracks
    assert all(len(public) == 1 for public in own_to_public.values()), own_to_public
    assert len({next(iter(p)) for p in own_to_public.values()}) == len(own_to_public)


def test_a_stream_that_skips_frames_keeps_normal_objects_normal(fitted_pipeline):
    """A node too busy for every frame processes every third one: with the frames numbered as they
    came, normal walkers stay normal; taken as consecutive, every speed triples and walkers look odd
    (share above the normal objects' 99th percentile)."""
    from tao_ros.core.pipeline import TOTAL_QUANTILES

    frames = [image for image, *_ in scene_frames(11, 120, anomalies=False)]
    odd = fitted_pipeline.training_totals[TOTAL_QUANTILES.tolist().index(0.99)]

    def flagged(indices, numbered):
        fitted_pipeline.reset()
        results = [fitted_pipeline.process(StreamFrame(frames[i], index=i if numbered else None)) for i in indices]
        return sum(int((r.scores > odd).sum()) for r in results[10:]) / sum(len(r.detections) for r in results[10:])

    every_frame = flagged(range(120), numbered=True)
    numbered = flagged(range(0, 120, 3), numbered=True)
    consecutive = flagged(range(0, 120, 3), numbered=False)
    # above the normal objects' 99th percentile about 1 in 100 normal objects are expected
    assert numbered <= every_frame + 0.01 and consecutive > numbered + 0.1, (every_frame, numbered, consecutive)
