"""Evaluate 'tao-ros run' outputs (per clip ``objects.csv`` + ``masks/``) against ground truth."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tao_ros.config import OPTIONS
from tao_ros.errors import InputError
from tao_ros.eval.groundtruth import MIN_REGION_PIXELS, ClipTruth
from tao_ros.eval.metrics import (Detection, PixelAccumulator, frame_score_40_percent, mask_iou, operating_point,
                                  rbdc_tbdc, roc_auc)
from tao_ros.io.outputs import LOCATION_HEADER, OBJECTS_HEADER


@dataclass
class ClipPrediction:
    """Rows of one clip's objects.csv: [R] frame, object id, [R, 4] boxes (x2/y2 exclusive), scores."""

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    masks_dir: Path | None


def read_objects_csv(path: Path, num_frames: int | None = None) -> ClipPrediction:
    """Parse and validate ``objects.csv``; InputError naming the file and line of the first problem."""
    rows = []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header not in (OBJECTS_HEADER, OBJECTS_HEADER + LOCATION_HEADER):
            raise InputError(f"{path}:1: header must be {','.join(OBJECTS_HEADER)} (optionally followed by "
                             f"{','.join(LOCATION_HEADER)}), got {header}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise InputError(f"{path}:{line}: expected {len(header)} values, got {len(row)}")
            try:
                frame, object_id = int(row[0]), int(row[1])
                x1, y1, x2, y2, score = (float(v) for v in row[2:7])
            except ValueError:
                raise InputError(f"{path}:{line}: non-numeric value in {row}") from None
            if frame < 0 or (num_frames is not None and frame >= num_frames):
                raise InputError(f"{path}:{line}: frame {frame} outside 0..{(num_frames or 1) - 1}")
            if x2 < x1 or y2 < y1:
                raise InputError(f"{path}:{line}: box has x2 < x1 or y2 < y1")
            if not np.isfinite(score):
                raise InputError(f"{path}:{line}: score {score} is not finite")
            rows.append((frame, object_id, x1, y1, x2, y2, score))
    array = np.array(rows, dtype=np.float64).reshape(-1, 7)
    masks = path.parent / "masks"
    return ClipPrediction(array[:, 0].astype(np.int64), array[:, 1].astype(np.int64), array[:, 2:6], array[:, 6],
                          masks if masks.is_dir() else None)


def pixel_scores(prediction: ClipPrediction, frame: int, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] anomaly score of each pixel of ``frame``: an object's score over its mask when the
    segmenter produced one, else over its box; -inf where no object is."""
    import cv2

    scores = np.full(shape, -np.inf)
    instance = None
    if prediction.masks_dir is not None:
        path = prediction.masks_dir / f"{frame:06d}.png"
        if path.is_file():
            instance = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if instance is None or instance.shape != shape:
                raise InputError(f"{path}: instance mask unreadable or not {shape[1]}x{shape[0]}")
    for k in np.flatnonzero(prediction.frames == frame):
        score = prediction.scores[k]
        if instance is not None and prediction.ids[k] > 0 and (instance == prediction.ids[k]).any():
            region = instance == prediction.ids[k]
            scores[region] = np.maximum(scores[region], score)
        else:
            x1, y1, x2, y2 = prediction.boxes[k].astype(int)
            scores[y1:y2, x1:x2] = np.maximum(scores[y1:y2, x1:x2], score)
    return scores


def evaluate(pred_dir: str | Path, truths: list[ClipTruth], threshold: float,
             merge_iou: float = OPTIONS["merge_iou"].default) -> dict:
    """All metrics of predictions in ``pred_dir`` against ``truths``, with per-clip values and the
    curves needed for plots (under the key ``curves``). At ``threshold`` (the operating point), with
    anomalous boxes merged as the pipeline merges them (``merge_iou``): false boxes per frame and each
    ground-truth track's share of frames flagged (``operating_point``)."""
    pred_dir = Path(pred_dir)
    detections, regions, total_frames = [], [], 0
    frame_labels, frame_scores, pixel_frame_scores, ious, segmented = [], [], [], [], []
    pixels = PixelAccumulator()
    per_clip, missing, notes, specks = {}, [], set(), 0
    for truth in truths:
        objects = pred_dir / truth.name / "objects.csv"
        if objects.is_file():
            prediction = read_objects_csv(objects, truth.num_frames)
        else:
            missing.append(truth.name)
            prediction = ClipPrediction(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), None)
        if truth.derived_tracks:
            notes.add("regions and tracks derived from pixel masks (connected components linked across frames)")
        specks += truth.specks
        total_frames += truth.num_frames
        regions += truth.regions
        detections += [Detection(truth.name, int(f), b - np.array([0, 0, 1, 1]), float(s))
                       for f, b, s in zip(prediction.frames, prediction.boxes, prediction.scores)]
        best = np.full(truth.num_frames, -np.inf)
        np.maximum.at(best, prediction.frames, prediction.scores)
        labels = np.zeros(truth.num_frames, dtype=bool)
        for region in truth.regions:
            labels[region.frame] = True
        clip_metrics = {"frames": truth.num_frames, "frame_auroc": roc_auc(labels, _finite(best))}
        if truth.masks is not None:
            masks = truth.masks()
            labels = masks.reshape(len(masks), -1).any(axis=1)
            clip_ious = []
            for frame, mask in enumerate(masks):
                scores = pixel_scores(prediction, frame, mask.shape)
                pixels.add(scores, mask)
                pixel_frame_scores.append(frame_score_40_percent(scores, mask))
                if mask.any():
                    flagged = scores > threshold
                    clip_ious.append(mask_iou(flagged, mask))
                    segmented.append(bool(flagged.any()))
            ious += clip_ious
            clip_metrics["mean_iou"] = float(np.mean(clip_ious)) if clip_ious else float("nan")
        frame_labels.append(labels)
        frame_scores.append(best)
        clip_curve = rbdc_tbdc([d for d in detections if d.clip == truth.name], truth.regions, truth.num_frames)
        clip_metrics.update(rbdc=clip_curve.rbdc, tbdc=clip_curve.tbdc)
        per_clip[truth.name] = clip_metrics

    if specks:
        notes.add(f"{specks} mask component(s) under {MIN_REGION_PIXELS} pixels taken for annotation specks: "
                  f"no regions or tracks (their pixels count in the frame and pixel metrics)")
    curve = rbdc_tbdc(detections, regions, max(total_frames, 1), operating_threshold=threshold)
    at = operating_point(detections, regions, max(total_frames, 1), threshold, merge_iou)
    labels, best = np.concatenate(frame_labels or [np.zeros(0, bool)]), np.concatenate(frame_scores or [np.zeros(0)])
    has_pixels = bool(pixel_frame_scores)
    metrics = {
        "rbdc": curve.rbdc,
        "tbdc": curve.tbdc,
        "frame_auroc": roc_auc(labels, _finite(best)),
        "pixel_auroc": pixels.auroc() if has_pixels else float("nan"),
        "pixel_ap": pixels.average_precision() if has_pixels else float("nan"),
        "pixel_frame_auc": roc_auc(labels, _finite(np.array(pixel_frame_scores))) if has_pixels else float("nan"),
        "mean_iou": float(np.mean(ious)) if ious else float("nan"),
        # the masks' quality apart from what is flagged: IoU on the anomalous frames that show a mask at all
        "mean_iou_segmented": float(np.mean(np.array(ious)[segmented])) if any(segmented) else float("nan"),
        "segmented_frames": float(np.mean(segmented)) if segmented else float("nan"),
        "region_coverage": float(curve.region_rate[-1]) if len(curve.region_rate) else 0.0,
        "at_threshold": curve.at_threshold,
        "operating_point": {"threshold": threshold, "false_boxes_per_frame": at.false_boxes_per_frame,
                            "tracks": [{"clip": clip, "track": track, "frames": frames, "flagged": share}
                                       for (clip, track), (frames, share) in at.tracks.items()]},
        "clips": per_clip,
        "missing_clips": missing,
        "notes": sorted(notes),
        "frames": total_frames,
        "regions": len(regions),
        "tracks": len({(r.clip, r.track) for r in regions}),
        "specks": specks,
    }
    fpr, tpr, _ = pixels.curves() if has_pixels else (np.zeros(0), np.zeros(0), None)
    metrics["curves"] = {"detection": curve, "frame_labels": labels, "frame_scores": best,
                         "pixel_fpr": fpr, "pixel_tpr": tpr}
    return metrics


def _finite(scores: np.ndarray) -> np.ndarray:
    """Replace -inf (no object in a frame) by a value below every real score."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    return np.where(np.isfinite(scores), scores, (finite.min() - 1.0) if finite.size else 0.0)


METRIC_NAMES = {"rbdc": "RBDC", "tbdc": "TBDC", "frame_auroc": "frame AUROC", "pixel_auroc": "pixel AUROC",
                "pixel_ap": "pixel AP", "pixel_frame_auc": "pixel-level frame AUC (40% rule)",
                "mean_iou": "mean IoU (anomalous frames)",
                "mean_iou_segmented": "mean IoU (anomalous frames with a mask)",
                "segmented_frames": "anomalous frames with a mask",
                "region_coverage": "regions overlapped by any box (IoU>=0.1)"}


def format_table(metrics: dict) -> str:
    lines = [f"{'metric':<42}{'value':>8}", "-" * 50]
    lines += [f"{label:<42}{metrics[key]:>8.4f}" for key, label in METRIC_NAMES.items()]
    at = metrics.get("at_threshold") or {}
    if at:
        lines.append(f"at threshold {at['threshold']:g}: region rate {at['region_rate']:.4f}, track rate "
                     f"{at['track_rate']:.4f}, false positives per frame {at['fpr']:.4f}")
    point = metrics.get("operating_point")
    if point:
        lines.append(f"operating point (threshold {point['threshold']:g}, anomalous boxes merged): "
                     f"{point['false_boxes_per_frame']:.4f} false boxes per frame; share of each anomalous "
                     "track's frames flagged:")
        lines += [f"  {t['clip']} track {t['track']} ({t['frames']} frames): {t['flagged']:.2f}"
                  for t in point["tracks"]]
    lines.append(f"{metrics['frames']} frames, {metrics['regions']} regions, {metrics['tracks']} tracks")
    if metrics["missing_clips"]:
        lines.append(f"clips without predictions (counted as no detections): {', '.join(metrics['missing_clips'])}")
    lines += [f"note: {note}" for note in metrics["notes"]]
    return "\n".join(lines)


def write_report(metrics: dict, output: str | Path) -> list[Path]:
    """``metrics.json`` plus PNG plots (detection rate vs FPR, frame ROC, pixel ROC) in ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    curves = metrics["curves"]
    report = {k: v for k, v in metrics.items() if k != "curves"}
    (output / "metrics.json").write_text(json.dumps(_json_safe(report), indent=2) + "\n")
    written = [output / "metrics.json"]

    detection = curves["detection"]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(np.r_[0, detection.fpr], np.r_[0, detection.region_rate], label=f"RBDC {metrics['rbdc']:.3f}")
    ax.plot(np.r_[0, detection.fpr], np.r_[0, detection.track_rate], label=f"TBDC {metrics['tbdc']:.3f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positives per frame", ylabel="detection rate",
           title="Region and track detection")
    ax.legend(loc="lower right")
    written.append(_save(fig, output / "detection_curves.png"))

    fig, ax = plt.subplots(figsize=(5, 4))
    labels, scores = curves["frame_labels"], _finite(curves["frame_scores"])
    if 0 < labels.sum() < len(labels):
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"frame AUROC {metrics['frame_auroc']:.3f}")
    if len(curves["pixel_fpr"]):
        ax.plot(np.r_[0, curves["pixel_fpr"]], np.r_[0, curves["pixel_tpr"]],
                label=f"pixel AUROC {metrics['pixel_auroc']:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    written.append(_save(fig, output / "roc.png"))
    plt.close("all")
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _json_safe(value):
    """numpy scalars -> Python numbers, NaN -> null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
