"""The class label as evidence: how rare an object's class is among normal objects.

A pretrained detector's labels on normal footage are noisy (on Ped2's normal clips: skis 254,
motorcycle 155, dog 70 among 28,768 objects) and what is rare differs by scene (bags are normal on
a campus avenue). So the feature is learned, not listed: the frequency of each label among the
normal objects seen in 'fit', with a pseudo-count for every label (and for labels never seen), and
the object's label is its track's majority label, not one frame's. The value is the label's
surprise, -log of its frequency: a negative log density like the density models' scores, so that it
enters the sum on the same footing after standardization.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from tao_ros.core.tracking import LabelVotes
from tao_ros.errors import InputError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext


class LabelFeature:
    """Surprise of the object's (track's majority) label among normal objects' labels."""

    name = "label"
    columns = ("surprise",)
    params = {
        "prior": Param(1.0, "Pseudo-count of every label, seen or not: a label never seen among normal objects "
                            "is as rare as one seen once with prior 1.", minimum=1e-6),
    }

    def __init__(self, **params):
        self.p = params
        self.votes = LabelVotes()
        self.counts: Counter = Counter()
        self.learned: dict[str, int] = {}  # label -> normal objects with it
        self.surprise: dict[str, float] | None = None
        self.unseen = 0.0

    def reset(self) -> None:
        self.votes.reset()

    def collect(self, context: FrameContext, detections: Detections) -> None:
        self.counts.update(detections.labels.tolist())

    def fit(self) -> None:
        if not self.counts:
            raise InputError("label has no normal objects to learn label frequencies from: fit on more normal footage")
        self._learn(dict(self.counts))
        self.counts = Counter()

    def _learn(self, counts: dict[str, int]) -> None:
        self.learned = counts
        prior = self.p["prior"]
        total = sum(counts.values()) + prior * (len(counts) + 1)  # +1: the labels never seen, together
        self.surprise = {label: -np.log((n + prior) / total) for label, n in counts.items()}
        self.unseen = float(-np.log(prior / total))

    def state(self) -> dict[str, np.ndarray]:
        if self.surprise is None:
            return {}
        labels = sorted(self.learned)
        return {"labels": np.array(labels, dtype=np.str_),
                "counts": np.array([self.learned[k] for k in labels], dtype=np.int64)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self._learn(dict(zip(np.asarray(state["labels"]).tolist(), np.asarray(state["counts"]).tolist())))

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        if self.surprise is None:
            raise InputError("label is not fitted: run 'tao-ros fit' on normal footage first")
        labels = self.votes.vote(detections.ids, detections.labels)
        return np.array([[self.surprise.get(label, self.unseen)] for label in labels.tolist()]).reshape(-1, 1)


@hookimpl
def tao_ros_add_features():
    return [LabelFeature]
