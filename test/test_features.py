"""Weight-free features on frames with known motion."""

from __future__ import annotations

import numpy as np
import pytest

from tao_ros.builtin.features import VelocityFeature
from tao_ros.errors import InputError
from tao_ros.plugins import PluginRegistry
from tao_ros.types import Detections, FrameContext


def textured_square_moving(dx: int, dy: int, rng) -> tuple[FrameContext, Detections]:
    """Two frames of a textured 40x40 square on a still, textured ground, moved by (dx, dy) pixels."""
    texture = np.kron(rng.integers(0, 255, (10, 10)), np.ones((4, 4))).astype(np.uint8)
    previous = np.kron(rng.integers(60, 200, (40, 50)), np.ones((4, 4))).astype(np.uint8)
    current = previous.copy()
    previous[60:100, 80:120] = texture
    current[60 + dy:100 + dy, 80 + dx:120 + dx] = texture
    foreground = np.zeros_like(current, dtype=bool)
    foreground[60 + dy:100 + dy, 80 + dx:120 + dx] = True
    context = FrameContext(1, np.dstack([current] * 3), current, previous, foreground=foreground)
    box = np.array([[80 + dx, 60 + dy, 120 + dx, 100 + dy]], np.float64)
    return context, Detections(box, ids=np.array([7]))


@pytest.mark.parametrize("dx, dy, direction_bin", [(3, 0, 4), (-3, 0, 0), (0, 3, 6), (0, -3, 2)])
def test_velocity_histogram_points_where_the_object_moves_and_adds_up_to_its_speed(dx, dy, direction_bin, rng):
    feature = PluginRegistry.discover().create("feature", "velocity", {})
    context, detections = textured_square_moving(dx, dy, rng)
    histogram = feature.extract(context, detections, np.ones(1))
    assert histogram.shape == (1, 8)
    assert np.argmax(histogram[0]) == direction_bin
    assert histogram[0].sum() == pytest.approx(3.0, rel=0.25)  # mean speed of the square's pixels
    assert histogram[0, direction_bin] > 0.7 * histogram[0].sum()


def test_velocity_is_unknown_without_a_previous_frame_and_handles_no_objects(rng):
    feature = VelocityFeature(**{name: p.default for name, p in VelocityFeature.params.items()})
    context, detections = textured_square_moving(3, 0, rng)
    context.previous_gray = None
    assert np.isnan(feature.extract(context, detections, np.ones(1))).all()
    assert feature.extract(context, Detections.empty(), np.zeros(0)).shape == (0, 8)


def fitted_motion_ae(rng, **params):
    """motion_ae trained on squares moving 2-3 pixels rightwards."""
    feature = PluginRegistry.discover().create("feature", "motion_ae", {"epochs": 30, **params})
    for _ in range(40):
        context, detections = textured_square_moving(int(rng.integers(2, 4)), 0, rng)
        feature.collect(context, Detections(np.repeat(detections.xyxy, 2, axis=0)))
    feature.fit()
    return feature


def test_motion_autoencoder_learns_normal_motion_and_flags_other_motion(rng):
    feature = fitted_motion_ae(rng)
    normal = [feature.extract(*textured_square_moving(3, 0, rng), np.ones(1))[0, 0] for _ in range(5)]
    feature.reset()
    other = [feature.extract(*textured_square_moving(0, -6, rng), np.ones(1))[0, 0] for _ in range(5)]
    assert np.isfinite(normal).all() and np.isfinite(other).all()
    assert min(other) > 3 * max(normal), (normal, other)


def test_motion_autoencoder_state_is_arrays_and_restores_the_same_errors(rng):
    feature = fitted_motion_ae(rng)
    state = feature.state()
    assert state and all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    restored = PluginRegistry.discover().create("feature", "motion_ae", {})
    restored.load_state(state)
    context, detections = textured_square_moving(0, 5, rng)
    np.testing.assert_allclose(restored.extract(context, detections, np.ones(1)),
                               feature.extract(context, detections, np.ones(1)), rtol=1e-5)
    with pytest.raises(InputError, match="code_size"):
        PluginRegistry.discover().create("feature", "motion_ae", {"code_size": 4}).load_state(state)


def test_motion_autoencoder_needs_normal_objects_and_a_fit():
    feature = PluginRegistry.discover().create("feature", "motion_ae", {})
    with pytest.raises(InputError, match="at least 64"):
        feature.fit()
    context = FrameContext(0, np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="tao-ros fit"):
        feature.extract(context, Detections.empty(), np.zeros(0))


def test_flow_is_relative_to_the_scene_when_the_camera_shakes(rng):
    from tao_ros.builtin.features import dense_flow

    ground = rng.integers(0, 255, (180, 240)).astype(np.uint8)
    ground = np.kron(ground[::4, ::4], np.ones((4, 4), np.uint8))[:180, :240]  # texture DIS can follow
    texture = np.kron(rng.integers(0, 255, (10, 10)), np.ones((4, 4))).astype(np.uint8)
    previous, current = ground.copy(), np.roll(ground, (2, 3), axis=(0, 1))  # the camera moved
    previous[60:100, 80:120] = texture
    current[62:102, 83 + 4:123 + 4] = texture  # the object moved with it and 4 pixels further right
    foreground = np.zeros(current.shape, bool)
    foreground[62:102, 87:127] = True
    context = FrameContext(1, np.dstack([current] * 3), current, previous, foreground=foreground)
    flow = dense_flow(context, "medium")
    object_flow = np.median(flow[70:95, 95:120].reshape(-1, 2), axis=0)
    background_flow = np.median(flow[130:170, 20:60].reshape(-1, 2), axis=0)
    np.testing.assert_allclose(object_flow, [4.0, 0.0], atol=0.5)
    np.testing.assert_allclose(background_flow, [0.0, 0.0], atol=0.5)


def test_flow_of_large_frames_comes_in_full_resolution_pixels(rng):
    from tao_ros.builtin.features import dense_flow

    context, _ = textured_square_moving(3, 0, rng)  # 160x200

    def tripled(a):
        return np.kron(a, np.ones((3, 3), a.dtype))

    large = FrameContext(1, np.dstack([tripled(context.gray)] * 3), tripled(context.gray),
                         tripled(context.previous_gray), foreground=tripled(context.foreground))
    flow = dense_flow(large, "medium")
    assert flow.shape == (480, 600, 2)
    interior = flow[70 * 3:90 * 3, 93 * 3:110 * 3].reshape(-1, 2)  # the square moved 3 * 3 px rightwards
    np.testing.assert_allclose(np.median(interior, axis=0), [9.0, 0.0], atol=0.6)


def test_motion_autoencoder_crops_boxes_reaching_past_the_image(rng):
    from tao_ros.builtin.learned import flow_crops

    flow = np.zeros((60, 80, 2), np.float32)
    flow[:, :10] = (4.0, 0.0)  # the left edge moves
    crops = flow_crops(flow, Detections(np.array([[-20.0, 0.0, 10.0, 30.0]])))
    np.testing.assert_allclose(crops[0, 0], 4.0 / 30, rtol=1e-5)  # inside the image only, in box heights


def test_motion_over_skipped_frames_is_measured_per_source_frame(rng):
    """A square moved 6 px while two frames in between were skipped (a busy node) moves 2 px per
    frame, as the same square seen on every frame: speeds fitted on every frame still hold."""
    feature = PluginRegistry.discover().create("feature", "velocity", {})
    context, detections = textured_square_moving(6, 0, rng)
    consecutive = feature.extract(context, detections, np.ones(1))[0].sum()
    feature.reset()
    context, detections = textured_square_moving(6, 0, rng)
    context.elapsed_frames = 3
    skipped = feature.extract(context, detections, np.ones(1))[0].sum()
    assert consecutive == pytest.approx(6.0, rel=0.25) and skipped == pytest.approx(consecutive / 3, rel=0.05)


def square_sequence(steps: list[int], rng):
    """Contexts and boxes of a textured square on a textured ground, moving steps[t] px right into frame t."""
    texture = np.kron(rng.integers(0, 255, (10, 10)), np.ones((4, 4))).astype(np.uint8)
    ground = np.kron(rng.integers(60, 200, (40, 60)), np.ones((4, 4))).astype(np.uint8)
    previous, x = None, 20
    for t, step in enumerate(steps):
        frame, x = ground.copy(), x + step
        frame[60:100, x:x + 40] = texture
        foreground = np.zeros_like(frame, dtype=bool)
        foreground[60:100, x:x + 40] = True
        yield FrameContext(t, np.dstack([frame] * 3), frame, previous, foreground=foreground), \
            np.array([[x, 60, x + 40, 100]], np.float64)
        previous = frame


@pytest.mark.parametrize("smoothing", ["advected", "track"])
def test_speed_keeps_its_history_through_an_id_change_only_when_advected(smoothing, rng):
    """A square slows from 3 to 1 px per frame as its track id changes (its blob merged with another's
    and came out under that id). Averaged along the flow its speed keeps its history (an exponential
    average over 6 frames: 3 - 2 * 2/7); averaged along the track it starts over from the new frame."""
    feature = PluginRegistry.discover().create("feature", "speed", {"smoothing": smoothing, "min_samples": 1})
    speeds = [feature.extract(context, Detections(box, ids=np.array([1 if t < 8 else 2])), np.ones(1))[0, 0]
              for t, (context, box) in enumerate(square_sequence([0] + [3] * 7 + [1], rng))]
    assert speeds[7] == pytest.approx(3.0, rel=0.25)
    expected = 3.0 - 2.0 * 2 / 7 if smoothing == "advected" else 1.0
    assert speeds[8] == pytest.approx(expected, rel=0.2)


def test_advected_speed_is_unknown_until_the_track_was_seen_min_samples_times(rng):
    feature = PluginRegistry.discover().create("feature", "speed", {"min_samples": 3})
    known = [np.isfinite(feature.extract(context, Detections(box, ids=np.array([4])), np.ones(1))[0, 0])
             for context, box in square_sequence([0, 3, 3, 3, 3], rng)]
    assert known == [False, False, False, True, True]  # the first frame has no flow; then three sightings


def test_pixels_shared_with_another_box_are_left_out_while_enough_remain():
    """A walker's box that takes in the front of a passing van: the van's pixels are not the walker's."""
    from tao_ros.builtin.features import object_pixels

    gray = np.zeros((40, 60), np.uint8)
    foreground = np.zeros((40, 60), bool)
    foreground[10:30, 10:40] = True
    context = FrameContext(0, np.dstack([gray] * 3), gray, foreground=foreground)
    walker, van = np.array([10.0, 10, 25, 30]), np.array([[20.0, 5, 60, 35]])
    _, _, alone = object_pixels(context, walker, min_pixels=12)
    _, _, shared_out = object_pixels(context, walker, min_pixels=12, others=van)
    assert alone.sum() == 15 * 20 and shared_out.sum() == 10 * 20 and not shared_out[:, 10:].any()
    _, _, kept = object_pixels(context, walker, min_pixels=250, others=van)  # too few would remain
    assert kept.sum() == 15 * 20


def test_only_boxes_reaching_into_an_object_take_pixels_from_it(rng):
    """Boxes beside, above or touching an object's edge take nothing; one over its corner takes its
    overlap, clipped to the object's box; the frame's objects' pixels are computed once per frame."""
    from tao_ros.builtin.features import object_pixels, objects_pixels

    gray = np.zeros((40, 60), np.uint8)
    context = FrameContext(0, np.dstack([gray] * 3), gray, foreground=np.ones((40, 60), bool))
    own = np.array([20.0, 10, 30, 20])
    apart = np.array([[0.0, 0, 20, 40], [30, 0, 60, 40], [20, 0, 30, 10], [20, 20, 30, 40]])  # touching edges
    corner = np.array([[25.0, 15, 50, 50]])
    _, _, untouched = object_pixels(context, own, min_pixels=1, others=apart)
    _, _, cut = object_pixels(context, own, min_pixels=1, others=np.vstack([apart, corner]))
    assert untouched.all() and untouched.shape == (10, 10)
    assert cut.sum() == 100 - 5 * 5 and not cut[5:, 5:].any()
    detections = Detections(np.vstack([own, corner]))
    first = objects_pixels(context, detections, 1)
    assert objects_pixels(context, detections, 1) is first and first[0][3].sum() == 75


def test_a_warm_up_longer_than_the_averaging_window_is_refused():
    from tao_ros.errors import ConfigError

    with pytest.raises(ConfigError, match=r"speed.min_samples \(7\) exceeds speed.window \(6\).*lower min_samples"):
        PluginRegistry.discover().create("feature", "speed", {"min_samples": 7})


@pytest.mark.parametrize("name", ["speed", "velocity", "depth"])
def test_boxes_on_or_past_the_image_border_are_described_from_the_pixels_the_image_holds(name):
    """A tracker carries a box onto the border (x1 == x2 == width) or past it: the feature gives a
    value of the right shape for it, never an IndexError that loses every object of the frame."""
    rng = np.random.default_rng(3)
    feature = PluginRegistry.discover().create("feature", name, {})
    frames = list(square_sequence([0, 3], rng))
    feature.extract(frames[0][0], Detections(frames[0][1], ids=np.array([4])), np.ones(1))
    context = frames[1][0]
    height, width = context.gray.shape
    boxes = np.array([[width, 5.0, width, 20], [width - 4, height - 4, width + 30, height + 30],
                      [-20.0, -20, -5, -5], [10.0, 10, 20, 20]])
    values = feature.extract(context, Detections(boxes, ids=np.arange(1, 5)), np.ones(4))
    assert values.shape == (4, len(feature.columns))
    if name != "depth":  # depth leaves objects cut by the border unknown by design
        assert np.isfinite(values).all()
