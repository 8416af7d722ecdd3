"""What passes between the node's callbacks and its worker: one camera frame's messages, the
newest-frame slot, and one processed frame's outputs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from tao_ros.types import FrameResult


@dataclass
class InputFrame:
    """Messages of one camera frame as received: image (raw or compressed) and optional depth."""

    image_msg: object
    depth_msg: object | None = None
    compressed: bool = False
    received: float = field(default_factory=time.monotonic)
    sequence: int | None = None  # number of the image among those received; None: numbered as processed
    stream: int | None = None  # the stream (see AnomalyEngine.restart_stream) it arrived in; None: the current one


@dataclass
class FrameOutputs:
    """The result of one frame and the header (stamp, frame_id) of the input it came from."""

    header: object
    result: FrameResult
    image: np.ndarray
    depth: np.ndarray | None = None  # the aligned depth image it was processed with


class LatestSlot:
    """A one-item hand-off where the newest item wins: a producer never waits and never queues."""

    def __init__(self):
        self._item = None
        self._condition = threading.Condition()
        self._closed = False

    def put(self, item) -> bool:
        """Store ``item``; True if it replaced one that was never taken (a dropped frame)."""
        with self._condition:
            dropped = self._item is not None
            self._item = item
            self._condition.notify()
            return dropped

    def take(self, timeout: float | None = None):
        """The newest item, waiting up to ``timeout`` seconds; None on time-out or once closed."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
