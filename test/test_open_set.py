"""The open-set detector's pieces on boxes with exact answers: riders joined with what they ride,
moving regions no pretrained box explains, labels that stay with a track through flicker."""

from __future__ import annotations

import numpy as np
import pytest

from tao_ros.builtin.open_set import RIDDEN, foreground_inside, join_riders, moving_pixels, name_blobs, unexplained
from tao_ros.core.geometry import iou_matrix
from tao_ros.core.tracking import LabelVotes


def test_a_rider_and_the_bicycle_under_them_become_one_box_with_the_bicycles_label():
    rider, bicycle = [100, 40, 120, 90], [95, 65, 128, 100]  # the bicycle under the rider's legs
    xyxy, labels, index = join_riders(np.array([rider, bicycle]), np.array(["person", "bicycle"]),
                                      np.array([True, True]), RIDDEN)
    assert labels.tolist() == ["bicycle"] and index.tolist() == [1]
    np.testing.assert_array_equal(xyxy[0], [95, 40, 128, 100])


def test_a_person_walking_beside_a_bicycle_stays_apart():
    walker, bicycle = [60, 40, 80, 90], [78, 65, 111, 100]  # side by side: 2 of 20 pixels shared sideways
    xyxy, labels, _ = join_riders(np.array([walker, bicycle]), np.array(["person", "bicycle"]),
                                  np.array([True, True]), RIDDEN)
    assert sorted(labels.tolist()) == ["bicycle", "person"] and len(xyxy) == 2


def test_a_parked_bicycle_is_not_joined_with_a_person_standing_over_it():
    person, bicycle = [100, 40, 120, 90], [95, 65, 128, 100]
    _, labels, _ = join_riders(np.array([person, bicycle]), np.array(["person", "bicycle"]),
                               np.array([True, False]), RIDDEN)
    assert sorted(labels.tolist()) == ["bicycle", "person"]


def test_each_rider_rides_one_thing_and_two_riders_on_two_bicycles_stay_two_objects():
    boxes = np.array([[0, 0, 20, 50], [0, 25, 25, 60], [100, 0, 120, 50], [98, 25, 122, 60]])
    labels = np.array(["person", "bicycle", "person", "skateboard"])
    xyxy, out_labels, _ = join_riders(boxes, labels, np.ones(4, bool), RIDDEN)
    assert sorted(out_labels.tolist()) == ["bicycle", "skateboard"]
    np.testing.assert_array_equal(xyxy[np.argsort(xyxy[:, 0])], [[0, 0, 25, 60], [98, 0, 122, 60]])


def test_join_riders_handles_no_boxes():
    xyxy, labels, index = join_riders(np.zeros((0, 4)), np.zeros(0, str), np.zeros(0, bool), RIDDEN)
    assert xyxy.shape == (0, 4) and len(labels) == 0 and len(index) == 0


def test_moving_regions_outside_every_pretrained_box_are_objects_of_their_own():
    foreground = np.zeros((100, 200), bool)
    foreground[10:50, 10:30] = True    # a walker, boxed by the pretrained detector
    foreground[60:70, 150:170] = True  # a thrown bag, no COCO box
    blobs = np.array([[10, 10, 30, 50], [150, 60, 170, 70]], float)
    alone = unexplained(blobs, np.array([[8, 8, 32, 52]], float), foreground, 0.5)
    assert alone.tolist() == [False, True]
    assert unexplained(np.zeros((0, 4)), np.zeros((0, 4)), foreground, 0.5).shape == (0,)
    np.testing.assert_array_equal(moving_pixels(np.array([[10, 10, 30, 50], [0, 0, 10, 10]], float), foreground), [800, 0])


def test_a_track_keeps_its_majority_label_through_flicker_and_the_latest_wins_a_tie():
    votes = LabelVotes()
    seen = [votes.vote(np.array([7]), np.array([label]))[0]
            for label in ["bicycle", "motorcycle", "bicycle", "person", "motorcycle", "person", "bicycle"]]
    assert seen == ["bicycle", "motorcycle", "bicycle", "bicycle", "motorcycle", "person", "bicycle"]
    # an object without a track id keeps its own label; labels longer than earlier ones are not cut
    out = votes.vote(np.array([-1, 8]), np.array(["cat", "refrigerator"]))
    assert out.tolist() == ["cat", "refrigerator"]


def test_an_unlabelled_sighting_never_outvotes_a_class():
    votes = LabelVotes(unknown="object")
    seen = [votes.vote(np.array([3]), np.array([label]))[0] for label in ["object", "person", "object", "object"]]
    assert seen == ["object", "person", "person", "person"]


def test_label_votes_are_bounded():
    votes = LabelVotes(max_tracks=3)
    for track in range(10):
        votes.vote(np.array([track]), np.array(["person"]))
    assert len(votes.counts) == 3


def square_scene(monkeypatch, square, detect_every: int, frames: int, **params) -> tuple[list, list, object]:
    """The open-set detector on a textured 20 px square at ``square(t)`` (xyxy) over a still
    background, the pretrained detector stubbed to report it as a bicycle while 4 px or more of it
    show, and a bench that is part of the background at [120, 70, 150, 90] -> (what the detector
    found per frame, the frames the stub ran on, the detector)."""
    pytest.importorskip("ultralytics")
    import tao_ros.builtin.open_set as open_set
    from tao_ros.plugins import PluginRegistry
    from tao_ros.types import Detections, FrameContext

    calls, found = [], []

    def predict(model, image, confidence, image_size, device):
        calls.append(len(found))
        visible = square(len(found))[None]
        visible = visible[visible[:, 2] - visible[:, 0] >= 4]
        labels = np.append(np.full(len(visible), "bicycle"), "bench")
        return Detections(np.vstack([visible, [[120, 70, 150, 90]]]), np.full(len(labels), 0.9), labels)

    monkeypatch.setattr(open_set, "predict_boxes", predict)
    detector = PluginRegistry.discover().create("detector", "open_set", {
        "weights": "yolov8n.yaml", "detect_every": detect_every, "init_frames": 0, "stabilize": False, **params})
    background = np.full((100, 160), 40, np.uint8)
    background[72:88, 122:148] = 90  # the bench
    patch = np.random.default_rng(0).integers(150, 255, (20, 20), dtype=np.uint8)
    previous = None
    for frame in range(frames):
        gray = background.copy()
        x1, y1, x2, y2 = square(frame).astype(int)
        gray[y1:y2, x1:x2] = patch[:, :x2 - x1]
        found.append(detector.detect(FrameContext(frame, np.repeat(gray[..., None], 3, axis=2), gray, previous)))
        previous = gray
    return found, calls, detector


def test_between_detector_frames_pretrained_objects_are_carried_along_their_track_with_id_and_label(monkeypatch):
    def square(t):  # a textured square moving right by 3 px a frame on a still background
        x = 20 + 3 * t
        return np.array([x, 40, x + 20, 60], float)

    found, calls, detector = square_scene(monkeypatch, square, detect_every=2, frames=14)
    seen = []
    for frame, objects in enumerate(found):
        if frame > detector.p["warmup_frames"]:
            bicycles = objects[objects.labels == "bicycle"]
            assert len(bicycles) == 1, (frame, objects.labels)
            seen.append((int(bicycles.ids[0]), np.abs(bicycles.xyxy[0] - square(frame)).max()))
    assert len(calls) == (len(seen) + 1) // 2  # the detector ran on every 2nd frame only
    assert len({track for track, _ in seen}) == 1  # one id throughout
    errors = [error for _, error in seen]
    # carried boxes follow the object: once its track has a velocity (after its first frame), to well
    # under the 3 px it moves a frame (a box left where it was would be 3 px off)
    assert errors[0] <= 3.0 and max(errors[1:]) <= 0.5, errors


def test_an_object_carried_out_of_the_frame_between_detector_frames_leaves_no_empty_box(monkeypatch):
    """A box carried past the image border was clipped to zero width and published as an object."""
    def square(t):  # leaves the 160 px wide frame on the right from frame 10 on, 8 px a frame
        x = 80 + 8 * t
        return np.array([min(x, 160), 40, min(x + 20, 160), 60], float)

    found, _, _ = square_scene(monkeypatch, square, detect_every=3, frames=16)
    boxes = np.concatenate([objects.xyxy for objects in found])
    assert len(boxes) > 0
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])


@pytest.mark.parametrize("keep_still", [False, True])
def test_pretrained_boxes_without_foreground_are_the_scene_not_objects(monkeypatch, keep_still):
    def square(t):
        x = 10 + 3 * t
        return np.array([x, 20, x + 20, 40], float)

    found, _, detector = square_scene(monkeypatch, square, detect_every=1, frames=12, keep_still=keep_still)
    later = found[detector.p["warmup_frames"] + 1:]
    assert all((objects.labels == "bicycle").sum() == 1 for objects in later)
    # the bench was there all along: the background model holds it, so it is dropped unless kept
    assert all((objects.labels == "bench").sum() == int(keep_still) for objects in later)


def test_with_motion_objects_each_moving_region_is_an_object_labelled_by_the_pretrained_box_it_holds(monkeypatch):
    def square(t):
        x = 20 + 3 * t
        return np.array([x, 40, x + 20, 60], float)

    found, calls, detector = square_scene(monkeypatch, square, detect_every=3, frames=14, objects="motion")
    later = found[detector.p["warmup_frames"] + 1:]
    assert len(calls) == 4  # the pretrained detector on every 3rd frame only
    bicycles = []
    for frame, objects in enumerate(later, start=detector.p["warmup_frames"] + 1):
        # the moving square's blob (not the pretrained box), labelled on every frame by the bicycle box
        # it held on the detector's frames; the still bench is no object
        assert "bench" not in objects.labels and (objects.labels == "bicycle").sum() == 1, (frame, objects.labels)
        bicycle = objects[objects.labels == "bicycle"]
        assert iou_matrix(bicycle.xyxy, square(frame)[None])[0, 0] >= 0.6
        bicycles.append(int(bicycle.ids[0]))
    assert len(set(bicycles)) == 1


def test_with_motion_objects_the_moving_part_of_a_boxed_object_is_the_whole_object(monkeypatch):
    """Someone standing still and waving: only the arm moves, and the object is the person's box."""
    pytest.importorskip("ultralytics")
    import tao_ros.builtin.open_set as open_set
    from tao_ros.plugins import PluginRegistry
    from tao_ros.types import Detections, FrameContext

    person = np.array([[60, 20, 90, 90]], float)
    monkeypatch.setattr(open_set, "predict_boxes",
                        lambda *args: Detections(person, np.array([0.8]), np.array(["person"])))
    detector = PluginRegistry.discover().create("detector", "open_set", {
        "weights": "yolov8n.yaml", "objects": "motion", "detect_every": 2, "init_frames": 0, "stabilize": False})
    background = np.full((100, 160), 40, np.uint8)
    background[20:90, 60:90] = 120  # the person, still
    found, previous = [], None
    for frame in range(12):
        gray = background.copy()
        arm = 78 - 5 * frame  # the arm, a 20x8 px patch raised 5 px a frame
        gray[arm:arm + 8, 65:85] = 250
        found.append(detector.detect(FrameContext(frame, np.repeat(gray[..., None], 3, axis=2), gray, previous)))
        previous = gray
    later = found[detector.p["warmup_frames"] + 1:]
    assert all(len(objects) == 1 for objects in later), [objects.xyxy for objects in later]
    np.testing.assert_allclose(np.concatenate([objects.xyxy for objects in later]),
                               np.repeat(person, len(later), axis=0), atol=1)
    assert {objects.labels[0] for objects in later} == {"person"}
    assert len({int(objects.ids[0]) for objects in later}) == 1


def test_blobs_are_named_by_the_largest_box_they_hold_and_moving_parts_become_their_box():
    blobs = np.array([[0, 0, 50, 50],      # holds a large box and a small one inside it: named by the large one
                      [100, 0, 110, 10],   # the left arm of a still person (box 3)
                      [130, 0, 140, 10],   # his right arm: the same one object
                      [200, 0, 210, 10],   # inside a box another blob holds: stays itself, unnamed
                      [300, 0, 310, 10]],  # no box near it
                     float)
    boxes = np.array([[12, 12, 20, 20], [10, 10, 45, 45], [195, 0, 230, 40], [95, 0, 145, 80]], float)
    held_by_another = np.array([[190, 0, 240, 50]], float)  # holds box 2
    inside = np.zeros((5, 4))
    inside[1, 3] = inside[2, 3] = 1.0
    inside[3, 2] = 1.0
    inside = np.concatenate([inside, [[0, 0, 1, 0]]])
    xyxy, naming = name_blobs(np.concatenate([blobs, held_by_another]), boxes, inside, 0.5)
    assert naming.tolist() == [1, 3, -1, -1, 2]
    np.testing.assert_array_equal(xyxy, [blobs[0], boxes[3], blobs[3], blobs[4], held_by_another[0]])
    # a part with less than the share of its foreground in the box stays itself
    assert name_blobs(blobs[1:2], boxes[3:], np.array([[0.4]]), 0.5)[1].tolist() == [-1]
    for empty in (name_blobs(np.zeros((0, 4)), boxes, np.zeros((0, 4)), 0.5),
                  name_blobs(blobs, np.zeros((0, 4)), np.zeros((5, 0)), 0.5)):
        assert empty[0].shape == (len(empty[1]), 4) and (empty[1] == -1).all()


def test_a_blob_holding_several_boxes_is_a_merged_group_whose_objects_are_the_boxes():
    group = np.array([[0, 0, 100, 50]], float)  # two people walking side by side, one blob
    people = np.array([[5, 5, 40, 45], [60, 5, 95, 45], [10, 20, 20, 30]], float)  # the third: a bag on the first
    xyxy, naming = name_blobs(group, people, np.array([[0.45, 0.45, 0.05]]), 0.5)
    assert naming.tolist() == [0, 1]
    np.testing.assert_array_equal(xyxy, people[:2])
    # where the boxes hold less than the share of the group's foreground (people the detector missed),
    # the group stays one blob: their moving pixels are not lost
    xyxy, naming = name_blobs(group, people, np.array([[0.2, 0.2, 0.02]]), 0.5, explained=np.array([False]))
    assert naming.tolist() == [0] and np.array_equal(xyxy, group)
    # a second blob holding one of them adds no second object for it
    xyxy, naming = name_blobs(np.concatenate([group, [[50, 0, 100, 50]]]), people[:2], np.zeros((2, 2)), 0.5)
    assert naming.tolist() == [0, 1] and len(xyxy) == 2


def test_foreground_inside_is_each_blobs_share_of_moving_pixels_in_each_box():
    foreground = np.zeros((20, 40), bool)
    foreground[0:10, 0:10] = True  # 100 moving pixels of blob 0
    blobs = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)  # blob 1 holds no moving pixel
    boxes = np.array([[0, 0, 5, 10], [-5, -5, 10, 2], [30, 0, 40, 10]], float)  # the second reaches out of the frame
    np.testing.assert_allclose(foreground_inside(blobs, boxes, foreground), [[0.5, 0.2, 0.0], [0.0, 0.0, 0.0]])
    assert foreground_inside(np.zeros((0, 4)), boxes, foreground).shape == (0, 3)
