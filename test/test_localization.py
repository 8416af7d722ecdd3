"""3D positions from an object's pixels and aligned depth (core.localization), the intrinsics they
need (io.camera_info), and the messages they become (io.messages3d): exact synthetic ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from tao_ros.core.localization import (DepthRange, Intrinsics, depth_in_metres, locate, object_regions,
                                       surface_depths)
from tao_ros.errors import InputError
from tao_ros.io.camera_info import calibration_intrinsics, intrinsics_from_camera_info, load_intrinsics

CAMERA = Intrinsics(fx=400.0, fy=420.0, cx=160.0, cy=120.0, width=320, height=240)


def region(x1, y1, x2, y2):
    rows, cols = np.mgrid[y1:y2, x1:x2]
    return rows.reshape(-1), cols.reshape(-1)


def back_projected_box(x1, y1, x2, y2, z, camera=CAMERA):
    """Exact centre and size of the pixels [x1, x2) x [y1, y2) of a plane at depth z."""
    xs = (np.array([x1, x2 - 1]) - camera.cx) * z / camera.fx
    ys = (np.array([y1, y2 - 1]) - camera.cy) * z / camera.fy
    return np.array([xs.mean(), ys.mean(), z]), np.array([xs[1] - xs[0], ys[1] - ys[0], 0.0])


def test_a_flat_object_is_placed_where_its_pixels_back_project():
    depth = np.full((240, 320), 12.0, np.float32)  # a wall far behind
    depth[60:140, 200:240] = 4.0
    located = locate([region(200, 60, 240, 140)], depth, CAMERA)
    centre, size = back_projected_box(200, 60, 240, 140, 4.0)
    assert located.located.tolist() == [True] and located.pixels[0] == 40 * 80
    np.testing.assert_allclose(located.centre[0], centre, atol=0.02)
    np.testing.assert_allclose(located.size[0], size, atol=0.02 * 4.0 + 0.01)


def test_background_and_invalid_readings_inside_the_region_are_not_the_object():
    """A thin pole whose region bleeds onto the wall behind it (a third of its pixels), with holes
    (0, NaN) and readings beyond the sensor's range: the position is the pole's."""
    depth = np.full((240, 320), 9.0, np.float32)
    depth[40:200, 150:160] = 3.0
    depth[40:200:7, 150:160] = np.nan
    depth[41:200:9, 150:160] = 0.0
    depth[42:200:11, 150:160] = 80.0  # out of range
    rows, cols = region(147, 40, 163, 200)  # 3 wall columns on each side
    metres = depth_in_metres(depth)
    located = locate([(rows, cols)], metres, CAMERA, DepthRange(0.1, 20.0, 20))
    centre, size = back_projected_box(150, 40, 160, 200, 3.0)
    np.testing.assert_allclose(located.centre[0], centre, atol=0.05)
    assert located.size[0][0] < 1.2 * size[0] + 0.01 and located.size[0][2] < 0.2
    assert located.pixels[0] < 10 * 160  # holes and out-of-range readings were not counted


def test_an_object_standing_on_a_ground_plane_is_not_pulled_back_by_the_ground_behind_it():
    """The whole box of a person on the ground: ground pixels beside them run continuously from
    their feet to far behind; the person's surface is the near mode."""
    focal, mount, horizon = 260.0, 3.0, 50.0
    camera = Intrinsics(focal, focal, 180.0, horizon, 360, 240)
    rows = np.arange(240, dtype=np.float32)[:, None] - horizon
    depth = np.broadcast_to(np.where(rows > 1, focal * mount / np.maximum(rows, 1), 80.0), (240, 360)).copy()
    z = 10.0
    foot = int(horizon + focal * mount / z)
    head = int(foot - focal * 1.75 / z)
    x1, x2 = 170, int(170 + focal * 0.6 / z)
    depth[head:foot, x1 + 2:x2 - 2] = z  # the body narrower than its box
    located = locate([region(x1, head, x2, foot)], depth.astype(np.float32), camera)
    assert abs(located.centre[0][2] - z) < 0.05 * z
    assert np.linalg.norm(located.centre[0] - back_projected_box(x1 + 2, head, x2 - 2, foot, z, camera)[0]) < 0.05 * z


def test_a_smaller_object_passing_in_front_inside_the_mask_does_not_move_the_object():
    """A walker at 10 m merged into the mask of a crate at 16 m (a quarter of its pixels)."""
    depth = np.full((240, 320), 30.0, np.float32)
    depth[50:150, 100:200] = 16.0
    depth[60:150, 120:148] = 10.0
    located = locate([region(100, 50, 200, 150)], depth, CAMERA)
    assert abs(located.centre[0][2] - 16.0) < 0.1


def test_too_few_valid_pixels_give_no_position_rather_than_a_wrong_one():
    depth = np.full((240, 320), np.nan, np.float32)
    depth[10:13, 10:15] = 2.0  # 15 valid pixels
    located = locate([region(0, 0, 40, 40), region(100, 100, 140, 140)], depth, CAMERA, DepthRange(min_pixels=20))
    assert located.located.tolist() == [False, False] and located.pixels.tolist() == [0, 0]
    assert np.isnan(located.centre).all() and np.isnan(located.size).all()
    assert len(locate([], depth, CAMERA)) == 0


def test_surface_depths_keeps_a_surface_spanning_several_bins_whole():
    rng = np.random.default_rng(0)
    car = rng.uniform(6.0, 8.0, 3000)  # a car seen obliquely: 6-8 m, many 5% bins
    wall = rng.normal(15.0, 0.05, 1500)
    kept = surface_depths(np.concatenate([car, wall]))
    assert kept[:3000].mean() > 0.97 and not kept[3000:].any()
    assert surface_depths(np.zeros(0)).shape == (0,)


def test_regions_come_from_the_mask_else_the_foreground_in_the_box_else_the_box():
    instance = np.zeros((50, 60), np.uint16)
    instance[5:10, 5:10] = 7
    foreground = np.zeros((50, 60), bool)
    foreground[20:30, 30:35] = True
    boxes = np.array([[0, 0, 20, 20], [25, 15, 45, 40], [50, 40, 70, 60]], float)  # the last one past the border
    regions = object_regions(boxes, np.array([7, 8, 9]), (50, 60), instance, foreground, min_pixels=10)
    assert len(regions[0][0]) == 25 and set(regions[0][0].tolist()) == set(range(5, 10))
    assert len(regions[1][0]) == 50 and regions[1][1].min() == 30
    assert len(regions[2][0]) == 10 * 10 and regions[2][0].max() == 49 and regions[2][1].max() == 59


def test_intrinsics_say_what_is_wrong():
    with pytest.raises(InputError, match="focal lengths must be positive"):
        Intrinsics(0.0, 400.0, 160.0, 120.0, 320, 240)
    with pytest.raises(InputError, match="320x240 images but the depth image is 640x480"):
        locate([region(0, 0, 4, 4)], np.ones((480, 640), np.float32), CAMERA)
    with pytest.raises(InputError, match="need 0 <= depth_min < depth_max"):
        DepthRange(5.0, 1.0)


def camera_info(**fields):
    from types import SimpleNamespace

    base = dict(width=640, height=480, k=[500.0, 0, 320.0, 0, 505.0, 240.0, 0, 0, 1], d=[0.0] * 5,
                p=[0.0] * 12, binning_x=0, binning_y=0,
                roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False))
    base.update(fields)
    return SimpleNamespace(**base)


def test_camera_info_uses_p_of_the_rectified_image_else_k_and_reports_distortion():
    intrinsics, note = intrinsics_from_camera_info(camera_info())
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (500.0, 505.0, 320.0, 240.0) and note is None
    rectified, note = intrinsics_from_camera_info(camera_info(p=[480.0, 0, 318.0, 0, 0, 480.0, 242.0, 0, 0, 0, 1, 0],
                                                              d=[-0.2, 0.05, 0, 0, 0]))
    assert (rectified.fx, rectified.cx, rectified.cy) == (480.0, 318.0, 242.0)
    assert "distortion coefficients" in note and "rectified" in note
    binned, _ = intrinsics_from_camera_info(camera_info(binning_x=2, binning_y=2))
    assert (binned.width, binned.height, binned.fx) == (320, 240, 250.0)
    assert binned.cx == pytest.approx((320.0 + 0.5) / 2 - 0.5)
    with pytest.raises(InputError, match="not calibrated"):
        intrinsics_from_camera_info(camera_info(k=[0.0] * 9))
    with pytest.raises(InputError, match="malformed camera_info"):
        intrinsics_from_camera_info(camera_info(k=None))


def test_a_calibration_yaml_as_camera_calibration_writes_it(tmp_path):
    path = tmp_path / "camera.yaml"
    path.write_text("image_width: 640\nimage_height: 480\ncamera_name: front\n"
                    "camera_matrix: {rows: 3, cols: 3, data: [500, 0, 320, 0, 500, 240, 0, 0, 1]}\n"
                    "distortion_model: plumb_bob\n"
                    "distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}\n"
                    "projection_matrix: {rows: 3, cols: 4, data: [490, 0, 321, 0, 0, 490, 239, 0, 0, 0, 1, 0]}\n")
    intrinsics, note = load_intrinsics(path)
    assert (intrinsics.fx, intrinsics.cx, intrinsics.cy, intrinsics.width) == (490.0, 321.0, 239.0, 640) and note is None
    (tmp_path / "bad.yaml").write_text("fx: 500\n")
    with pytest.raises(InputError, match="needs image_width, image_height and camera_matrix"):
        load_intrinsics(tmp_path / "bad.yaml")
    with pytest.raises(InputError, match="no such intrinsics file"):
        load_intrinsics(tmp_path / "missing.yaml")
    # a region of interest moves the principal point by its offset and is the image's size; focal
    # lengths stay (K: fx 400, fy 410, cx 160, cy 120)
    cropped, _ = calibration_intrinsics(320, 240, [400, 0, 160, 0, 410, 120, 0, 0, 1], roi=(10, 20, 100, 50))
    assert (cropped.fx, cropped.fy, cropped.cx, cropped.cy, cropped.width, cropped.height) == \
        (400.0, 410.0, 150.0, 100.0, 100, 50)
    # binned 2x2 after the crop: halved, pixel centres at the bins' centres
    binned, _ = calibration_intrinsics(320, 240, [400, 0, 160, 0, 410, 120, 0, 0, 1], binning=(2, 2),
                                       roi=(10, 20, 100, 50))
    assert (binned.fx, binned.fy, binned.cx, binned.cy, binned.width, binned.height) == \
        (200.0, 205.0, 74.75, 49.75, 50, 25)


def test_3d_detections_and_markers_round_trip_through_a_bag_serializer():
    from tao_ros.core.localization import Located
    from tao_ros.io.messages import MessageTypes, make_header
    from tao_ros.io.messages3d import MARKER_CUBE, MARKER_DELETEALL, MARKER_TEXT, detections3d_to_msg, markers_msg
    from tao_ros.ros.msgdefs import typestore

    store = typestore("jazzy")
    types = MessageTypes.from_typestore(store)
    header = make_header(types, 5 * 10**9 + 7, "camera_optical_frame")
    located = Located(np.array([[1.0, -0.5, 6.0], [np.nan] * 3]), np.array([[0.6, 1.7, 0.0], [np.nan] * 3]),
                      np.array([500, 0]))
    ids, labels, scores = np.array([4, 9]), ["person", "object"], np.array([0.97, 0.99])
    raw = store.serialize_cdr(detections3d_to_msg(types, header, located, ids, labels, scores),
                              "vision_msgs/msg/Detection3DArray")
    back = store.deserialize_cdr(raw, "vision_msgs/msg/Detection3DArray")
    assert (back.header.stamp.sec, back.header.stamp.nanosec, back.header.frame_id) == (5, 7, "camera_optical_frame")
    assert [d.id for d in back.detections] == ["4"]  # the object without a position is left out
    detection = back.detections[0]
    position = detection.bbox.center.position
    assert (position.x, position.y, position.z) == (1.0, -0.5, 6.0) and detection.bbox.size.y == 1.7
    assert detection.results[0].hypothesis.class_id == "person" and detection.results[0].hypothesis.score == 0.97
    raw = store.serialize_cdr(markers_msg(types, header, located, ids, labels, scores, lifetime_s=0.5),
                              "visualization_msgs/msg/MarkerArray")
    markers = store.deserialize_cdr(raw, "visualization_msgs/msg/MarkerArray").markers
    assert [m.action for m in markers][:1] == [MARKER_DELETEALL] and len(markers) == 3
    box, text = markers[1:]
    assert (box.type, box.id, box.ns, text.type) == (MARKER_CUBE, 4, "tao_ros/box", MARKER_TEXT)
    assert box.scale.z == pytest.approx(0.05) and box.lifetime.nanosec == 500_000_000 and "person" in text.text
    assert text.pose.position.y < box.pose.position.y  # the label above the box (y points down)


@pytest.mark.parametrize("fields", [dict(k=[np.nan] * 9), dict(k=[1.0, 2.0]), dict(width=-5), dict(roi=None),
                                    dict(binning_x="two"), dict(k="garbage")])
def test_a_bad_camera_info_is_counted_and_the_last_good_one_stays_in_use(fields):
    from collections import Counter

    from tao_ros.ros.camera import CameraInfoState
    from tao_ros.ros.diagnostics import ThrottledLog

    bad_input = Counter()
    state = CameraInfoState(bad_input, ThrottledLog())
    state.update(camera_info())
    good = state.intrinsics
    state.update(camera_info(**fields))
    assert bad_input["camera_info"] == 1 and state.intrinsics == good and state.problem is None
    fresh = CameraInfoState(Counter(), ThrottledLog())
    fresh.update(camera_info(**fields))
    assert fresh.intrinsics is None and fresh.problems(use_depth=True)[0].startswith("no 3D outputs: invalid camera_info")
