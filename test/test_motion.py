"""The motion detector's blobs and tracks on scenes with exact ground truth."""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.motion import split_merged
from tao_ros.core.geometry import iou_matrix
from tao_ros.plugins import PluginRegistry
from tao_ros.types import FrameContext


def two_walkers_merged() -> tuple[np.ndarray, np.ndarray]:
    """[H, W] foreground of two 20x50 walkers touching side by side, and their expected boxes."""
    foreground = np.zeros((120, 160), bool)
    foreground[30:80, 40:60] = True
    foreground[32:82, 60:80] = True
    expected = np.array([[41, 30, 60, 80], [60, 32, 79, 82]], np.float64)
    return foreground, expected


def test_a_blob_holding_two_tracked_objects_is_split_between_them():
    foreground, expected = two_walkers_merged()
    blob = np.array([[40, 30, 80, 82]], np.float64)
    parts = split_merged(blob, expected, foreground, min_area=50)
    np.testing.assert_array_equal(parts[np.argsort(parts[:, 0])], [[40, 30, 60, 80], [60, 32, 80, 82]])


def test_blobs_are_kept_whole_without_two_tracked_objects_inside():
    foreground, expected = two_walkers_merged()
    blob = np.array([[40, 30, 80, 82]], np.float64)
    np.testing.assert_array_equal(split_merged(blob, expected[:1], foreground, 50), blob)  # one track
    far = expected + [200, 0, 200, 0]
    np.testing.assert_array_equal(split_merged(blob, far, foreground, 50), blob)  # tracks elsewhere
    np.testing.assert_array_equal(split_merged(blob, expected, foreground, 2000), blob)  # parts too small
    assert split_merged(np.zeros((0, 4)), expected, foreground, 50).shape == (0, 4)


def test_walkers_keep_their_ids_while_their_blobs_merge():
    """Two walkers: the left one catches up, they walk side by side as one blob for 12 frames, then the
    right one walks off; each keeps one id throughout."""
    rng = np.random.default_rng(0)
    ground = np.kron(rng.integers(90, 110, (30, 40)), np.ones((4, 4))).astype(np.uint8)
    detector = PluginRegistry.discover().create("detector", "motion", {"warmup_frames": 0, "init_frames": 40})
    for _ in range(40):
        detector.detect(FrameContext(0, np.dstack([ground] * 3), ground))
    ids_of = {"left": [], "right": []}
    left, right, merged_frames = 10, 50, 0
    for t in range(40):
        frame = ground.copy()
        frame[40:90, left:left + 20] = 30
        frame[42:92, right:right + 20] = 220
        detections = detector.detect(FrameContext(t, np.dstack([frame] * 3), frame))
        merged_frames += right - (left + 20) <= 2
        for name, x in (("left", left), ("right", right)):
            inside = [i for d, i in zip(detections.xyxy, detections.ids) if d[0] <= x + 10 < d[2] and d[1] <= 65 < d[3]]
            if len(inside) == 1:
                ids_of[name].append(int(inside[0]))
        gap = right - (left + 20)
        left += 2 if t >= 28 else (3 if gap > 1 else 2)
        right += 5 if t >= 28 else 2
    assert merged_frames >= 10  # the blobs did merge (closing joins gaps of a few pixels)
    for name, ids in ids_of.items():
        assert len(ids) >= 36, (name, ids)
        assert len(set(ids)) == 1, (name, ids)
    assert ids_of["left"][0] != ids_of["right"][0]


def shaken_scene(shifts):
    """Frames of a textured, still scene with a 16x16 square moving 2 px/frame to the right, each frame
    shifted by its (dx, dy) of ``shifts`` (camera shake); and the square's true box in each."""
    import cv2

    rng = np.random.default_rng(5)
    scene = cv2.GaussianBlur(rng.uniform(0, 255, (240, 360)).astype(np.float32), (0, 0), 2.0)
    scene = cv2.normalize(scene, None, 20, 230, cv2.NORM_MINMAX)
    for t, (dx, dy) in enumerate(shifts):
        image = scene.copy()
        image[100:116, 40 + 2 * t:56 + 2 * t] = 255
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        gray = cv2.warpAffine(image, shift, (360, 240), borderMode=cv2.BORDER_REPLICATE).astype(np.uint8)
        yield FrameContext(t, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), gray), \
            np.array([40 + 2 * t + dx, 100 + dy, 56 + 2 * t + dx, 116 + dy])


def test_camera_shake_is_undone_before_background_subtraction():
    rng = np.random.default_rng(0)
    directions, lengths = rng.uniform(0, 2 * np.pi, 30), rng.uniform(0.6, 4.0, 30)
    shifts = [(0.0, 0.0)] * 30 + list(zip(lengths * np.cos(directions), lengths * np.sin(directions)))
    foreground_share = {}
    for stabilize in (False, True):
        detector = PluginRegistry.discover().create("detector", "motion", {"stabilize": stabilize})
        shares, misses = [], []
        for t, (context, box) in enumerate(shaken_scene(shifts)):
            if stabilize and t >= 30:
                found = detector.camera_shift(context.gray)
                assert found and np.hypot(found[0] - shifts[t][0], found[1] - shifts[t][1]) < 0.2, (found, shifts[t])
            detections = detector.detect(context)
            if t >= 30:
                shares.append(context.foreground.mean())
                misses.append(not len(detections) or iou_matrix(box[None], detections.xyxy).max() < 0.5)
        foreground_share[stabilize] = np.mean(shares)
        if stabilize:
            assert not any(misses), "the moving square is found in every shaken frame, where it is"
    assert foreground_share[True] < 0.01 < foreground_share[False], foreground_share


def test_large_frames_are_subtracted_at_the_working_rows_with_boxes_in_their_own_pixels():
    import cv2

    detector = PluginRegistry.discover().create("detector", "motion", {})
    for context, box in shaken_scene([(0.0, 0.0)] * 30):
        gray = cv2.resize(context.gray, (720, 480), interpolation=cv2.INTER_NEAREST)  # twice the reference rows
        large = FrameContext(context.frame_index, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), gray)
        detections = detector.detect(large)
    assert large.foreground.shape == (480, 720)
    assert detector.background.getBackgroundImage().shape[:2] == (240, 360)  # subtraction at the working rows
    assert len(detections) == 1 and iou_matrix(2 * box[None], detections.xyxy)[0, 0] > 0.5, detections.xyxy
