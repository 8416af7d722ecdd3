"""Live camera and depth messages as they arrive: numbered into streams, paired by stamp
(``io.pairing``, as bags are), time jumps seen per topic, handed to the worker through the
newest-frame slot."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from tao_ros.config import Config
from tao_ros.io.messages import header_stamp_ns
from tao_ros.io.pairing import StampPairer
from tao_ros.ros.diagnostics import Liveness, ThrottledLog
from tao_ros.ros.handoff import InputFrame, LatestSlot


def message_stamp(msg) -> int:
    """Header stamp in nanoseconds; -1 for a message without a usable header (decoded, and
    dropped, later)."""
    try:
        return header_stamp_ns(msg.header)
    except Exception:  # noqa: BLE001 - any malformed header
        return -1


class Arrivals:
    """Frames of the current stream on their way to the worker. ``on_time_jump`` is called (with
    the lock held) when a topic's stamp goes back, before the message is added: it restarts the
    stream, and the message opens the new one. Thread-safe (callbacks of a multi-threaded executor)."""

    def __init__(self, config: Config, counts: Counter, warnings: ThrottledLog, liveness: Liveness,
                 on_time_jump: Callable[[str], None]):
        self.config, self.counts, self.warnings, self.liveness = config, counts, warnings, liveness
        self.on_time_jump = on_time_jump
        self.slot = LatestSlot()
        self.lock = threading.RLock()
        self.stream = 0  # number of the current stream
        self._new_pairing()

    def _new_pairing(self) -> None:
        self.pairer = StampPairer(self.config.use_depth, int(self.config.sync_slop * 1e9),
                                  max_pending=self.config.qos_depth)
        self.newest: dict[str, int] = {}  # topic -> newest stamp arrived in this stream

    def restart(self) -> None:
        """A new stream: frames waiting for depth or for the worker, and the newest stamps, are dropped."""
        with self.lock:
            self.stream += 1
            self._new_pairing()
            self.slot.take(timeout=0)

    def submit(self, frame: InputFrame) -> None:
        """Hand a frame to the worker (never blocks); an unprocessed older frame is dropped. Frames are
        numbered as received, so that the pipeline knows how many the worker skipped."""
        if frame.sequence is None:
            frame.sequence = self.counts["received"]
        if frame.stream is None:
            frame.stream = self.stream
        self.counts["received"] += 1
        self.liveness.received.tick()
        if self.slot.put(frame):
            self.counts["dropped_stale"] += 1

    def image(self, msg, compressed: bool = False) -> None:
        """A camera message from the live topic: handed on at once, or with use_depth once paired
        with the depth image of its stamp (or without it when none can come)."""
        self.liveness.image()
        self._arrived("image", msg, (msg, compressed))

    def depth(self, msg) -> None:
        """A depth message from the live topic (use_depth)."""
        self.liveness.depth()
        self._arrived("depth", msg, msg)

    def _arrived(self, topic: str, msg, item) -> None:
        stamp = message_stamp(msg)
        with self.lock:
            if stamp >= 0 and topic in self.newest and stamp < self.newest[topic]:
                self.counts["time_jumps_back"] += 1
                self.warnings.warn("time", f"time went backwards ({topic} stamp: bag loop or clock reset): "
                                           "restarting the stream")
                self.on_time_jump("time went backwards")
            if stamp >= 0:
                self.newest[topic] = stamp
            before = self.pairer.repeated
            ready = self.pairer.add_image(stamp, item) if topic == "image" else self.pairer.add_depth(stamp, item)
            repeated, stream = self.pairer.repeated - before, self.stream
        if repeated:
            self.counts["repeated_stamps"] += repeated
            self.warnings.warn("stamps", f"{topic} stamps repeat: the older frame of a stamp was replaced (use_depth "
                                         "pairs frames by stamp; fix the driver's stamps)")
        for (image_msg, compressed), depth_msg in ready:
            if self.config.use_depth and depth_msg is None:
                self.counts["without_depth"] += 1
            self.submit(InputFrame(image_msg, depth_msg, compressed, stream=stream))
