"""Ground-truth readers: UCSD Ped1/Ped2, CUHK Avenue, ShanghaiTech, object tracks, rosbag topics.

Every reader yields ``ClipTruth``: the clip's length, its anomalous regions (with track ids) and,
where the dataset has them, pixel masks. Where only pixel masks exist, regions are the connected
components of each frame's mask and tracks link components across frames by overlap
(``derived_tracks`` is then True, and the report says so). A component smaller than
``MIN_REGION_PIXELS`` is an annotation speck, not an object: it is no region (nor a track of its own),
its pixels still count in the frame labels and pixel metrics, and the report counts them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tao_ros.errors import InputError
from tao_ros.eval.metrics import Region

FORMATS = ("ped2", "avenue", "shanghaitech", "tracks", "bag")
# A 5x5 patch. No detector boxes a speck smaller (a box needs about the speck's own size to reach the
# IoU of 0.1 that counts a region found), so each such speck would be a track no method can find. On
# the dev scenes the one speck is 6 px (Avenue 17, frame 103, 28 px beside the annotated person) and
# the smallest real region 159 px (Ped2 03): every value from 7 to 159 derives the same regions.
MIN_REGION_PIXELS = 25


@dataclass
class ClipTruth:
    """Ground truth of one clip. ``masks`` returns [T, H, W] bool (None without pixel truth)."""

    name: str
    num_frames: int
    regions: list[Region]
    masks: Callable[[], np.ndarray] | None = None
    derived_tracks: bool = False
    specks: int = 0  # mask components smaller than MIN_REGION_PIXELS, left out of the regions


def regions_from_masks(clip: str, masks: np.ndarray, link_iou: float = 0.1,
                       min_pixels: int = MIN_REGION_PIXELS) -> tuple[list[Region], int]:
    """[T, H, W] bool masks -> (regions, specks): connected components of at least ``min_pixels``
    pixels per frame (inclusive boxes), linked into tracks by box IoU >= ``link_iou`` with the previous
    frame's components (optimal matching); and how many smaller components were left out."""
    import cv2
    from scipy.optimize import linear_sum_assignment

    from tao_ros.eval.metrics import iou_inclusive

    regions, previous, previous_tracks, next_track, specks = [], np.zeros((0, 4)), [], 1, 0
    for frame, mask in enumerate(masks):
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        objects = stats[1:][stats[1:, cv2.CC_STAT_AREA] >= min_pixels]
        specks += len(stats) - 1 - len(objects)
        boxes = np.array([[s[0], s[1], s[0] + s[2] - 1, s[1] + s[3] - 1] for s in objects], dtype=np.float64)
        boxes = boxes.reshape(-1, 4)
        tracks = [0] * len(boxes)
        if len(boxes) and len(previous):
            iou = np.stack([iou_inclusive(b, previous) for b in boxes])
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= link_iou:
                    tracks[r] = previous_tracks[c]
        for k in range(len(boxes)):
            if not tracks[k]:
                tracks[k], next_track = next_track, next_track + 1
            regions.append(Region(clip, frame, tracks[k], boxes[k]))
        previous, previous_tracks = boxes, tracks
    return regions, specks


def _masks_clip(name: str, load: Callable[[], np.ndarray]) -> ClipTruth:
    masks = load()
    regions, specks = regions_from_masks(name, masks)
    return ClipTruth(name, len(masks), regions, load, derived_tracks=True, specks=specks)


def read_ped2(root: Path) -> Iterator[ClipTruth]:
    """UCSD Ped1/Ped2: ``NN.npz`` files (key ``mask``, [T, H, W] bool) in ``root`` or
    ``root/testing/pixel_gt_npz``; or the original layout's ``TestNNN_gt/*.bmp`` folders."""
    import cv2

    for folder in (root, root / "testing" / "pixel_gt_npz"):
        files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
        if files:
            for path in files:
                yield _masks_clip(path.stem, lambda p=path: np.load(p, allow_pickle=False)["mask"].astype(bool))
            return
    for folder in (root, root / "Test"):
        gt_dirs = sorted(p for p in folder.glob("Test*_gt") if p.is_dir()) if folder.is_dir() else []
        if gt_dirs:
            for gt_dir in gt_dirs:
                def load(d=gt_dir):
                    return np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0 for p in sorted(d.glob("*.bmp"))])
                yield _masks_clip(gt_dir.name[:-3], load)
            return
    raise InputError(f"{root}: no UCSD ground truth (NN.npz files, testing/pixel_gt_npz/ or TestNNN_gt/ folders)")


def read_avenue(root: Path) -> Iterator[ClipTruth]:
    """CUHK Avenue: ``testing_label_mask/N_label.mat`` with ``volLabel`` (one mask per frame)."""
    from scipy.io import loadmat

    folder = root / "testing_label_mask" if (root / "testing_label_mask").is_dir() else root
    files = sorted(folder.glob("*_label.mat"), key=lambda p: int(p.stem.split("_")[0]))
    if not files:
        raise InputError(f"{root}: no Avenue ground truth (testing_label_mask/N_label.mat)")
    for path in files:
        def load(p=path):
            cells = loadmat(str(p))["volLabel"].ravel()
            return np.stack([np.asarray(c) > 0 for c in cells])
        yield _masks_clip(f"{int(path.stem.split('_')[0]):02d}", load)


def read_shanghaitech(root: Path) -> Iterator[ClipTruth]:
    """ShanghaiTech: ``test_pixel_mask/CLIP.npy`` ([T, H, W]); ``test_frame_mask`` is implied by it."""
    folder = root / "test_pixel_mask" if (root / "test_pixel_mask").is_dir() else root
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise InputError(f"{root}: no ShanghaiTech ground truth (test_pixel_mask/*.npy)")
    for path in files:
        yield _masks_clip(path.stem, lambda p=path: np.load(p, allow_pickle=False) > 0)


def read_tracks(root: Path) -> Iterator[ClipTruth]:
    """Object tracks: ``CLIP.txt`` rows ``track_id,frame,x1,y1,x2,y2`` (0-based frames, inclusive
    corners, no header) and ``num_frames.csv`` (header ``clip,num_frames``)."""
    lengths_path = root / "num_frames.csv"
    if not lengths_path.is_file():
        raise InputError(f"{root}: tracks ground truth needs num_frames.csv (header clip,num_frames)")
    with open(lengths_path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["clip", "num_frames"]:
            raise InputError(f"{lengths_path}:1: header must be 'clip,num_frames', got {header}")
        lengths = {}
        for line, row in enumerate(reader, start=2):
            try:
                lengths[row[0]] = int(row[1])
            except (IndexError, ValueError):
                raise InputError(f"{lengths_path}:{line}: expected 'clip,num_frames', got {row}") from None
    for clip, num_frames in lengths.items():
        path = root / f"{clip}.txt"
        regions = []
        if path.is_file():
            with open(path, newline="") as handle:
                for line, row in enumerate(csv.reader(handle), start=1):
                    if not row:
                        continue
                    try:
                        track, frame, x1, y1, x2, y2 = (float(v) for v in row)
                    except ValueError:
                        raise InputError(f"{path}:{line}: expected 6 numbers track_id,frame,x1,y1,x2,y2, "
                                         f"got {row}") from None
                    if not 0 <= frame < num_frames:
                        raise InputError(f"{path}:{line}: frame {int(frame)} outside 0..{num_frames - 1}")
                    if x2 < x1 or y2 < y1:
                        raise InputError(f"{path}:{line}: box has x2 < x1 or y2 < y1")
                    regions.append(Region(clip, int(frame), int(track), np.array([x1, y1, x2, y2])))
        yield ClipTruth(clip, num_frames, regions)


def read_bag(root: Path, topic: str | None = None) -> Iterator[ClipTruth]:
    """rosbag2 (or a folder of them) with a mono16 instance-id topic of anomalous objects
    (default ``/ground_truth/anomaly_instances``): exact masks and tracks (instance ids)."""
    from rosbags.highlevel import AnyReader

    from tao_ros.eval.synth import GT_ANOMALY_TOPIC
    from tao_ros.io.sources import is_bag
    from tao_ros.io.messages import image_to_numpy

    bags = [root] if is_bag(root) else sorted(p for p in root.iterdir() if is_bag(p))
    if not bags:
        raise InputError(f"{root}: not a rosbag2 nor a folder of rosbag2s")
    topic = topic or GT_ANOMALY_TOPIC
    for bag in bags:
        with AnyReader([bag]) as reader:
            connections = [c for c in reader.connections if c.topic == topic]
            if not connections:
                raise InputError(f"{bag}: no ground-truth topic {topic!r}")
            instances = np.stack([image_to_numpy(reader.deserialize(raw, c.msgtype))
                                  for c, _, raw in reader.messages(connections=connections)])
        name = bag.stem if bag.is_file() else bag.name
        regions = []
        for frame, image in enumerate(instances):
            for track in np.unique(image[image > 0]):
                ys, xs = np.nonzero(image == track)
                regions.append(Region(name, frame, int(track), np.array([xs.min(), ys.min(), xs.max(), ys.max()],
                                                                        dtype=np.float64)))
        yield ClipTruth(name, len(instances), regions, lambda m=instances > 0: m)


READERS = {"ped2": read_ped2, "avenue": read_avenue, "shanghaitech": read_shanghaitech,
           "tracks": read_tracks, "bag": read_bag}


def guess_format(root: Path) -> str:
    """Ground-truth format of ``root`` from its files; InputError listing the formats if unknown."""
    from tao_ros.io.sources import is_bag

    if is_bag(root) or (root.is_dir() and any(is_bag(p) for p in root.iterdir())):
        return "bag"
    if (root / "num_frames.csv").is_file():
        return "tracks"
    if (root / "testing_label_mask").is_dir() or any(root.glob("*_label.mat")):
        return "avenue"
    if (root / "test_pixel_mask").is_dir() or any(root.glob("*.npy")):
        return "shanghaitech"
    if any(root.glob("*.npz")) or (root / "testing" / "pixel_gt_npz").is_dir() or any(root.glob("Test*_gt")):
        return "ped2"
    raise InputError(f"{root}: cannot tell the ground-truth format; pass --gt-format, one of {list(FORMATS)}")


def read_ground_truth(root: str | Path, fmt: str | None = None) -> list[ClipTruth]:
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: ground truth not found")
    fmt = fmt or guess_format(root)
    if fmt not in READERS:
        raise InputError(f"ground-truth format {fmt!r} unknown; choose from {list(FORMATS)}")
    return list(READERS[fmt](root))
