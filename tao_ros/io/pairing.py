"""Pairing of camera images with aligned depth images by stamp: one code path for bags and live topics.

An aligned depth image carries the stamp of the camera image it was registered to (within
``slop``). An image waits for its depth, boundedly, whichever arrives first; an image whose depth
cannot come any more (a newer depth arrived, or too many images wait) is released without it.

Stamps identify frames here, so a driver that repeats a stamp (or stamps every frame 0) cannot be
paired frame by frame. The rule: a waiting image (or depth image) with the stamp of a newer one is
replaced by it, the newer frame wins as the worker's newest-frame slot does, and every replaced
item is counted in ``repeated``.
"""

from __future__ import annotations

from collections import OrderedDict


class StampPairer:
    """Pairs image items with depth items of the same stamp (nanoseconds, within ``slop_ns``).

    ``add_image`` and ``add_depth`` return the (image item, depth item or None) pairs that became
    ready, oldest first; ``flush`` releases every waiting image. At most ``max_pending`` items of
    each kind are kept.
    """

    def __init__(self, with_depth: bool, slop_ns: int = 0, max_pending: int = 64):
        self.with_depth = with_depth
        self.slop_ns = slop_ns
        self.max_pending = max_pending
        self.images: OrderedDict[int, object] = OrderedDict()
        self.depths: OrderedDict[int, object] = OrderedDict()
        self.newest_depth = None
        self.repeated = 0  # items replaced by a newer one of the same stamp

    def _depth_for(self, stamp: int):
        if stamp in self.depths:
            return self.depths.pop(stamp)
        near = [s for s in self.depths if abs(s - stamp) <= self.slop_ns]
        return self.depths.pop(min(near, key=lambda s: abs(s - stamp))) if near else None

    def _ready(self) -> list[tuple[object, object | None]]:
        ready = []
        while self.images:
            stamp = next(iter(self.images))
            depth = self._depth_for(stamp) if self.with_depth else None
            depth_cannot_come = (not self.with_depth or (self.newest_depth is not None and
                                                         self.newest_depth > stamp + self.slop_ns)
                                 or len(self.images) > self.max_pending)
            if depth is None and not depth_cannot_come:
                break
            ready.append((self.images.pop(stamp), depth))
        return ready

    def add_image(self, stamp: int, item) -> list[tuple[object, object | None]]:
        self.repeated += stamp in self.images
        self.images.pop(stamp, None)  # re-added last: it is the newest
        self.images[stamp] = item
        return self._ready()

    def add_depth(self, stamp: int, item) -> list[tuple[object, object | None]]:
        self.repeated += stamp in self.depths
        self.depths.pop(stamp, None)
        self.depths[stamp] = item
        self.newest_depth = stamp if self.newest_depth is None else max(self.newest_depth, stamp)
        while len(self.depths) > self.max_pending:
            self.depths.popitem(last=False)
        return self._ready()

    def flush(self) -> list[tuple[object, object | None]]:
        ready = [(item, self._depth_for(stamp) if self.with_depth else None) for stamp, item in self.images.items()]
        self.images.clear()
        return ready
