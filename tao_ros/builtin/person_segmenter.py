"""A prompt-based person segmenter from a real model: MediaPipe BlazePose's person segmentation.

The BlazePose landmark model that the pose feature runs also outputs, for each person crop, a
segmentation of the person (logits over the crop). For a box prompt on a person tall enough for
the model, this segmenter returns that mask, inside the box; for every other object, and people too
small for it, the weight-free foreground mask. Objects are followed as the foreground segmenter
follows them (its registry: the detector's track ids between prompts).
"""

from __future__ import annotations

import numpy as np

from tao_ros.builtin.pose import BlazePose
from tao_ros.builtin.segmenters import ForegroundSegmenter
from tao_ros.builtin.shared_models import shared_model
from tao_ros.builtin.weights import require_file, require_runtime
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import FrameContext, MaskCrop


class PersonSegmenter(ForegroundSegmenter):
    """People by BlazePose's segmentation inside their box, everything else by the weight-free
    foreground mask (see the module docstring). A still person (gesturing in place) is segmented
    whole, where the foreground mask has only what moves."""

    name = "person"
    params = {
        **ForegroundSegmenter.params,
        "weights": Param("", "BlazePose landmark model with a segmentation output (pose_landmark_full or "
                             "_heavy .tflite): the pose feature's pose.weights.", content=True),
        "threads": Param(2, "CPU threads of the BlazePose runtime.", minimum=1, runtime=True),
        "labels": Param(["person"], "Labels of the objects segmented as people."),
        "min_height": Param(64, "People lower than this (pixels) get the foreground mask: a quarter of the "
                                "model's 256 px crop, below which the person is a few dozen pixels of it.",
                            minimum=1),
        "pose_margin": Param(0.25, "Crops are the box padded to a square plus this share of it on each side "
                                   "(as the pose feature's margin).", minimum=0.0),
    }

    def __init__(self, weights, threads, labels, min_height, pose_margin, **params):
        super().__init__(**params)
        path = require_file(weights)
        require_runtime(path)
        self.shared = shared_model(BlazePose, str(path), threads, pose_margin)  # the pose feature's, where alike
        self.model = self.shared.model
        self.labels, self.min_height = labels, min_height
        with self.shared.lock:  # fails now if it cannot
            self.model.masks(np.zeros((64, 64, 3), np.uint8), np.array([[8.0, 8.0, 56.0, 56.0]]))

    def masks(self, context: FrameContext, ids: list[int], boxes: np.ndarray) -> dict[int, MaskCrop]:
        """BlazePose's masks of the people tall enough (those the pose feature ran the same model file on
        this frame from its inference, the others in one batched call), the foreground mask of the rest."""
        people = np.array([self.objects.objects[i].label in self.labels for i in ids], dtype=bool) \
            & (boxes[:, 3] - boxes[:, 1] >= self.min_height)
        with self.shared.lock:
            found = self.model.masks(context.image, boxes[people], context.cache)
        masks = dict(zip(np.array(ids, dtype=np.int64)[people].tolist(), found))
        for object_id, box, person in zip(ids, boxes, people):
            if not person:
                masks[object_id] = self.segment(context, box)
        return masks


@hookimpl
def tao_ros_add_segmenters():
    return [PersonSegmenter]
