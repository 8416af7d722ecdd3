"""The node's ROS-free core: bad input never escapes, stale frames are dropped, outputs are stamped."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rosbags")  # pure-Python bag library from PyPI; ROS machines may lack it

from conftest import scene_frames
from tao_ros.config import load_config
from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image
from tao_ros.ros.engine import AnomalyEngine, InputFrame
from tao_ros.ros.msgdefs import typestore

STORE = typestore("jazzy")
TYPES = MessageTypes.from_typestore(STORE)
FRAMES = scene_frames(7, 40, anomalies=True)


def image_msg(t, image=None, encoding="bgr8", frame_id="cam"):
    image = FRAMES[t % len(FRAMES)][0] if image is None else image
    return numpy_to_image(TYPES, make_header(TYPES, 1_000_000_000 + t * 100_000_000, frame_id), image, encoding)


def depth_msg(t, depth):
    encoding = "16UC1" if depth.dtype == np.uint16 else "32FC1"
    return numpy_to_image(TYPES, make_header(TYPES, 1_000_000_000 + t * 100_000_000, "cam"), depth, encoding)


@pytest.fixture
def engine(fitted_pipeline, tmp_path):
    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    return AnomalyEngine(load_config(overrides={"model_path": str(path)}))


def run(engine, frame):
    engine.submit(frame)
    return engine.step(timeout=0)


def test_good_frames_yield_outputs_stamped_like_their_input(engine):
    for t in range(15):
        outputs = run(engine, InputFrame(image_msg(t)))
        assert outputs is not None
        messages = engine.messages(outputs, TYPES, overlay=True)
        assert set(messages) == {"~/detections", "~/instance_mask", "~/anomaly_mask", "~/overlay"}
        for msg in messages.values():
            assert msg.header.stamp.nanosec == (t * 100_000_000) % 1_000_000_000
            assert msg.header.frame_id == "cam"
    mask = messages["~/anomaly_mask"]
    assert mask.encoding == "mono8" and set(np.unique(mask.data)) <= {0, 255}
    assert messages["~/instance_mask"].encoding == "mono16"
    assert engine.counts["processed"] == 15


def bad_inputs():
    good = FRAMES[0][0]
    short = image_msg(1)
    short.data = short.data[:-100]
    corrupt_type = STORE.types["sensor_msgs/msg/CompressedImage"]
    yield "mono8 camera (valid)", InputFrame(image_msg(1, good[..., 0], encoding="mono8")), None
    yield "unknown encoding", InputFrame(_with(image_msg(1), encoding="yuv422")), "image"
    yield "short data", InputFrame(short), "image"
    yield "corrupt compressed", InputFrame(corrupt_type(header=make_header(TYPES, 1, "cam"), format="jpeg",
                                                       data=np.frombuffer(b"\xff\xd8garbage", np.uint8)),
                                           compressed=True), "compressed"
    yield "depth of another size", InputFrame(image_msg(1), depth_msg(1, np.ones((10, 10), np.float32))), "depth"
    nan_depth = np.full(good.shape[:2], np.nan, np.float32)
    nan_depth[:5] = np.inf
    nan_depth[5:10] = 0
    yield "NaN/inf/zero depth", InputFrame(image_msg(1), depth_msg(1, nan_depth)), None
    yield "depth encoding", InputFrame(image_msg(1), _with(depth_msg(1, np.ones(good.shape[:2], np.float32)),
                                                          encoding="bgr8")), "depth"
    yield "not an image at all", InputFrame(object()), "malformed"


def _with(msg, **fields):
    for key, value in fields.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize("name, frame, counter", list(bad_inputs()), ids=[b[0] for b in bad_inputs()])
def test_bad_input_is_counted_and_the_next_good_frame_is_processed(engine, name, frame, counter):
    run(engine, InputFrame(image_msg(0)))
    before = dict(engine.bad_input)
    run(engine, frame)  # must not raise
    dropped = int(engine.diagnostics()["dropped_bad_input"])
    if counter is not None:
        assert engine.bad_input[counter] == before.get(counter, 0) + 1
        assert dropped == sum(before.values()) + 1 and engine.diagnostics()[f"bad_input_{counter}"] == "1"
    else:
        assert dropped == sum(before.values())
    assert run(engine, InputFrame(image_msg(2))) is not None


def test_time_going_backwards_restarts_the_stream_and_a_frame_of_another_size_is_refused(engine):
    for t in (5, 6, 7):
        engine.submit_image(image_msg(t))
        engine.step(timeout=0)
    engine.submit_image(image_msg(1))  # bag loop
    outputs = engine.step(timeout=0)
    assert outputs is not None and engine.counts["time_jumps_back"] == 1 and engine.counts["stream_restarts"] == 1
    assert engine.pipeline.frame_index == 4  # numbered as received, across restarts
    small = np.ascontiguousarray(FRAMES[3][0][::2, ::2])
    assert run(engine, InputFrame(image_msg(8, small))) is None
    assert engine.bad_input["frame"] == 1  # the model knows its camera: 180x120 is not what it learned
    assert run(engine, InputFrame(image_msg(9))) is not None


def test_newest_frame_wins_and_stale_frames_are_counted(engine):
    for t in range(3):
        engine.submit(InputFrame(image_msg(t)))
    outputs = engine.step(timeout=0)
    assert outputs.header.stamp.nanosec == 200_000_000
    assert engine.counts["dropped_stale"] == 2 and engine.step(timeout=0) is None
    assert outputs.result.frame_index == 2  # the pipeline sees that two frames were skipped


def test_runtime_parameters_are_validated(engine):
    refused = engine.set_parameter("threshold", 7)  # the default threshold_quantile sets the threshold
    assert "no effect while threshold_quantile (0.99)" in refused and engine.pipeline.config.threshold == 1.5
    assert engine.set_parameter("threshold_quantile", 0.0) is None
    assert engine.set_parameter("threshold", 7) is None and engine.pipeline.threshold == 7.0
    assert "must be <= 1.0" in engine.set_parameter("threshold_quantile", 7)
    assert engine.set_parameter("prompt_interval", 3) is None and engine.pipeline.prompts.interval == 3
    assert "must be >= 1" in engine.set_parameter("prompt_interval", 0)
    assert "cannot change while running" in engine.set_parameter("detector", "x")


def test_calibration_learns_normal_saves_and_switches_to_detection(tmp_path):
    path = tmp_path / "learned.npz"
    engine = AnomalyEngine(load_config(overrides={"model_path": ""}))
    assert run(engine, InputFrame(image_msg(0))) is None and engine.counts["not_fitted"] == 1
    engine.config.options["model_path"] = str(path)
    engine.start_calibration(frames=30)
    normal = scene_frames(2, 30, anomalies=False)
    for t, (image, *_rest) in enumerate(normal):
        assert run(engine, InputFrame(image_msg(t + 1, image))) is None
    assert path.is_file() and engine.status.startswith("detecting")
    assert run(engine, InputFrame(image_msg(40))) is not None


@pytest.mark.parametrize("failure", ["unwritable model_path", "no objects to learn from"])
def test_a_failed_calibration_keeps_the_previous_model_detecting(engine, tmp_path, failure):
    before = engine.pipeline
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    engine.config.options["model_path"] = str(blocker / "model.npz")  # cannot be written, even by root
    engine.start_calibration(frames=20)
    blank = np.full_like(FRAMES[0][0], 90)
    normal = [f[0] for f in scene_frames(2, 20, anomalies=False)]  # rendered first: frames arrive as a camera's
    for t in range(20):
        image = blank if failure == "no objects to learn from" else normal[t]
        assert run(engine, InputFrame(image_msg(t, image))) is None
    assert engine.status.startswith("calibration failed") and "previous model" in engine.status
    assert engine.counts["calibration_failures"] == 1 and engine.diagnostics()["status"] == engine.status
    assert engine.pipeline is before and before.fitted
    # the stream restarted: the next frame is not compared with one from before the recording
    assert engine.counts["stream_restarts"] == 1 and before.previous_gray is None
    outputs = run(engine, InputFrame(image_msg(30)))
    assert outputs is not None and len(before.score_history.values) == len(outputs.result.detections)


def test_a_stream_restart_during_calibration_starts_a_new_clip_of_the_recording(tmp_path):
    """A bag looping while ~/calibrate records: the recording ran on across the restart as one clip,
    with motion measured across the jump."""
    engine = AnomalyEngine(load_config(overrides={"model_path": str(tmp_path / "learned.npz")}))
    engine.start_calibration(frames=40)
    normal = [image for image, *_ in scene_frames(2, 20, anomalies=False)]
    recording = engine.recording
    for loop in range(2):  # the same 20 stamps twice: time goes back at the loop
        for t, image in enumerate(normal):
            run(engine, InputFrame(image_msg(t + 1, image)))
    assert engine.counts["time_jumps_back"] == 1
    assert recording.clip_starts == [0, 20] and [name for name, _ in recording.clips()] == ["calibration 1",
                                                                                             "calibration 2"]
    assert all(len(list(frames())) == 20 for _, frames in recording.clips())
    assert engine.status.startswith("detecting") and "of 2 streams" in engine.status


def test_calibration_keeps_frames_compressed(tmp_path):
    config = load_config(overrides={"model_path": str(tmp_path / "m.npz"), "depth_source": "depth_image"})
    engine = AnomalyEngine(config)
    engine.start_calibration(frames=50)
    depth = np.full(FRAMES[0][0].shape[:2], 4.0, np.float32)
    for t in range(10):
        run(engine, InputFrame(image_msg(t), depth_msg(t, depth)))
    raw = sum(FRAMES[0][0].nbytes + depth.nbytes for _ in range(10))
    kept = sum(jpeg.nbytes + png.nbytes for jpeg, png, _ in engine.recording.frames)
    assert kept < raw / 4
    decoded = __import__("cv2").imdecode(engine.recording.frames[0][1], -1)
    assert decoded.dtype == np.uint16 and (decoded == 4000).all()  # millimetres, as a 16UC1 image


def test_a_model_path_that_does_not_exist_yet_means_no_model_yet(tmp_path):
    path = tmp_path / "robot" / "normal.npz"
    engine = AnomalyEngine(load_config(overrides={"model_path": str(path)}))
    assert engine.status == f"no model yet: call ~/calibrate to create {path}"
    assert run(engine, InputFrame(image_msg(0))) is None and engine.counts["not_fitted"] == 1
    engine.start_calibration(frames=30)
    for t, (image, *_rest) in enumerate(scene_frames(2, 30, anomalies=False)):
        run(engine, InputFrame(image_msg(t + 1, image)))
    assert path.is_file() and engine.status.startswith("detecting")


def test_detection_scores_are_confidences_in_0_1_monotone_in_the_anomaly_score(engine):
    scores = np.array([-5.0, 0.0, 1.0, 3.0, 50.0, np.nan])
    share = engine.pipeline.normal_share(scores)
    assert ((share >= 0) & (share <= 1)).all() and share[-1] == 0.0
    assert (np.diff(share[:-1]) >= 0).all() and share[0] == 0.0 and share[4] == 1.0
    # the operating threshold is the 0.99 quantile of normal frames' highest score: at least 99% of normal
    # objects score lower
    assert engine.pipeline.normal_share([engine.pipeline.threshold])[0] >= 0.99
    for t in range(len(FRAMES)):
        outputs = run(engine, InputFrame(image_msg(t)))
        detections = engine.messages(outputs, TYPES)["~/detections"].detections
        for detection in detections:
            assert 0.0 <= detection.results[0].hypothesis.score <= 1.0
        if detections:
            break
    assert detections, "the anomalies of the scene were detected"


def calibrate(engine, frames=30):
    engine.start_calibration(frames=frames)
    for t, (image, *_rest) in enumerate(scene_frames(2, frames, anomalies=False)):
        run(engine, InputFrame(image_msg(t + 1, image)))


def test_calibration_without_model_path_saves_per_node_and_a_restarted_node_finds_it(ros_home):
    """Two cameras calibrating without model_path wrote one ~/.ros/tao_ros/model.npz, one over the
    other, and after a restart neither had a model."""
    front = AnomalyEngine(load_config(overrides={"model_path": ""}), node_name="/front/anomaly_node")
    rear = AnomalyEngine(load_config(overrides={"model_path": ""}), node_name="/rear/anomaly_node")
    assert "saves to" in front.status and not front.pipeline.fitted
    calibrate(front)
    calibrate(rear)
    expected = ros_home / "tao_ros" / "front" / "anomaly_node" / "model.npz"
    assert expected.is_file() and front.config.model_path == str(expected)
    assert rear.config.model_path == str(ros_home / "tao_ros" / "rear" / "anomaly_node" / "model.npz")
    restarted = AnomalyEngine(load_config(overrides={"model_path": ""}), node_name="/front/anomaly_node")
    assert restarted.pipeline.fitted and restarted.status == "detecting"
    assert restarted.config.model_path == str(expected)
    assert run(restarted, InputFrame(image_msg(0))) is not None


def test_live_depth_is_paired_by_stamp_in_either_order(fitted_pipeline, tmp_path):
    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    engine = AnomalyEngine(load_config(overrides={"model_path": str(path), "use_depth": True}))
    depth = np.full(FRAMES[0][0].shape[:2], 5.0, np.float32)
    engine.submit_depth(depth_msg(0, depth))  # depth first
    engine.submit_image(image_msg(0))
    first = engine.slot.take(timeout=0)
    assert first.depth_msg is not None and first.image_msg.header.stamp == first.depth_msg.header.stamp
    engine.submit_image(image_msg(1))  # image first: waits for its depth
    assert engine.slot.take(timeout=0) is None
    engine.submit_depth(depth_msg(1, depth))
    second = engine.slot.take(timeout=0)
    assert second.depth_msg is not None and second.depth_msg.header.stamp.nanosec == 100_000_000


def test_a_silent_depth_topic_lets_frames_through_without_depth_and_says_why(fitted_pipeline, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    engine = AnomalyEngine(load_config(overrides={"model_path": str(path), "use_depth": True, "qos_depth": 3}))
    for t in range(8):
        engine.submit_image(image_msg(t))
        engine.step(timeout=0)
    assert engine.counts["processed"] >= 4 and engine.counts["without_depth"] == 5  # 3 wait for depth
    assert engine.problems() == []  # not silent for long yet
    monkeypatch.setattr(engine.liveness, "started", engine.liveness.started - 10)
    status = engine.diagnostics()["status"]
    assert "images arrive but no depth image for 10 s" in status and engine.diagnostics()["without_depth"] == "5"


def test_no_images_at_all_is_reported(engine, monkeypatch):
    monkeypatch.setattr(engine.liveness, "started", engine.liveness.started - 5)
    assert "no camera image for 5 s" in engine.diagnostics()["status"]


def test_restart_stream_forgets_frames_waiting_for_depth_or_the_worker(fitted_pipeline, tmp_path):
    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    engine = AnomalyEngine(load_config(overrides={"model_path": str(path), "use_depth": True}))
    engine.submit_image(image_msg(0))  # waits for its depth
    engine.submit(InputFrame(image_msg(1)))  # waits for the worker
    run(engine, InputFrame(image_msg(2)))
    engine.restart_stream()
    assert engine.slot.take(timeout=0) is None and engine.last_stamp is None
    depth = np.full(FRAMES[0][0].shape[:2], 5.0, np.float32)
    engine.submit_depth(depth_msg(0, depth))  # the old stream's image must not come back with it
    assert engine.slot.take(timeout=0) is None


def depth_engine(fitted_pipeline, tmp_path, **overrides):
    path = tmp_path / "model.npz"
    fitted_pipeline.save(path)
    return AnomalyEngine(load_config(overrides={"model_path": str(path), "use_depth": True, **overrides}))


def test_a_bag_played_with_loop_gives_the_same_outputs_with_depth_on_every_loop(fitted_pipeline, tmp_path):
    """After the first loop 9 of 10 frames went on without depth: the pairing kept the old stream's
    newest depth stamp."""
    engine = depth_engine(fitted_pipeline, tmp_path)
    depth = np.full(FRAMES[0][0].shape[:2], 5.0, np.float32)
    loops = []
    for _ in range(3):
        outputs = []
        for t in range(10):
            engine.submit_image(image_msg(t))  # the image first: it waits for its depth
            engine.submit_depth(depth_msg(t, depth))
            frame = engine.slot.take(timeout=0)
            assert frame is not None and frame.depth_msg is not None, (len(loops), t)
            engine.submit(frame)
            out = engine.step(timeout=0)
            # scores to 3 decimals: float32 optical flow may differ in its last bits between runs
            outputs.append((out.result.detections.xyxy.round(3).tolist(), out.result.scores.round(3).tolist()))
        loops.append(outputs)
    assert engine.counts["without_depth"] == 0 and engine.counts["time_jumps_back"] == 2
    assert loops[0] == loops[1] == loops[2]


def test_a_frame_in_flight_during_a_restart_is_never_published_nor_leaves_its_state(engine, monkeypatch):
    """deactivate's 5 s join timed out with a frame still in the models: the stream was reset, then
    the frame wrote the old stream's state back (and was published to a torn-down table)."""
    import threading

    run(engine, InputFrame(image_msg(0)))
    inside, release = threading.Event(), threading.Event()
    process = engine.pipeline.process

    def slow(frame):
        inside.set()
        release.wait(10)
        return process(frame)

    monkeypatch.setattr(engine.pipeline, "process", slow)
    published = []
    engine.submit(InputFrame(image_msg(1)))
    worker = threading.Thread(target=engine.step, kwargs={"timeout": 1, "publish": published.append})
    worker.start()
    assert inside.wait(10)
    engine.restart_stream("lifecycle stop")  # does not wait for the frame
    release.set()
    worker.join(10)
    assert published == [] and engine.counts["discarded_after_restart"] == 1
    assert engine.pipeline.previous_gray is None and engine.pipeline.frame_index == 0  # its state is gone too
    monkeypatch.setattr(engine.pipeline, "process", process)
    engine.submit(InputFrame(image_msg(2)))
    assert engine.step(timeout=0, publish=published.append) is not None and len(published) == 1


def test_repeated_or_zero_stamps_with_depth_are_counted_by_the_documented_rule(fitted_pipeline, tmp_path):
    """A driver stamping every image 0: frames waiting for depth overwrote each other, counted nowhere."""
    engine = depth_engine(fitted_pipeline, tmp_path)
    depth = np.full(FRAMES[0][0].shape[:2], 5.0, np.float32)
    zero = [numpy_to_image(TYPES, make_header(TYPES, 0, "cam"), FRAMES[t][0], "bgr8") for t in range(3)]
    for msg in zero:
        engine.submit_image(msg)
    engine.submit_depth(numpy_to_image(TYPES, make_header(TYPES, 0, "cam"), depth, "32FC1"))
    frame = engine.slot.take(timeout=0)
    assert frame.image_msg is zero[-1] and frame.depth_msg is not None  # the newest frame of the stamp wins
    assert engine.counts["repeated_stamps"] == 2 and engine.diagnostics()["repeated_stamps"] == "2"
    assert engine.counts["time_jumps_back"] == 0


def test_rates_are_over_the_last_seconds_and_a_stalled_camera_shows_zero(engine, monkeypatch):
    import tao_ros.ros.diagnostics as diagnostics

    for t in range(10):
        engine.submit_image(image_msg(t))
        engine.step(timeout=0)
    values = engine.diagnostics()
    assert float(values["input_rate_hz"]) == 10 / 5 and float(values["processed_rate_hz"]) == 10 / 5
    now = time.monotonic()
    monkeypatch.setattr(diagnostics.time, "monotonic", lambda: now + 6.0)  # the camera stalls for 6 s
    values = engine.diagnostics()
    assert values["input_rate_hz"] == "0.00" and values["processed_rate_hz"] == "0.00"
    assert "no camera image for 6 s" in values["status"]


def camera_info_msg(intrinsics, t=0, **fields):
    k = np.array([intrinsics.fx, 0, intrinsics.cx, 0, intrinsics.fy, intrinsics.cy, 0, 0, 1.0])
    values = dict(width=intrinsics.width, height=intrinsics.height, distortion_model="plumb_bob", d=np.zeros(5), k=k,
                  r=np.eye(3).reshape(-1), p=np.zeros(12))
    values.update(fields)
    return TYPES.new("sensor_msgs/msg/CameraInfo", header=make_header(TYPES, t, "cam"), **values)


def test_3d_detections_are_where_the_anomalous_objects_are_stamped_like_their_frame(fitted_pipeline, tmp_path):
    from tao_ros.eval.location import instance_under, location_errors, true_extents
    from tao_ros.eval.synth import Camera

    # a lower threshold than the shipped one, for more anomalous boxes to place: this is about where
    # they are put, not how many are found
    engine = depth_engine(fitted_pipeline, tmp_path, threshold_quantile=0.9)
    intrinsics = Camera().intrinsics()
    engine.submit_camera_info(camera_info_msg(intrinsics))
    errors, published, published_at = [], 0, []
    for t, (image, depth, instances, anomalous_ids) in enumerate(FRAMES):
        outputs = run(engine, InputFrame(image_msg(t), depth_msg(t, depth)))
        messages = engine.messages(outputs, TYPES, markers=t % 2 == 0)
        assert ("~/markers" in messages) == (t % 2 == 0)
        located = messages["~/detections_3d"]
        published_at.append(len(located.detections))
        assert located.header.stamp == messages["~/detections"].header.stamp and located.header.frame_id == "cam"
        boxes = {d.id: d.bbox for d in messages["~/detections"].detections}
        anomalous = np.where(np.isin(instances, list(anomalous_ids)), instances, 0)
        truth = true_extents(anomalous, depth, intrinsics)
        for detection in located.detections:
            published += 1
            box = boxes[detection.id]  # the same id as the 2D detection
            x, y, w, h = box.center.position.x, box.center.position.y, box.size_x, box.size_y
            true_id = int(instance_under(np.array([[x - w / 2, y - h / 2, x + w / 2, y + h / 2]]), anomalous)[0])
            if true_id:
                position = detection.bbox.center.position
                errors.append(location_errors([position.x, position.y, position.z], [0, 0, 0], *truth[true_id])[1])
    assert len(errors) >= 10 and np.median(errors) < 0.05, errors
    assert engine.counts["objects_3d"] == published and engine.counts["objects_without_3d"] == 0
    assert not any("3D" in problem for problem in engine.problems())
    # the stream again, its busiest frame with a depth image of holes only: 2D detections, no 3D, counted
    engine = depth_engine(fitted_pipeline, tmp_path, threshold_quantile=0.9)
    engine.submit_camera_info(camera_info_msg(intrinsics))
    t = int(np.argmax(published_at))
    for before in range(t):
        run(engine, InputFrame(image_msg(before), depth_msg(before, FRAMES[before][1])))
    messages = engine.messages(run(engine, InputFrame(image_msg(t), depth_msg(t, np.zeros_like(FRAMES[t][1])))), TYPES)
    missing = len(messages["~/detections"].detections)
    assert missing > 0 and messages["~/detections_3d"].detections == []
    assert engine.counts["objects_without_3d"] == missing and engine.diagnostics()["objects_without_3d"] == str(missing)


def test_without_a_valid_camera_info_the_2d_outputs_go_on_and_the_diagnostics_say_why(fitted_pipeline, tmp_path):
    from tao_ros.eval.synth import Camera

    engine = depth_engine(fitted_pipeline, tmp_path)
    image, depth, *_ = FRAMES[12]

    def outputs_of(t):
        messages = engine.messages(run(engine, InputFrame(image_msg(t), depth_msg(t, depth))), TYPES)
        assert "~/detections" in messages and "~/anomaly_mask" in messages
        return messages

    assert "~/detections_3d" not in outputs_of(0)
    assert not any("3D" in p for p in engine.problems())  # not missing for long yet
    engine.camera.started -= 10
    assert any("no 3D outputs: no camera_info received" in p for p in engine.problems())
    engine.submit_camera_info(camera_info_msg(Camera().intrinsics(), k=np.zeros(9)))
    assert engine.bad_input["camera_info"] == 1 and "~/detections_3d" not in outputs_of(1)
    assert any("invalid camera_info" in p and "not calibrated" in p for p in engine.problems())
    engine.submit_camera_info(camera_info_msg(Camera(width=720, height=480).intrinsics()))
    assert "~/detections_3d" not in outputs_of(2)
    assert any("720x480 images but the depth image is 360x240" in p for p in engine.problems())
    engine.submit_camera_info(camera_info_msg(Camera().intrinsics()))
    assert "~/detections_3d" in outputs_of(3) and not any("3D" in p for p in engine.problems())


def test_a_frame_whose_outputs_fail_to_publish_is_counted_and_the_next_frames_go_on(engine):
    """An exception while building or publishing a frame's outputs (a bad depth range, a publisher
    that raises) must not end the worker: the engine counts it and processes the next frame."""
    published = []

    def flaky(outputs):
        if len(published) == 0 and engine.counts["worker_errors"] == 0:
            raise ValueError("publisher broke")
        published.append(outputs)

    for t in range(6):
        engine.submit(InputFrame(image_msg(t)))
        engine.step(timeout=0, publish=flaky)  # never raises
    assert engine.counts["worker_errors"] == 1 and len(published) == 5
    values = engine.diagnostics()
    assert values["worker_errors"] == "1"
    assert values["level"] == "WARN" and "1 errors since the last report" in values["level_reason"]
    assert engine.diagnostics()["level"] == "OK"  # nothing new since: detecting


def test_diagnostics_level_is_error_when_the_worker_died_or_nothing_is_published_while_images_arrive(engine,
                                                                                                    monkeypatch):
    for t in range(3):
        engine.submit_image(image_msg(t))
        engine.step(timeout=0, publish=lambda outputs: None)
    assert engine.diagnostics()["level"] == "OK"
    assert engine.diagnostics(worker_alive=False)["level"] == "ERROR"
    # images keep arriving, but every frame fails in the worker for longer than the stall limit
    monkeypatch.setattr(engine.liveness, "last_output", engine.liveness.last_output - 10)
    values = engine.diagnostics()
    assert values["level"] == "ERROR" and "no outputs for 10 s" in values["level_reason"]


def test_diagnostics_warn_while_no_model_is_fitted(tmp_path):
    engine = AnomalyEngine(load_config(overrides={"model_path": str(tmp_path / "none.npz")}))
    values = engine.diagnostics()
    assert values["level"] == "WARN" and "not detecting" in values["level_reason"]


def test_a_problem_is_logged_once_per_period_whatever_number_its_text_carries(engine, monkeypatch, caplog):
    """'no camera image for 3 s', then 4 s, 5 s, ...: one kind of problem, one log line per period."""
    import logging

    caplog.set_level(logging.WARNING, logger="tao_ros.ros.engine")
    for stalled in range(3, 9):
        monkeypatch.setattr(engine.liveness, "started", time.monotonic() - stalled)
        assert f"no camera image for {stalled} s" in engine.diagnostics()["status"]
    assert sum("no camera image" in r.getMessage() for r in caplog.records) == 1
    assert len(engine.warnings.last) <= 2


def test_the_throttle_table_stays_bounded():
    from tao_ros.ros.diagnostics import ThrottledLog

    throttle = ThrottledLog(max_kinds=4)
    for i in range(100):
        throttle.warn(f"kind {i}", "message")
    assert len(throttle.last) == 4 and len(throttle.suppressed) <= 4


@pytest.mark.parametrize("slop, paired", [(0.05, True), (0.0, False)])
def test_live_depth_stamped_a_millisecond_after_its_image_is_paired_within_sync_slop(fitted_pipeline, tmp_path,
                                                                                     slop, paired):
    engine = depth_engine(fitted_pipeline, tmp_path, sync_slop=slop)
    depth = np.full(FRAMES[0][0].shape[:2], 5.0, np.float32)
    with_depth = []
    for t in range(6):
        stamp = 1_000_000_000 + t * 100_000_000
        engine.submit_image(image_msg(t))
        engine.submit_depth(numpy_to_image(TYPES, make_header(TYPES, stamp + 1_000_000, "cam"), depth, "32FC1"))
        outputs = engine.step(timeout=0)
        if outputs is not None:
            with_depth.append(outputs.depth is not None)
    assert with_depth and all(d == paired for d in with_depth)


def test_every_anomalous_object_is_published_a_box_standing_in_for_a_mask_and_tracked_ones_keep_their_label():
    """An anomalous object the segmenter gave no mask was never published; an object the segmenter
    still tracked after the detector lost it was published as "object"."""
    from tao_ros.core.pipeline import AnomalyPipeline
    from tao_ros.ros.handoff import FrameOutputs
    from tao_ros.ros.outputs import output_messages
    from tao_ros.types import Detections, FrameResult

    height, width = 60, 80
    instance = np.zeros((height, width), np.uint16)
    instance[10:20, 10:20] = 3  # a moving anomalous object, masked
    instance[30:50, 60:70] = 7  # followed by the segmenter, no longer detected
    merged = Detections(np.array([[8.0, 8, 22, 22], [40, 30, 52, 44]]), labels=np.array(["bicycle", "cart"]),
                        ids=np.array([3, 5]))  # 5: still, the foreground segmenter masks nothing of it
    result = FrameResult(4, merged, np.array([9.0, 8.0]), {}, np.array([True, True]), merged, np.array([9.0, 8.0]),
                         [], instance, np.array([3, 7]), np.array([9.0, 6.0]), ["bicycle", "skateboard"])
    header = make_header(TYPES, 1_000_000_000, "cam")
    pipeline = AnomalyPipeline(load_config())
    pipeline.training_totals = np.linspace(0, 10, 104)
    messages, _ = output_messages(FrameOutputs(header, result, np.zeros((height, width, 3), np.uint8), None),
                                  pipeline, TYPES)
    published = {d.id: d.results[0].hypothesis.class_id for d in messages["~/detections"].detections}
    assert published == {"3": "bicycle", "7": "skateboard", "5": "cart"}
    anomaly = np.frombuffer(bytes(messages["~/anomaly_mask"].data), np.uint8).reshape(height, width)
    assert anomaly[35, 45] == 255 and anomaly[15, 15] == 255 and anomaly[5, 5] == 0  # the box stands in for 5's mask


def test_the_full_frame_masks_are_built_only_when_asked(engine):
    outputs = run(engine, InputFrame(image_msg(0)))
    for t in range(1, 12):
        outputs = run(engine, InputFrame(image_msg(t)))
    assert set(engine.messages(outputs, TYPES, masks=False)) == {"~/detections"}
    assert set(engine.messages(outputs, TYPES)) == {"~/detections", "~/instance_mask", "~/anomaly_mask"}
