"""Standardization of per-feature anomaly scores by the training data's own scores, and their sum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tao_ros.errors import InputError

METHODS = ("zscore", "minmax")


@dataclass(frozen=True)
class Standardizer:
    """Maps raw scores of one feature to a common scale, from held-out training scores.

    ``zscore``: (s - mean) / std, as the paper does. ``minmax``: (s - min) / (p99.9 - min), robust
    to a few extreme training scores.
    """

    stats: np.ndarray  # [4]: mean, std, min, 99.9th percentile of the training scores

    @classmethod
    def fit(cls, training_scores: np.ndarray) -> Standardizer:
        """[N] held-out training scores (N >= 2) -> Standardizer."""
        scores = np.asarray(training_scores, dtype=np.float64)
        scores = scores[np.isfinite(scores)]
        if len(scores) < 2:
            raise InputError(f"need at least 2 finite training scores to standardize, got {len(scores)}")
        return cls(np.array([scores.mean(), scores.std(), scores.min(), np.percentile(scores, 99.9)]))

    def __call__(self, scores: np.ndarray, method: str = "zscore") -> np.ndarray:
        """[N] raw scores -> [N] standardized scores (NaN stays NaN)."""
        mean, std, low, high = self.stats
        if method == "zscore":
            return (np.asarray(scores, dtype=np.float64) - mean) / max(std, 1e-12)
        if method == "minmax":
            return (np.asarray(scores, dtype=np.float64) - low) / max(high - low, 1e-12)
        raise InputError(f"unknown standardization {method!r}; choose from {list(METHODS)}")


def combine(standardized: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Sum of feature name -> [N] standardized scores; an object a feature cannot describe yet (NaN)
    gets that feature's typical value, 0. Returns [N]; zeros when no features."""
    total = np.zeros(n)
    for scores in standardized.values():
        total += np.nan_to_num(scores, nan=0.0)
    return total
