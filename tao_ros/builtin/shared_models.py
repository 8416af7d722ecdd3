"""Neural models loaded once per process and shared by every pipeline that asks for the same ones.

The cameras of one process (``multi_anomaly_node``) each run their own pipeline: their own stream
state, density model and threshold. The detector, pose and appearance models hold no per-camera
state, so one instance serves them all: four cameras cost one camera's model memory.

A model is known by how it was built: its loading function, its file (resolved path, size and modification
time: a file replaced on disk is loaded anew) and every argument of its loading. Calls into a
shared model go one at a time, in the order they were asked for (``FairLock``): LiteRT's
interpreter and ultralytics' predictor keep state between calls, and under load a camera that has
just been served queues behind the others, so that every camera gets its share of the model.

Models with per-stream state are not shared: ultralytics' own trackers (``detector: ultralytics``)
and SAM2's streams keep one model each. A model is freed when the last plugin holding it is.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


class FairLock:
    """A lock granted in the order it was asked for (``threading.Lock`` favours no waiter: the thread
    that just released it often takes it again). Not reentrant."""

    def __init__(self):
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> FairLock:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._turns.wait_for(lambda: self._serving == ticket)
        return self

    def __exit__(self, *exc) -> None:
        with self._turns:
            self._serving += 1
            self._turns.notify_all()


@dataclass(eq=False)
class SharedModel:
    """One loaded model and the lock its calls take (``with shared.lock: shared.model(...)``)."""

    model: Any
    lock: FairLock = field(default_factory=FairLock)


_loaded: weakref.WeakValueDictionary[tuple, SharedModel] = weakref.WeakValueDictionary()
_loading = threading.Lock()


def file_identity(weights: str) -> tuple:
    """A weights argument -> what identifies its content cheaply: (resolved path, size, modification
    time) for a file, the text itself for anything else (a model config such as ``yolov8n.yaml``)."""
    path = os.path.realpath(os.path.expanduser(weights)) if weights else ""
    if path and os.path.isfile(path):
        stat = os.stat(path)
        return path, stat.st_size, stat.st_mtime_ns
    return (weights,)


def shared_model(load: Callable[..., Any], weights: str, *arguments: Hashable) -> SharedModel:
    """The process's ``load(weights, *arguments)``, called the first time it is asked for (the
    arguments are everything the model depends on); errors of ``load`` propagate and nothing is kept."""
    key = (f"{load.__module__}.{load.__qualname__}", *file_identity(weights), *arguments)
    with _loading:  # two cameras configuring at once load a model once
        entry = _loaded.get(key)
        if entry is None:
            entry = SharedModel(load(weights, *arguments))
            _loaded[key] = entry
    return entry
