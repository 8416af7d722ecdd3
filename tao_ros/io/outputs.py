"""Per-clip outputs of 'tao-ros run': ``objects.csv`` and ``masks/FFFFFF.png``."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from tao_ros.core.instances import instance_boxes
from tao_ros.core.localization import DepthRange, Intrinsics, locate_objects
from tao_ros.errors import InputError
from tao_ros.types import FrameResult

OBJECTS_HEADER = ["frame", "object_id", "x1", "y1", "x2", "y2", "score"]
LOCATION_HEADER = ["x", "y", "z", "size_x", "size_y", "size_z", "depth_pixels"]
"""Columns added when the clip has depth and intrinsics: centre and extent in the camera's optical
frame (metres), and the valid depth pixels they come from; empty for an object without a position."""


def object_rows(result: FrameResult) -> list[tuple[int, np.ndarray, float]]:
    """(object id, [4] box, score) per object of the frame: those the segmenter tracks with the boxes
    of their masks (the object id is the value of their pixels in masks/), the other detected
    objects with their detector boxes."""
    segmented = [(object_id, box, score) for object_id, box, score in instance_boxes(result) if np.isfinite(score)]
    tracked = set() if result.instance_ids is None else set(result.instance_ids.tolist())
    detected = [(int(object_id), box, float(score)) for object_id, box, score
                in zip(result.detections.ids, result.detections.xyxy, result.scores) if int(object_id) not in tracked]
    return detected + segmented


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` (and parents) and check that a file can be written in it, before any work
    starts; InputError saying which folder and why otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".tao_ros_write_check_"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to {folder}: {exc.strerror or exc}; choose another output") from None
    return folder


SOURCE_FILE = "source.json"


def completed_by(folder: Path) -> str | None:
    """The source whose complete outputs ``folder`` holds; None if it holds none (or they record no
    source: written by an older tao_ros)."""
    if not (folder / "objects.csv").is_file() or not (folder / SOURCE_FILE).is_file():
        return None
    try:
        return json.loads((folder / SOURCE_FILE).read_text()).get("source")
    except (ValueError, AttributeError):
        return None


class ClipWriter:
    """Writes one clip's ``objects.csv`` (one row per object per frame, anomalous or not, so that
    thresholds can be swept later) and, when the pipeline segments, ``masks/FFFFFF.png``.

    Objects the segmenter tracks are written with their mask-derived boxes; the other detected
    objects keep their detector boxes. Rows go to ``objects.csv.partial``, renamed to
    ``objects.csv`` only when the clip ends without error: an ``objects.csv`` is always complete.
    ``source.json`` next to it names the clip's source, so that ``--resume`` keeps a folder only
    for the source that wrote it (``completed_by``).
    """

    def __init__(self, folder: Path, source: Path | str | None = None, intrinsics: Intrinsics | None = None,
                 depth_range: DepthRange = DepthRange()):
        self.source = None if source is None else str(Path(source).resolve())
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.intrinsics, self.depth_range = intrinsics, depth_range
        self.partial = self.folder / "objects.csv.partial"
        self.handle = open(self.partial, "w", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(OBJECTS_HEADER + (LOCATION_HEADER if intrinsics is not None else []))
        self.located = self.not_located = 0  # objects given a 3D position or not (frames with depth)

    def write(self, result: FrameResult, depth: np.ndarray | None = None) -> None:
        """The frame's rows; with intrinsics, 3D columns from ``depth`` (empty in frames without)."""
        rows = object_rows(result)
        cells = [[result.frame_index, object_id, *(int(round(v)) for v in box), f"{score:.6g}"]
                 for object_id, box, score in rows]
        if self.intrinsics is not None:
            located = None
            if depth is not None and rows:
                located = locate_objects(result, np.array([box for _, box, _ in rows]),
                                         np.array([i for i, _, _ in rows]), depth, self.intrinsics, self.depth_range)
                self.located += int(located.located.sum())
                self.not_located += int((~located.located).sum())
            for i, row in enumerate(cells):
                if located is not None and located.located[i]:
                    row += [f"{v:.4f}" for v in (*located.centre[i], *located.size[i])] + [int(located.pixels[i])]
                else:
                    row += [""] * len(LOCATION_HEADER)
        self.writer.writerows(cells)
        if result.instance_mask is not None:
            import cv2

            masks = self.folder / "masks"
            masks.mkdir(exist_ok=True)
            cv2.imwrite(str(masks / f"{result.frame_index:06d}.png"), result.instance_mask.astype(np.uint16))

    def close(self, complete: bool = True) -> None:
        """Close the file; ``complete``: the clip ended, rename it to ``objects.csv``."""
        self.handle.close()
        if complete:
            if self.source is not None:
                (self.folder / SOURCE_FILE).write_text(json.dumps({"source": self.source}))
            os.replace(self.partial, self.folder / "objects.csv")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(complete=exc_type is None)
