"""Synthetic scenes with exact ground truth, written as rosbag2 files.

A fixed camera looks down at a flat, textured ground. People-like shapes (body ellipse and head)
walk at normal speed; the test scene adds anomalies: much faster movers, odd-sized objects (a cart,
a large crate), objects entering mid-clip and overlapping objects. Rendering is a pinhole
projection, so sizes and image speeds follow perspective, and the aligned depth image is exact.

Topics: ``/camera/image_raw`` (bgr8), ``/camera/depth/image_raw`` (32FC1 metres),
``/camera/camera_info`` (the exact pinhole intrinsics, no distortion), ``/ground_truth/anomaly_instances`` (mono16: track id of each anomalous pixel, 0 elsewhere) and
``/ground_truth/instances`` (mono16: every object's track id). Seeded and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tao_ros.errors import InputError

CAMERA_TOPIC = "/camera/image_raw"
DEPTH_TOPIC = "/camera/depth/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"
GT_ANOMALY_TOPIC = "/ground_truth/anomaly_instances"
GT_INSTANCES_TOPIC = "/ground_truth/instances"
FRAME_ID = "camera_optical_frame"


@dataclass
class SceneObject:
    """An object moving on the ground plane (metres, camera at the origin, Z forward)."""

    track_id: int
    x: float
    z: float
    vx: float  # metres per frame
    vz: float
    height: float
    width: float
    shade: int
    anomalous: bool
    kind: str  # "person" or "box"
    start: int = 0


@dataclass(frozen=True)
class Camera:
    width: int = 360
    height: int = 240
    focal: float = 260.0
    mount_height: float = 3.0
    horizon_row: float = 50.0

    def intrinsics(self):
        """The exact pinhole intrinsics of the rendering (``core.localization.Intrinsics``): the
        optical axis is horizontal, through column width / 2 and the horizon row."""
        from tao_ros.core.localization import Intrinsics

        return Intrinsics(self.focal, self.focal, self.width / 2, self.horizon_row, self.width, self.height)

    def project(self, x: float, z: float) -> tuple[float, float]:
        """Ground point -> (column, row) of its image."""
        return self.width / 2 + self.focal * x / z, self.horizon_row + self.focal * self.mount_height / z

    def ground_depth(self) -> np.ndarray:
        """[H, W] float32 distance (Z, metres) of the ground at each pixel; far plane above the horizon."""
        rows = np.arange(self.height, dtype=np.float32)[:, None] - self.horizon_row
        depth = np.where(rows > 1, self.focal * self.mount_height / np.maximum(rows, 1), 80.0)
        return np.broadcast_to(np.minimum(depth, 80.0), (self.height, self.width)).astype(np.float32)


class Scene:
    """Generates frames, depth and ground truth of one clip."""

    FPS = 10.0
    WALK_SPEED = (1.0, 1.6)  # m/s

    def __init__(self, seed: int, frames: int, anomalies: bool, camera: Camera = Camera(), walkers: int = 9):
        self.rng = np.random.default_rng(seed)
        self.camera = camera
        self.frames = frames
        self.next_id = 1
        self.objects: list[SceneObject] = [self._walker() for _ in range(walkers)]
        if anomalies:
            self.objects += self._anomalies()
        self.background = self._background()
        self.ground_depth = camera.ground_depth()

    def _walker(self, start: int = 0) -> SceneObject:
        rng = self.rng
        speed = rng.uniform(*self.WALK_SPEED) / self.FPS
        angle = rng.choice([0.0, np.pi]) + rng.normal(0, 0.35) if rng.random() < 0.7 else rng.uniform(0, 2 * np.pi)
        obj = SceneObject(self.next_id, rng.uniform(-6, 6), rng.uniform(7, 24), speed * np.cos(angle),
                          speed * np.sin(angle) * 0.6, rng.uniform(1.6, 1.85), rng.uniform(0.45, 0.6),
                          int(rng.integers(20, 90)), False, "person", start)
        self.next_id += 1
        return obj

    def _anomalies(self) -> list[SceneObject]:
        rng, n = self.rng, self.frames
        specs = [  # (kind, height, width, speed m/s, start frame): fast movers, odd sizes, late entries
            ("person", 1.75, 0.6, 5.5, int(0.1 * n)),   # cyclist-like fast mover
            ("box", 1.0, 1.8, 1.2, int(0.35 * n)),      # cart: odd size, walking speed
            ("person", 1.7, 0.55, 6.5, int(0.6 * n)),   # a second fast mover, entering mid-clip
            ("box", 2.6, 2.6, 1.0, int(0.5 * n)),       # large crate
        ]
        objects = []
        for kind, height, width, speed, start in specs:
            direction = rng.choice([-1.0, 1.0])
            obj = SceneObject(self.next_id, -7.0 * direction, rng.uniform(9, 20), direction * speed / self.FPS,
                              rng.normal(0, 0.02), height, width, int(rng.integers(30, 70)), True, kind, start)
            self.next_id += 1
            objects.append(obj)
        return objects

    def _background(self) -> np.ndarray:
        cam, rng = self.camera, self.rng
        rows = np.arange(cam.height)[:, None]
        ground = 150 + 30 * (rows / cam.height) + rng.normal(0, 6, (cam.height, cam.width))
        import cv2

        ground = cv2.GaussianBlur(ground.astype(np.float32), (5, 5), 0)
        ground[rows[:, 0] < cam.horizon_row] = 95.0  # wall above the horizon
        tiles = (np.arange(cam.width)[None, :] % 40 == 0) | (rows % 25 == 0)
        ground[tiles & (rows >= cam.horizon_row)] -= 18
        return np.clip(ground, 0, 255).astype(np.float32)

    def _step(self, obj: SceneObject) -> None:
        obj.x += obj.vx
        obj.z += obj.vz
        if not obj.anomalous:  # normal walkers stay in view, turning back at the edges
            if abs(obj.x) > 6.5:
                obj.vx = -obj.vx
            if obj.z < 6.5 or obj.z > 26:
                obj.vz = -obj.vz

    def render(self):
        """Yield (image [H, W, 3] uint8 BGR, depth [H, W] float32 m, instances [H, W] uint16, anomalous ids)."""
        import cv2

        cam = self.camera
        for t in range(self.frames):
            image = self.background.copy()
            depth = self.ground_depth.copy()
            instances = np.zeros((cam.height, cam.width), np.uint16)
            visible = [o for o in self.objects if o.start <= t]
            for obj in sorted(visible, key=lambda o: -o.z):  # far to near: near objects occlude
                col, row = cam.project(obj.x, obj.z)
                h = cam.focal * obj.height / obj.z
                w = cam.focal * obj.width / obj.z
                mask = np.zeros((cam.height, cam.width), np.uint8)
                if obj.kind == "person":
                    sway = 0.08 * w * np.sin(0.9 * t + obj.track_id)
                    cv2.ellipse(mask, (int(round(col + sway)), int(round(row - 0.42 * h))),
                                (max(1, int(round(w / 2))), max(1, int(round(0.38 * h)))), 0, 0, 360, 1, -1)
                    cv2.circle(mask, (int(round(col)), int(round(row - 0.88 * h))), max(1, int(round(0.11 * h))), 1, -1)
                else:
                    cv2.rectangle(mask, (int(round(col - w / 2)), int(round(row - h))),
                                  (int(round(col + w / 2)), int(round(row))), 1, -1)
                inside = mask.astype(bool)
                ys, xs = np.nonzero(inside)
                if obj.kind == "person":  # clothing shading
                    image[inside] = obj.shade + 10 * np.sin(np.arange(len(ys)) / 7.0)
                else:  # a crate's planks: texture that moves with it
                    top, left = int(round(row - h)), int(round(col - w / 2))
                    image[inside] = obj.shade + 35 * (((ys - top) // 4 + (xs - left) // 4) % 2)
                depth[inside] = obj.z
                instances[inside] = obj.track_id
            for obj in visible:
                self._step(obj)
            noisy = np.clip(image + self.rng.normal(0, 2.0, image.shape), 0, 255).astype(np.uint8)
            anomalous = {o.track_id for o in self.objects if o.anomalous}
            yield cv2.cvtColor(noisy, cv2.COLOR_GRAY2BGR), depth, instances, anomalous


def write_scene_bag(path: Path, scene: Scene, storage: str = "sqlite3", camera_only: bool = False) -> Path:
    """Render ``scene`` into a new rosbag2 folder ``path`` (only the camera topic with
    ``camera_only``); returns it."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from tao_ros.io.messages import MessageTypes, numpy_to_image_fields

    path = Path(path)
    if path.exists():
        raise InputError(f"{path} exists: rosbag2 writes a new folder; remove it or choose another --output")
    typestore = get_typestore(Stores.ROS2_JAZZY)
    Image, Header, Time = (typestore.types[n] for n in
                           ("sensor_msgs/msg/Image", "std_msgs/msg/Header", "builtin_interfaces/msg/Time"))
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        names = (CAMERA_TOPIC,) if camera_only else (DEPTH_TOPIC, CAMERA_TOPIC, GT_ANOMALY_TOPIC, GT_INSTANCES_TOPIC)
        topics = {topic: writer.add_connection(topic, "sensor_msgs/msg/Image", typestore=typestore) for topic in names}
        if not camera_only:
            info_connection = writer.add_connection(CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=typestore)
        camera = scene.camera.intrinsics()
        k = np.array([camera.fx, 0, camera.cx, 0, camera.fy, camera.cy, 0, 0, 1], dtype=np.float64)
        p = np.array([camera.fx, 0, camera.cx, 0, 0, camera.fy, camera.cy, 0, 0, 0, 1, 0], dtype=np.float64)
        types = MessageTypes.from_typestore(typestore)
        for t, (image, depth, instances, anomalous_ids) in enumerate(scene.render()):
            stamp_ns = 1_700_000_000_000_000_000 + int(t * 1e9 / scene.FPS)
            header = Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
                            frame_id=FRAME_ID)
            anomaly = np.where(np.isin(instances, list(anomalous_ids)), instances, 0).astype(np.uint16)
            # depth first: a reader pairs each camera frame with the depth image of the same stamp
            for topic, array, encoding in ((DEPTH_TOPIC, depth, "32FC1"), (CAMERA_TOPIC, image, "bgr8"),
                                           (GT_ANOMALY_TOPIC, anomaly, "mono16"),
                                           (GT_INSTANCES_TOPIC, instances, "mono16")):
                if topic not in topics:
                    continue
                msg = Image(header=header, **numpy_to_image_fields(array, encoding))
                writer.write(topics[topic], stamp_ns, typestore.serialize_cdr(msg, "sensor_msgs/msg/Image"))
            if not camera_only:
                info = types.new("sensor_msgs/msg/CameraInfo", header=header, width=camera.width, height=camera.height,
                                 distortion_model="plumb_bob", d=np.zeros(5), k=k, r=np.eye(3).reshape(-1), p=p)
                writer.write(info_connection, stamp_ns, typestore.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
    return path


def synthesize(output: Path, seed: int = 0, train_frames: int = 600, test_frames: int = 300,
               storage: str = "sqlite3") -> tuple[Path, Path]:
    """Write ``output/normal`` (normal activity only) and ``output/test`` (with anomalies)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    normal = write_scene_bag(output / "normal", Scene(seed, train_frames, anomalies=False), storage)
    test = write_scene_bag(output / "test", Scene(seed + 1, test_frames, anomalies=True), storage)
    return normal, test
