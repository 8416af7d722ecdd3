"""Standardization of per-feature anomaly scores by the training data's own scores, and their sum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tao_ros.errors import InputError

METHODS = ("zscore", "minmax", "logz")


@dataclass(frozen=True)
class Standardizer:
    """Maps raw scores of one feature to a common scale, from held-out training scores.

    ``zscore``: (s - mean) / std, as the paper does. ``minmax``: (s - min) / (p99.9 - min), robust
    to a few extreme training scores. ``logz``: the z-score of log(1 + (s - min) / (median - min)).
    A kNN distance is inversely proportional to the density, so its log is the negative log density
    up to a constant and the sum over features is the joint one (features taken as independent);
    it also keeps a feature whose normal scores are tightly bunched (tiny std) from reaching z-scores
    in the hundreds and drowning the others.
    """

    # [7]: mean, std, min, 99.9th percentile, median of the training scores, mean and std of their logz
    stats: np.ndarray

    @classmethod
    def fit(cls, training_scores: np.ndarray) -> Standardizer:
        """[N] held-out training scores (N >= 2) -> Standardizer."""
        scores = np.asarray(training_scores, dtype=np.float64)
        scores = scores[np.isfinite(scores)]
        if len(scores) < 2:
            raise InputError(f"need at least 2 finite training scores to standardize, got {len(scores)}")
        low, median = scores.min(), np.median(scores)
        logs = _log_ratio(scores, low, median)
        return cls(np.array([scores.mean(), scores.std(), low, np.percentile(scores, 99.9), median,
                             logs.mean(), logs.std()]))

    def __call__(self, scores: np.ndarray, method: str = "zscore") -> np.ndarray:
        """[N] raw scores -> [N] standardized scores (NaN stays NaN)."""
        mean, std, low, high, median, log_mean, log_std = self.stats
        scores = np.asarray(scores, dtype=np.float64)
        if method == "zscore":
            return (scores - mean) / max(std, 1e-12)
        if method == "minmax":
            return (scores - low) / max(high - low, 1e-12)
        if method == "logz":
            return (_log_ratio(scores, low, median) - log_mean) / max(log_std, 1e-12)
        raise InputError(f"unknown standardization {method!r}; choose from {list(METHODS)}")


def _log_ratio(scores: np.ndarray, low: float, median: float) -> np.ndarray:
    """[N] scores -> [N] log(1 + (s - low) / (median - low)), scores below ``low`` taken as ``low``."""
    with np.errstate(invalid="ignore"):
        return np.log1p(np.maximum(scores - low, 0.0) / max(median - low, 1e-12))


def combine(standardized: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Sum of feature name -> [N] standardized scores; an object a feature cannot describe yet (NaN)
    gets that feature's typical value, 0. Returns [N]; zeros when no features."""
    total = np.zeros(n)
    for scores in standardized.values():
        total += np.nan_to_num(scores, nan=0.0)
    return total
