"""Anomaly detection metrics: RBDC/TBDC (Ramachandra & Jones, WACV 2020), pixel- and frame-level.

Boxes here are inclusive pixel indices ``[x1, y1, x2, y2]`` with the "+1" area convention, as the
Street Scene evaluation uses; convert ``tao-ros`` boxes (x2/y2 exclusive) by subtracting 1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

REGION_IOU = 0.1
TRACK_FRACTION = 0.1


def iou_inclusive(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[4] and [N, 4] inclusive boxes -> [N] IoU with areas (x2 - x1 + 1) * (y2 - y1 + 1)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + 1
    h = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + 1
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    return inter / (area + areas - inter)


@dataclass
class Region:
    """A ground-truth anomalous region: clip, frame, track id, inclusive box."""

    clip: str
    frame: int
    track: int
    box: np.ndarray


@dataclass
class Detection:
    """A scored predicted box: clip, frame, inclusive box, score."""

    clip: str
    frame: int
    box: np.ndarray
    score: float


@dataclass
class DetectionCurve:
    """Detection rate vs false-positive rate per frame, at each distinct score threshold (descending)."""

    thresholds: np.ndarray
    fpr: np.ndarray
    region_rate: np.ndarray
    track_rate: np.ndarray
    rbdc: float = 0.0
    tbdc: float = 0.0
    at_threshold: dict = field(default_factory=dict)


def area_to_fpr_one(fpr: np.ndarray, rate: np.ndarray) -> float:
    """Area under rate(fpr) for fpr in [0, 1] by trapezoids: the curve starts at (0, 0), is cut at
    fpr = 1 (interpolated) and extended flat to 1 if it stops before."""
    x = np.concatenate([[0.0], fpr])
    y = np.concatenate([[0.0], rate])
    if x[-1] < 1.0:
        x, y = np.append(x, 1.0), np.append(y, y[-1])
    inside = x <= 1.0
    if not inside.all():
        first_out = np.argmax(~inside)
        x0, x1, y0, y1 = x[first_out - 1], x[first_out], y[first_out - 1], y[first_out]
        y_at_one = y0 + (y1 - y0) * (1.0 - x0) / (x1 - x0) if x1 > x0 else y1
        x, y = np.append(x[:first_out], 1.0), np.append(y[:first_out], y_at_one)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def rbdc_tbdc(detections: list[Detection], regions: list[Region], total_frames: int,
              operating_threshold: float | None = None) -> DetectionCurve:
    """RBDC and TBDC over all clips.

    Detections are taken in descending score order. One whose IoU with a region of its frame is
    >= 0.1 covers every such region not covered yet (one true positive per newly covered region);
    one that reaches no region is a false positive; one whose regions were all covered already
    counts as neither. A track is detected once >= 10% of its regions are covered.
    FPR = false positives / ``total_frames``.
    """
    if total_frames <= 0:
        raise ValueError("total_frames must be positive")
    by_frame: dict[tuple[str, int], list[int]] = {}
    for index, region in enumerate(regions):
        by_frame.setdefault((region.clip, region.frame), []).append(index)
    track_keys = sorted({(r.clip, r.track) for r in regions})
    track_index = {key: i for i, key in enumerate(track_keys)}
    track_of = np.array([track_index[(r.clip, r.track)] for r in regions], dtype=np.int64)
    track_size = np.bincount(track_of, minlength=len(track_keys)) if regions else np.zeros(0)
    track_covered = np.zeros(len(track_keys))
    covered = np.zeros(len(regions), dtype=bool)
    region_boxes = np.array([r.box for r in regions], dtype=np.float64).reshape(-1, 4)

    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    thresholds, fpr, region_rate, track_rate = [], [], [], []
    false_positives, covered_count, detected_tracks = 0, 0, 0
    for position, i in enumerate(order):
        det = detections[i]
        candidates = by_frame.get((det.clip, det.frame), [])
        hits = [] if not candidates else \
            [candidates[j] for j in np.flatnonzero(iou_inclusive(det.box, region_boxes[candidates]) >= REGION_IOU)]
        if not hits:
            false_positives += 1
        for r in hits:
            if not covered[r]:
                covered[r] = True
                covered_count += 1
                t = track_of[r]
                before = track_covered[t] >= TRACK_FRACTION * track_size[t]
                track_covered[t] += 1
                detected_tracks += int(not before and track_covered[t] >= TRACK_FRACTION * track_size[t])
        last_of_score = position + 1 == len(order) or detections[order[position + 1]].score != det.score
        if last_of_score:  # ties enter together: one curve point per distinct threshold
            thresholds.append(det.score)
            fpr.append(false_positives / total_frames)
            region_rate.append(covered_count / len(regions) if regions else 0.0)
            track_rate.append(detected_tracks / len(track_keys) if track_keys else 0.0)
    curve = DetectionCurve(np.array(thresholds), np.array(fpr), np.array(region_rate), np.array(track_rate))
    curve.rbdc = area_to_fpr_one(curve.fpr, curve.region_rate)
    curve.tbdc = area_to_fpr_one(curve.fpr, curve.track_rate)
    if operating_threshold is not None:
        reached = np.flatnonzero(curve.thresholds >= operating_threshold)
        k = reached[-1] if len(reached) else None
        curve.at_threshold = {
            "threshold": operating_threshold,
            "fpr": float(curve.fpr[k]) if k is not None else 0.0,
            "region_rate": float(curve.region_rate[k]) if k is not None else 0.0,
            "track_rate": float(curve.track_rate[k]) if k is not None else 0.0,
        }
    return curve


@dataclass
class OperatingPoint:
    """What a planner gets at one threshold: false boxes per frame and, per ground-truth track
    (clip, track id), its number of regions and the share of them with an anomalous box on them."""

    threshold: float
    false_boxes_per_frame: float
    tracks: dict[tuple[str, int], tuple[int, float]]


def operating_point(detections: list[Detection], regions: list[Region], total_frames: int, threshold: float,
                    merge_iou: float) -> OperatingPoint:
    """The detections scoring above ``threshold``, merged per frame as the pipeline merges anomalous
    boxes (IoU > ``merge_iou``, ``core.geometry.merge_overlapping``): a merged box with IoU >=
    ``REGION_IOU`` with a region of its frame flags it, one on no region is a false box."""
    from tao_ros.core.geometry import merge_overlapping  # scipy: not on 'tao-ros --help''s import path

    if total_frames <= 0:
        raise ValueError("total_frames must be positive")
    flagged: dict[tuple[str, int], list[np.ndarray]] = {}
    for det in detections:
        if det.score > threshold:
            flagged.setdefault((det.clip, det.frame), []).append(det.box)
    by_frame: dict[tuple[str, int], list[Region]] = {}
    for region in regions:
        by_frame.setdefault((region.clip, region.frame), []).append(region)
    sizes = Counter((region.clip, region.track) for region in regions)
    hit = dict.fromkeys(sizes, 0)
    false_boxes = 0
    for key, boxes in flagged.items():
        exclusive = np.array(boxes, np.float64).reshape(-1, 4) + [0, 0, 1, 1]
        merged = merge_overlapping(exclusive, merge_iou)[0] - [0, 0, 1, 1]
        on = by_frame.get(key, [])
        truth = np.array([r.box for r in on], np.float64).reshape(-1, 4)
        overlap = np.array([iou_inclusive(box, truth) >= REGION_IOU for box in merged]).reshape(len(merged), len(on))
        false_boxes += int((~overlap.any(axis=1)).sum())
        for j, region in enumerate(on):
            hit[(region.clip, region.track)] += bool(overlap[:, j].any())
    return OperatingPoint(threshold, false_boxes / total_frames,
                          {key: (size, hit[key] / size) for key, size in sorted(sizes.items())})


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of [N] bool ``labels`` by [N] ``scores``; NaN if one class is absent."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


class PixelAccumulator:
    """Pools pixel scores of many frames as counts per distinct score, so that pixel AUROC and AP
    over millions of pixels need no per-pixel storage. Scores are rounded to ``decimals``."""

    def __init__(self, decimals: int = 4):
        self.decimals = decimals
        self.positive: dict[float, int] = {}
        self.negative: dict[float, int] = {}

    def add(self, scores: np.ndarray, truth: np.ndarray) -> None:
        """[H, W] float scores (-inf = no prediction) and [H, W] bool ground truth of one frame."""
        scores = np.round(np.asarray(scores, dtype=np.float64), self.decimals)
        for target, selected in ((self.positive, scores[truth]), (self.negative, scores[~truth])):
            values, counts = np.unique(selected, return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist()):
                target[value] = target.get(value, 0) + count

    def curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (fpr, tpr, precision) at descending distinct scores."""
        values = np.array(sorted(set(self.positive) | set(self.negative), reverse=True))
        pos = np.array([self.positive.get(v, 0) for v in values], dtype=np.float64)
        neg = np.array([self.negative.get(v, 0) for v in values], dtype=np.float64)
        tp, fp = np.cumsum(pos), np.cumsum(neg)
        tpr = tp / max(tp[-1], 1) if len(tp) else tp
        fpr = fp / max(fp[-1], 1) if len(fp) else fp
        precision = tp / np.maximum(tp + fp, 1)
        return fpr, tpr, precision

    def auroc(self) -> float:
        fpr, tpr, _ = self.curves()
        if not len(fpr) or not self.positive or not self.negative:
            return float("nan")
        x, y = np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])
        return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))

    def average_precision(self) -> float:
        """Step-wise AP (as scikit-learn's average_precision_score)."""
        _, tpr, precision = self.curves()
        if not self.positive:
            return float("nan")
        recall = np.concatenate([[0.0], tpr])
        return float(np.sum((recall[1:] - recall[:-1]) * precision))


def frame_score_40_percent(scores: np.ndarray, truth: np.ndarray, coverage: float = 0.4) -> float:
    """Score of one frame under the classic UCSD pixel-level criterion.

    At a threshold t, an anomalous frame is detected only if >= 40% of its anomalous pixels score
    >= t, so its frame score is the largest such t; a normal frame is a false positive if any
    pixel scores >= t, so its frame score is its maximum pixel score.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if truth.any():
        ranked = np.sort(scores[truth])[::-1]
        return float(ranked[int(np.ceil(coverage * len(ranked))) - 1])
    return float(scores.max()) if scores.size else float("-inf")


def mask_iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two [H, W] bool masks (1.0 when both are empty)."""
    union = np.logical_or(prediction, truth).sum()
    return float(np.logical_and(prediction, truth).sum() / union) if union else 1.0


@dataclass(frozen=True)
class TrackingCounts:
    """CLEAR-MOT style identity counts over a clip: ground-truth object-frames, those matched by a
    predicted box, and identity switches (a truth track matched by another predicted id than the last)."""

    truth: int
    matched: int
    id_switches: int

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else float("nan")


def count_id_switches(frames, min_iou: float = 0.5) -> TrackingCounts:
    """Identity switches of predicted tracks against truth tracks.

    ``frames``: per frame ``(truth_ids [G], truth_xyxy [G, 4], predicted_ids [P], predicted_xyxy [P, 4])``
    (boxes with x2/y2 exclusive). Per frame, truth and predictions are matched one to one by box IoU
    >= ``min_iou`` (Hungarian); a truth track whose matched predicted id differs from the one it was
    last matched with counts one switch.
    """
    from scipy.optimize import linear_sum_assignment

    from tao_ros.core.geometry import iou_matrix

    last_match: dict[int, int] = {}
    truth_count = matched = switches = 0
    for truth_ids, truth_xyxy, predicted_ids, predicted_xyxy in frames:
        truth_count += len(truth_ids)
        iou = iou_matrix(np.asarray(truth_xyxy, np.float64).reshape(-1, 4),
                         np.asarray(predicted_xyxy, np.float64).reshape(-1, 4))
        if not iou.size:
            continue
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] < min_iou:
                continue
            matched += 1
            truth_id, predicted_id = int(truth_ids[r]), int(predicted_ids[c])
            if last_match.get(truth_id, predicted_id) != predicted_id:
                switches += 1
            last_match[truth_id] = predicted_id
    return TrackingCounts(truth_count, matched, switches)
