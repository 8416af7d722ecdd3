"""What the node says about itself: throttled warnings, recent input and output rates, why nothing
comes out, and the key/value report published on /diagnostics."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter, deque

log = logging.getLogger("tao_ros.ros.engine")


class ThrottledLog:
    """Logs a kind of problem at most once per ``period`` seconds, with how often it happened. The
    kind is a fixed name, never the message (which may carry numbers); the ``max_kinds`` least
    recently logged kinds are remembered, so that the table stays bounded whatever callers pass."""

    def __init__(self, period: float = 5.0, max_kinds: int = 256):
        self.period = period
        self.max_kinds = max_kinds
        self.last: dict[str, float] = {}
        self.suppressed: Counter = Counter()

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -1e9) >= self.period:
            extra = f" ({self.suppressed[kind]} more since last report)" if self.suppressed[kind] else ""
            log.warning("%s%s", message, extra)
            self.last.pop(kind, None)
            self.last[kind] = now  # re-inserted: dict order = least recently logged first
            self.suppressed[kind] = 0
            while len(self.last) > self.max_kinds:
                self.suppressed.pop(oldest := next(iter(self.last)), None)
                del self.last[oldest]
        else:
            self.suppressed[kind] += 1


class RecentRate:
    """Events per second over the last ``window`` seconds (so a stalled camera shows 0, not its
    average since start-up); at most ``limit`` event times are kept."""

    def __init__(self, window: float = 5.0, limit: int = 10_000):
        self.window = window
        self.times: deque[float] = deque(maxlen=limit)

    def tick(self, now: float | None = None) -> None:
        self.times.append(time.monotonic() if now is None else now)

    def hz(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self.times and self.times[0] < now - self.window:
            self.times.popleft()
        return len(self.times) / self.window


class Liveness:
    """When images and depth last arrived, and the recent rates of frames received and processed."""

    def __init__(self, window: float = 5.0):
        self.started = time.monotonic()
        self.last_image: float | None = None
        self.last_depth: float | None = None
        self.last_output: float | None = None
        self.received, self.processed = RecentRate(window), RecentRate(window)

    def published(self) -> None:
        self.last_output = time.monotonic()

    def output_age(self) -> float:
        """Seconds since the last frame's outputs were published (since start-up if none was)."""
        return time.monotonic() - (self.last_output or self.started)

    def image(self) -> None:
        self.last_image = time.monotonic()

    def depth(self) -> None:
        self.last_depth = time.monotonic()

    def problems(self, use_depth: bool, silence: float = 2.0) -> list[str]:
        """Why nothing (or less than asked) comes out: no images, or images but no depth, for more
        than ``silence`` seconds."""
        now = time.monotonic()
        no_image, no_depth = now - (self.last_image or self.started), now - (self.last_depth or self.started)
        if no_image > silence:
            return [f"no camera image for {no_image:.0f} s: check the 'image' remapping and qos_reliability"]
        if use_depth and no_depth > silence:
            return [f"images arrive but no depth image for {no_depth:.0f} s: check the 'depth' remapping; frames "
                    "are processed without depth"]
        return []


class Latency:
    """Seconds per stage, each an exponential moving average over about the last 10 frames."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def update(self, timings: dict[str, float], **more: float) -> None:
        for stage, seconds in {**timings, **more}.items():
            last = self.seconds.get(stage)
            self.seconds[stage] = seconds if last is None else 0.9 * last + 0.1 * seconds


def loaded_torch():
    """The torch module if a plugin already imported it, else None (never imports torch)."""
    return sys.modules.get("torch")


def gpu_memory_mb() -> str:
    torch = loaded_torch()
    if torch is None or not torch.cuda.is_available():
        return "n/a"
    return f"{torch.cuda.memory_allocated() / 2**20:.0f}"


def free_gpu_memory() -> None:
    torch = loaded_torch()
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


LEVELS = ("OK", "WARN", "ERROR")


def health(worker_alive: bool, detecting: bool, problems: list[str], liveness: Liveness, new_errors: int,
           stall: float = 5.0) -> tuple[str, str]:
    """The diagnostics level (one of ``LEVELS``) and its reason. ERROR: the worker thread is dead,
    or images arrive while detecting but no frame has been published for ``stall`` seconds. WARN:
    not detecting (no model yet, calibrating), a problem (a silent topic, no 3D), or plugin,
    pipeline or worker errors since the last report (``new_errors``). OK otherwise."""
    if not worker_alive:
        return "ERROR", "the worker thread has stopped: nothing is processed; restart the node"
    receiving = liveness.last_image is not None and time.monotonic() - liveness.last_image <= stall
    if detecting and receiving and liveness.output_age() > stall:
        return "ERROR", f"images arrive but no outputs for {liveness.output_age():.0f} s: see the errors logged"
    if new_errors > 0:
        return "WARN", f"{new_errors} errors since the last report: see the log and the error counters"
    if problems:
        return "WARN", problems[0]
    if not detecting:
        return "WARN", "not detecting: no fitted model yet, or calibrating"
    return "OK", "detecting"


COUNTERS = ("received", "processed", "dropped_stale", "without_depth", "repeated_stamps", "time_jumps_back",
            "stream_restarts", "discarded_after_restart", "pipeline_errors", "worker_errors", "objects_3d",
            "objects_without_3d")


def report(status: str, problems: list[str], liveness: Liveness, counts: Counter, bad_input: Counter,
           plugin_errors: int, tracked_objects: int, latency: dict[str, float]) -> dict[str, str]:
    """Key -> value of the node's state for /diagnostics."""
    values = {"status": "; ".join([status, *problems]),
              "input_rate_hz": f"{liveness.received.hz():.2f}", "processed_rate_hz": f"{liveness.processed.hz():.2f}",
              "rate_window_s": f"{liveness.received.window:g}"}
    values.update({name: str(counts[name]) for name in COUNTERS})
    values["dropped_bad_input"] = str(sum(bad_input.values()))
    values.update({f"bad_input_{kind}": str(n) for kind, n in bad_input.items()})
    values["plugin_errors"] = str(plugin_errors)
    values["tracked_objects"] = str(tracked_objects)
    values.update({f"latency_{stage}_ms": f"{seconds * 1000:.1f}" for stage, seconds in latency.items()})
    values["gpu_memory_mb"] = gpu_memory_mb()
    return values
