"""Per-clip outputs of 'tao-ros run': ``objects.csv`` and ``masks/FFFFFF.png``."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from tao_ros.core.instances import instance_boxes
from tao_ros.errors import InputError
from tao_ros.types import FrameResult

OBJECTS_HEADER = ["frame", "object_id", "x1", "y1", "x2", "y2", "score"]


def segmented_rows(result: FrameResult) -> list[list]:
    """Rows for objects the segmenter tracks: boxes derived from their masks (written under the
    object id, the value its pixels have in masks/), their objects' scores."""
    return [[result.frame_index, object_id, *(int(v) for v in box), f"{score:.6g}"]
            for object_id, box, score in instance_boxes(result) if np.isfinite(score)]


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

    def __init__(self, folder: Path, source: Path | str | None = None):
        self.source = None if source is None else str(Path(source).resolve())
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.partial = self.folder / "objects.csv.partial"
        self.handle = open(self.partial, "w", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(OBJECTS_HEADER)

    def write(self, result: FrameResult) -> None:
        segmented = segmented_rows(result)
        tracked = set() if result.instance_ids is None else set(result.instance_ids.tolist())
        for i in range(len(result.detections)):
            object_id = int(result.detections.ids[i])
            if object_id in tracked:
                continue
            x1, y1, x2, y2 = (int(round(v)) for v in result.detections.xyxy[i])
            self.writer.writerow([result.frame_index, object_id, x1, y1, x2, y2, f"{result.scores[i]:.6g}"])
        self.writer.writerows(segmented)
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
