"""Where an object is and how it moves there: position, heading, relative speed, dwell."""

from __future__ import annotations

import numpy as np
import pytest

from tao_ros.plugins import PluginRegistry
from tao_ros.types import Detections, FrameContext
from test_features import textured_square_moving


def create(name: str, **params):
    return PluginRegistry.discover().create("feature", name, params)


def still_frame(index: int, shape=(160, 200)) -> FrameContext:
    gray = np.zeros(shape, np.uint8)
    return FrameContext(index, np.dstack([gray] * 3), gray, gray if index else None)


def test_position_is_the_ground_contact_as_a_fraction_of_the_frame_and_the_log_relative_height():
    feature = create("position")
    boxes = np.array([[20.0, 40.0, 60.0, 120.0], [100.0, 2.0, 110.0, 16.0]])
    values = feature.extract(still_frame(0), Detections(boxes, ids=np.array([1, 2])), np.ones(2))
    assert values == pytest.approx(np.array([[40 / 200, 120 / 160, np.log(80 / 160)],
                                             [105 / 200, 16 / 160, np.log(14 / 160)]]))
    assert feature.extract(still_frame(1), Detections.empty(), np.zeros(0)).shape == (0, 3)


@pytest.mark.parametrize("name", ["position", "heading", "relative_speed"])
def test_the_place_of_a_box_the_frame_cuts_at_the_bottom_is_unknown_and_its_track_keeps_the_last_seen(name, rng):
    """A person leaving through the bottom edge leaves a short box on the frame's last row: its ground
    contact is not in the image, so its place (and what is measured against the place) is unknown
    rather than the frame's edge; a track seen whole before keeps that measurement for the feature's
    window, no longer."""
    context, detections = textured_square_moving(2, 0, rng)
    height = context.gray.shape[0]
    inside = detections.xyxy[0]
    whole = create(name).extract(context, Detections(inside[None], ids=np.array([7])), np.ones(1))[0]
    assert np.isfinite(whole).all()
    cut = np.array([[inside[0], height - 6.0, inside[2], height - 0.5], inside])
    fresh = create(name)
    values = fresh.extract(context, Detections(cut, ids=np.array([1, 2])), np.ones(2))
    assert np.isnan(values[0]).all()  # no earlier measurement to stand in
    assert np.isfinite(values[1]).all()  # the same object whole, inside the frame
    carried = create(name)
    carried.extract(context, Detections(inside[None], ids=np.array([7])), np.ones(1))
    later = [carried.extract(context, Detections(cut[:1], ids=np.array([7])), np.ones(1))[0]
             for _ in range(carried.p["window"])]
    assert later[0] == pytest.approx(whole)
    # a place is no longer the object's once it has moved on: unknown after the feature's window
    assert np.isfinite(later[-2]).all() and np.isnan(later[-1]).all()


def test_position_of_a_box_cut_at_the_top_is_unknown():
    boxes = np.array([[20.0, 0.0, 60.0, 30.0], [20.0, 1.0, 60.0, 30.0]])
    values = create("position").extract(still_frame(0), Detections(boxes, ids=np.array([1, 2])), np.ones(2))
    assert np.isnan(values[0]).all() and np.isfinite(values[1]).all()


@pytest.mark.parametrize("dx, dy", [(3, 0), (-3, 0), (0, 3), (0, -3)])
def test_heading_points_where_the_object_moves_from_where_it_stands(dx, dy, rng):
    context, detections = textured_square_moving(dx, dy, rng)
    values = create("heading").extract(context, detections, np.ones(1))[0]
    x1, _, x2, y2 = detections.xyxy[0]
    assert values[:2] == pytest.approx([(x1 + x2) / 2 / context.gray.shape[1], y2 / context.gray.shape[0]])
    direction = values[2:]
    assert np.linalg.norm(direction) > 0.9  # 3 px a frame is far above the flow's noise
    assert direction @ np.array([dx, dy]) / 3 > 0.9


def test_heading_of_a_still_object_has_no_direction_and_is_unknown_without_a_previous_frame(rng):
    context, detections = textured_square_moving(0, 0, rng)
    assert np.linalg.norm(create("heading").extract(context, detections, np.ones(1))[0, 2:]) < 0.2
    context.previous_gray = None
    assert np.isnan(create("heading").extract(context, detections, np.ones(1))).all()


def test_relative_speed_is_the_log_speed_times_the_depth_of_the_place_where_it_stands(rng):
    context, detections = textured_square_moving(4, 0, rng)
    feature = create("relative_speed", noise=0.5)
    values = feature.extract(context, detections, np.ones(1))[0]
    x1, _, x2, y2 = detections.xyxy[0]
    assert values[:2] == pytest.approx([(x1 + x2) / 2 / context.gray.shape[1], y2 / context.gray.shape[0]])
    near = np.exp(values[2]) - 0.5
    assert near == pytest.approx(4.0, rel=0.25)
    # the same motion in pixels twice as far away: twice as fast in the world
    far = create("relative_speed", noise=0.5).extract(context, detections, np.full(1, 2.0))[0, 2]
    assert np.exp(far) - 0.5 == pytest.approx(2 * near)
    assert np.isnan(create("relative_speed").extract(context, detections, np.full(1, np.nan))[:, 2]).all()


def test_relative_speed_learns_from_normal_objects_how_fast_is_normal_where():
    """On a ground plane the near end's normal walkers move faster in the image even times their depth;
    with the place in the vector a kNN model fitted on them takes a near walker as normal and a far
    object moving as fast as the near walkers as anomalous: speed times depth alone cannot tell them."""
    from tao_ros.builtin.scorers import KnnScorer

    rng = np.random.default_rng(0)
    rows = rng.uniform(0.2, 1.0, 400)  # ground contact rows, far (top) to near (bottom)
    speed_times_depth = 0.3 * rows ** 2 * np.exp(rng.normal(0, 0.1, 400))  # along the line of sight
    normal = np.column_stack([rng.uniform(0, 1, 400), rows, np.log(speed_times_depth + 0.5)])
    scorer = KnnScorer(k=5)
    held_out = scorer.fit(normal, np.arange(400) % 4)
    near_walker, far_runner = [0.5, 0.95, np.log(0.3 * 0.95 ** 2 + 0.5)], [0.5, 0.25, np.log(0.3 * 0.95 ** 2 + 0.5)]
    near_score, far_score = scorer.score(np.array([near_walker, far_runner]))
    assert near_score < np.quantile(held_out, 0.9) < np.quantile(held_out, 0.99) < far_score


def test_dwell_counts_the_frames_a_track_stays_and_how_far_it_gets():
    feature = create("dwell", window=10)
    for t in range(40):
        boxes = np.array([[50.0, 50.0, 70.0, 90.0],  # stays
                          [t * 4.0, 100.0, t * 4.0 + 20, 140.0]])  # walks 4 px a frame: 0.1 heights
        values = feature.extract(still_frame(t), Detections(boxes, ids=np.array([1, 2])), np.ones(2))
    assert values[:, 0] == pytest.approx([np.log1p(39)] * 2)
    assert values[0, 1] == pytest.approx(0.0)
    assert values[1, 1] == pytest.approx(0.1)
    newcomer = feature.extract(still_frame(40), Detections(np.array([[0.0, 0, 10, 10]]), ids=np.array([9])),
                               np.ones(1))
    assert newcomer[0, 0] == 0.0
    feature.reset()
    again = feature.extract(still_frame(41), Detections(np.array([[50.0, 50, 70, 90]]), ids=np.array([1])),
                            np.ones(1))
    assert again[0, 0] == 0.0  # a new stream forgets the old tracks


def test_dwell_of_a_track_seen_again_at_an_earlier_frame_number_starts_over():
    """A source whose frame numbers restart (a bag looping, clips played one after another without a
    reset) must not give a negative age."""
    feature = create("dwell")
    box = Detections(np.array([[50.0, 50, 70, 90]]), ids=np.array([1]))
    for t in range(100, 110):
        feature.extract(still_frame(t), box, np.ones(1))
    again = feature.extract(still_frame(3), box, np.ones(1))
    assert again[0, 0] == 0.0 and again[0, 1] == 0.0


def test_dwell_memory_is_bounded_and_untracked_objects_are_unknown():
    feature = create("dwell", max_tracks=5)
    for t in range(20):
        feature.extract(still_frame(t), Detections(np.array([[0.0, 0, 10, 10]]), ids=np.array([t])), np.ones(1))
    assert len(feature.tracks) == 5
    untracked = feature.extract(still_frame(20), Detections(np.array([[0.0, 0, 10, 10]])), np.ones(1))
    assert np.isnan(untracked).all()
