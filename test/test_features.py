"""Weight-free features on frames with known motion."""

from __future__ import annotations

import numpy as np
import pytest

from tao_ros.builtin.features import VelocityFeature
from tao_ros.plugins import PluginRegistry
from tao_ros.types import Detections, FrameContext


def textured_square_moving(dx: int, dy: int, rng) -> tuple[FrameContext, Detections]:
    """Two frames of a textured 40x40 square on a flat grey ground, moved by (dx, dy) pixels."""
    texture = rng.integers(0, 255, (40, 40)).astype(np.uint8)
    previous = np.full((160, 200), 128, np.uint8)
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
