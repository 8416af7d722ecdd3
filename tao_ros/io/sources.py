"""Frame sources: video files, frame folders, folders of clip folders, rosbag2 topics.

A source expands to clips; a clip is a name and a way to iterate its frames (read lazily, so a
clip can be read twice without holding it in memory).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tao_ros.core.pipeline import StreamFrame
from tao_ros.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"}
NOT_CAMERA = {"depth", "ground_truth", "gt", "mask", "masks", "overlay", "instance_mask", "anomaly_mask"}
"""Topic name parts that mark an image topic as something other than the camera."""
IMAGE_TYPES = {"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"}


@dataclass
class Clip:
    """A named sequence of frames from one source.

    Frames that cannot be decoded (a truncated JPEG, a corrupt message) are skipped with a warning
    naming them and listed in ``skipped`` (of the latest ``frames()`` pass); the others keep their
    index in the source, so a skipped frame leaves a gap in the outputs, never a shift.
    """

    name: str
    path: Path
    kind: str  # "frames", "video" or "bag"
    length: int | None = None
    image_topic: str | None = None
    depth_topic: str | None = None
    sync_slop: float = 0.0  # most seconds between a bag's image and the depth image paired with it
    skipped: list[str] = field(default_factory=list)

    def frames(self) -> Iterator[StreamFrame]:
        self.skipped = []
        if self.kind == "frames":
            return _folder_frames(self.path, self.skipped)
        if self.kind == "video":
            return _video_frames(self.path, self.length, self.skipped)
        return bag_frames(self.path, self.image_topic, self.depth_topic, self.skipped, self.sync_slop)


def natural_key(path: Path) -> list:
    """Sort key in the order people number files: ``2.jpg`` before ``10.jpg`` (ffmpeg's ``%d.jpg``),
    ``frame_9`` before ``frame_10``; zero-padded names sort as before."""
    import re

    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.name)]


def _images_in(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=natural_key)


def read_image(path: Path) -> np.ndarray:
    """[H, W, 3] uint8 BGR image of the file ``path``; InputError if it cannot be decoded whole."""
    from tao_ros.io.messages import decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return decode_image(data, str(path))


def _skip(skipped: list[str], what: str, reason: Exception) -> None:
    log.warning("skipped frame %s: %s", what, reason)
    skipped.append(what)


def _folder_frames(folder: Path, skipped: list[str]) -> Iterator[StreamFrame]:
    shape = None
    for index, path in enumerate(_images_in(folder)):
        try:
            image = read_image(path)
            if shape is not None and image.shape != shape:
                raise InputError(f"{image.shape[1]}x{image.shape[0]}, the clip's frames are {shape[1]}x{shape[0]}")
        except InputError as exc:
            _skip(skipped, str(path), exc)
            continue
        shape = image.shape
        yield StreamFrame(image, index=index)


def _video_frames(path: Path, length: int | None, skipped: list[str]) -> Iterator[StreamFrame]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"{path}: OpenCV cannot open this video")
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            yield StreamFrame(image, index=index)
            index += 1
    finally:
        capture.release()
    if length and index < length:  # a video decoder cannot resume after a corrupt frame
        _skip(skipped, f"{path} frames {index}..{length - 1}", InputError("the video could not be decoded further"))


def is_bag(path: Path) -> bool:
    return (path.is_dir() and (path / "metadata.yaml").exists()) or path.suffix in {".mcap", ".db3"}


def open_clips(source: str | Path, image_topic: str | None = None, depth_topic: str | None = None,
               prefix: str | None = None, sync_slop: float = 0.0) -> list[Clip]:
    """Expand ``source`` into clips; InputError saying what is accepted if it is none of them.

    A clip found inside a folder of clips is named by its path below ``source`` (``a/01`` and
    ``b/01``, never two ``01``): names are unique within a source and become output folders.
    ``sync_slop``: most seconds between a bag's image and depth stamps to pair them, as the node's
    parameter of that name pairs live topics."""
    path = Path(source)
    own = prefix or ""  # this clip's name below the source
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if is_bag(path):
        topic, depth, length = find_topics(path, image_topic, depth_topic)
        name = path.stem if path.is_file() else path.name
        return [Clip(own + name, path, "bag", length, topic, depth, sync_slop)]
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"{path}: not a video ({', '.join(sorted(VIDEO_SUFFIXES))}), frame folder or rosbag2")
        import cv2

        capture = cv2.VideoCapture(str(path))
        length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        capture.release()
        return [Clip(own + path.stem, path, "video", length)]
    images = _images_in(path)
    if images:
        return [Clip(own + path.name, path, "frames", len(images))]
    clips = []
    inner = "" if prefix is None else f"{prefix}{path.name}/"  # the source folder itself is not in the names
    for sub in sorted((p for p in path.iterdir() if p.is_dir()), key=natural_key):
        try:
            clips += open_clips(sub, image_topic, depth_topic, inner, sync_slop)
        except InputError as exc:
            if not str(exc).endswith(NOTHING_FOUND):
                raise
            log.warning("ignored %s: it holds no frames", sub)
    if not clips:
        raise InputError(f"{path}: {NOTHING_FOUND}")
    return clips


NOTHING_FOUND = (f"holds no frames: looked for images ({', '.join(sorted(IMAGE_SUFFIXES))}), videos "
                 f"({', '.join(sorted(VIDEO_SUFFIXES))}), rosbag2 folders and folders of these")


def find_topics(path: Path, image_topic: str | None, depth_topic: str | None) -> tuple[str, str | None, int]:
    """Pick the camera (and depth) topic of a bag -> (image topic, depth topic or None, message count)."""
    from rosbags.highlevel import AnyReader

    with AnyReader([path]) as reader:
        topics = {c.topic: c for c in reader.connections}
        images = sorted(t for t, c in topics.items() if c.msgtype in IMAGE_TYPES)
        if image_topic is None:
            cameras = [t for t in images if not NOT_CAMERA.intersection(t.lower().strip("/").split("/"))]
            if len(cameras) != 1:
                raise InputError(f"{path}: {len(cameras)} camera topics {cameras}; choose one with --image-topic")
            image_topic = cameras[0]
        if image_topic not in topics:
            raise InputError(f"{path}: no topic {image_topic!r}; image topics are {images}")
        if depth_topic is not None and depth_topic not in topics:
            raise InputError(f"{path}: no topic {depth_topic!r}; image topics are {images}")
        return image_topic, depth_topic, topics[image_topic].msgcount


CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"


def bag_camera_info(path: Path, depth_topic: str, topic: str | None = None):
    """The first message (a fixed camera's calibration) of a bag's camera_info for ``depth_topic``:
    ``topic`` if given (InputError if the bag lacks it), else the one beside the depth topic
    (``/camera/depth/camera_info`` for ``/camera/depth/image_raw``), else one beside its parent
    (``/camera/camera_info``), else the bag's only one. None if there is none to take, or it is empty."""
    from rosbags.highlevel import AnyReader

    from tao_ros.io.camera_info import camera_info_beside

    with AnyReader([path]) as reader:
        infos = sorted({c.topic for c in reader.connections if c.msgtype == CAMERA_INFO_TYPE})
        if topic is not None and topic not in infos:
            raise InputError(f"{path}: no camera_info topic {topic!r}; its sensor_msgs/CameraInfo topics are {infos}")
        chosen = topic
        if chosen is None:
            beside = camera_info_beside(depth_topic)
            found = [t for t in (beside, camera_info_beside(beside.rsplit("/", 1)[0])) if t in infos]
            chosen = found[0] if found else infos[0] if len(infos) == 1 else None
        connections = [c for c in reader.connections if c.topic == chosen]
        for connection, _, raw in reader.messages(connections=connections):
            return reader.deserialize(raw, connection.msgtype)
    return None


def paired_messages(reader, image_topic: str, depth_topic: str | None, sync_slop: float = 0.0,
                    max_pending: int = 64) -> Iterator[tuple[int, object, object | None, bool]]:
    """(log time, image message, depth message or None, compressed?) per camera message of an open
    ``rosbags`` reader, paired with the depth message whose stamp is nearest, within ``sync_slop``
    seconds (``StampPairer``, the node's pairing of live topics), in either log order."""
    from tao_ros.io.messages import header_stamp_ns
    from tao_ros.io.pairing import StampPairer

    connections = [c for c in reader.connections if c.topic in {image_topic, depth_topic}]
    pairer = StampPairer(depth_topic is not None, int(sync_slop * 1e9), max_pending=max_pending)
    for connection, log_time, raw in reader.messages(connections=connections):
        msg = reader.deserialize(raw, connection.msgtype)
        stamp = header_stamp_ns(msg.header)
        if connection.topic == depth_topic:
            ready = pairer.add_depth(stamp, msg)
        else:
            ready = pairer.add_image(stamp, (log_time, msg, connection.msgtype.endswith("CompressedImage")))
        for (log_time_, image_msg, compressed), depth_msg in ready:
            yield log_time_, image_msg, depth_msg, compressed
    for (log_time_, image_msg, compressed), depth_msg in pairer.flush():
        yield log_time_, image_msg, depth_msg, compressed


def bag_frames(path: Path, image_topic: str, depth_topic: str | None = None,
               skipped: list[str] | None = None, sync_slop: float = 0.0) -> Iterator[StreamFrame]:
    """Frames of a bag's camera topic, with their depth images (paired within ``sync_slop``
    seconds), indexed by message position; a message that does not convert is skipped (warning,
    appended to ``skipped``). Frames left without depth are counted and said at the end."""
    from rosbags.highlevel import AnyReader

    from tao_ros.io.messages import compressed_to_bgr, image_to_bgr, image_to_numpy

    skipped = [] if skipped is None else skipped
    without_depth = 0
    with AnyReader([path]) as reader:
        for index, (_, image_msg, depth_msg, compressed) in enumerate(
                paired_messages(reader, image_topic, depth_topic, sync_slop)):
            without_depth += depth_topic is not None and depth_msg is None
            try:
                image = compressed_to_bgr(image_msg) if compressed else image_to_bgr(image_msg)
                depth = None if depth_msg is None else image_to_numpy(depth_msg)
            except InputError as exc:
                _skip(skipped, f"{path} {image_topic} message {index}", exc)
                continue
            yield StreamFrame(image, depth, index=index)
    if without_depth:
        log.warning(unpaired_note(path, without_depth, depth_topic, sync_slop))


def unpaired_note(path: Path, frames: int, depth_topic: str, sync_slop: float) -> str:
    """Why ``frames`` camera frames of a bag have no depth (and so no 3D outputs), and what to do."""
    return (f"{path}: {frames} camera frames had no {depth_topic} message stamped within sync_slop ({sync_slop:g} s) "
            "of them: they have no depth and no 3D outputs; if the depth is stamped apart from the image "
            "(drivers without hardware sync), raise sync_slop (-p sync_slop=0.05)")
