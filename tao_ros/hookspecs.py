"""The plugin contract of tao_ros, grouped by pipeline phase.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names match the hooks
below, registered under the entry-point group ``tao_ros.plugins``::

    # setup.py of a third-party package
    entry_points={"tao_ros.plugins": ["my_plugins = my_package.tao_plugins"]}

Each hook is called once, when the plugin manager starts, and returns the classes the plugin
provides for one phase. The pipeline instantiates a class when the configuration names it
(``detector: motion``), passing the parameters configured under its name (``motion.min_area: 40``);
the classes' ``params`` declare which parameters exist. The classes follow the protocols below.
Built-in plugins register through the same entry-point group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pluggy

from tao_ros.types import Detections, FrameContext, MaskCrop, Prompt

PROJECT = "tao_ros"
ENTRY_POINT_GROUP = "tao_ros.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class Param:
    """A parameter a plugin class accepts: its default (which fixes its type) and what it means.

    ``runtime``: it sets how the plugin runs, not what it computes (CPU threads, a device; a
    parameter named ``device`` always is): it is no part of a fitted model's identity, so a model
    fitted with 2 threads loads with 1. ``content``: a file (weights, a checkpoint) a model is
    identified by the content of (SHA-256), not its path: the same weights at another path load,
    other weights at the same path do not.
    """

    default: Any
    doc: str
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    runtime: bool = False
    content: bool = False


# ----------------------------------------------------------------------------------------------
# Protocols the provided classes follow. Every class has ``name`` (unique within its phase) and
# ``params``; its constructor takes those parameters as keyword arguments.
# ----------------------------------------------------------------------------------------------


@runtime_checkable
class Detector(Protocol):
    """Finds objects in a frame."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Param]]

    def detect(self, context: FrameContext) -> Detections:
        """Objects in ``context.image``; may set ``context.foreground`` ([H, W] bool)."""

    def reset(self) -> None:
        """Forget the stream seen so far (new clip, new resolution)."""


@runtime_checkable
class DepthSource(Protocol):
    """Estimates each object's distance from the camera."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Param]]

    def fit(self, detections: list[Detections], image_shape: tuple[int, int]) -> None:
        """Learn from the detections of normal frames (may do nothing)."""

    def estimate(self, context: FrameContext, detections: Detections) -> np.ndarray:
        """[N] depth of each object (metres, or relative units), NaN where unknown."""

    def state(self) -> dict[str, np.ndarray]:
        """Fitted state as named arrays (stored in the model file; empty if stateless)."""

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state`` returned."""


@runtime_checkable
class Feature(Protocol):
    """Describes each object by a fixed-length vector."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Param]]
    columns: ClassVar[tuple[str, ...]]  # names of the vector's components

    def extract(self, context: FrameContext, detections: Detections, depth: np.ndarray) -> np.ndarray:
        """[N, len(columns)] feature vectors; a row of NaN where the object cannot be described yet."""

    def reset(self) -> None:
        """Forget per-object history (new clip)."""


@runtime_checkable
class LearnedFeature(Feature, Protocol):
    """A Feature that first learns from normal footage (e.g. a small network); optional.

    During 'fit', before any ``extract``, ``collect`` sees every normal frame's objects (the same pass
    in which the depth source learns), then ``fit`` is called once; the learned state is stored in
    the model file as arrays and restored with ``load_state``.
    """

    def collect(self, context: FrameContext, detections: Detections) -> None:
        """Keep what is needed to learn from this normal frame's objects (bounded memory)."""

    def fit(self) -> None:
        """Learn from what ``collect`` kept; raise InputError if it is not enough."""

    def state(self) -> dict[str, np.ndarray]:
        """Learned state as named arrays (stored in the model file)."""

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state`` returned."""


@runtime_checkable
class Scorer(Protocol):
    """A density model of normal feature vectors: higher score = lower density = more anomalous."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Param]]

    def fit(self, features: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Fit on [N, D] normal vectors; ``groups`` [N] are chunks of normal footage numbered in time
        order, a gap between clips (numbers next to each other: footage next to each other).

        Returns [N] training scores computed without self-matches (each group scored without it and
        its neighbouring groups, ``scorers.held_out_scores``, when there are several groups;
        leave-one-out otherwise), used to standardize test scores and set the threshold.
        """

    def score(self, features: np.ndarray) -> np.ndarray:
        """[N, D] vectors -> [N] anomaly scores."""

    def state(self) -> dict[str, np.ndarray]:
        """Fitted model as named arrays."""

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state`` returned."""


@runtime_checkable
class Segmenter(Protocol):
    """Turns box prompts into instance masks tracked from frame to frame."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Param]]

    def update(self, context: FrameContext, prompts: list[Prompt], detections: Detections
               ) -> dict[int, MaskCrop | np.ndarray]:
        """Add ``prompts`` (made at this frame) and segment the frame.

        ``detections`` are the frame's anomalous objects (after merging), for segmenters that
        follow the detector between prompts. Returns object id -> its mask for every object
        tracked now: a ``MaskCrop`` (a box and the float32 logits, > 0 = object, or bool mask
        inside it: the cost of every later step is then the box's, not the frame's), or an [H, W]
        array over the whole frame (cropped by the pipeline, at the frame's cost per object). The
        pipeline resolves overlaps and numbers the instances. Objects lost or no longer anomalous
        for the segmenter's patience are dropped, not returned with empty masks.
        """

    def reset(self) -> None:
        """Drop every tracked object."""


# ----------------------------------------------------------------------------------------------
# Hooks, one per phase, in pipeline order.
# ----------------------------------------------------------------------------------------------


@hookspec
def tao_ros_add_detectors() -> list[type[Detector]]:
    """Phase 1, detection. Called once at start-up.

    Returns:
        Detector classes this plugin provides (see ``Detector``).
    """


@hookspec
def tao_ros_add_depth_sources() -> list[type[DepthSource]]:
    """Phase 2, description: depth. Called once at start-up.

    Returns:
        DepthSource classes this plugin provides (see ``DepthSource``).
    """


@hookspec
def tao_ros_add_features() -> list[type[Feature]]:
    """Phase 2, description: features. Called once at start-up.

    Returns:
        Feature classes this plugin provides (see ``Feature``).
    """


@hookspec
def tao_ros_add_scorers() -> list[type[Scorer]]:
    """Phase 3, scoring. Called once at start-up.

    Returns:
        Scorer classes this plugin provides (see ``Scorer``).
    """


@hookspec
def tao_ros_add_segmenters() -> list[type[Segmenter]]:
    """Phase 4, segmentation and tracking. Called once at start-up.

    Returns:
        Segmenter classes this plugin provides (see ``Segmenter``).
    """


KINDS: dict[str, tuple[str, type]] = {
    "detector": ("tao_ros_add_detectors", Detector),
    "depth": ("tao_ros_add_depth_sources", DepthSource),
    "feature": ("tao_ros_add_features", Feature),
    "scorer": ("tao_ros_add_scorers", Scorer),
    "segmenter": ("tao_ros_add_segmenters", Segmenter),
}
"""Plugin kind -> (hook that registers it, protocol its classes follow)."""
