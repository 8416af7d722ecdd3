"""Standardization of per-feature anomaly scores by the training data's own scores, and their sum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tao_ros.errors import InputError

METHODS = ("zscore", "minmax", "logz", "tail")
BODY_LEVELS = np.linspace(0.0, 1.0, 101)
"""Quantile levels of the training scores kept for the ``tail`` standardization's body."""
TAIL_LEVEL = 0.9
"""Above this quantile of the training scores, ``tail`` extrapolates them by a fitted Pareto tail."""


@dataclass(frozen=True)
class Standardizer:
    """Maps raw scores of one feature to a common scale, from held-out training scores.

    ``zscore``: (s - mean) / std, as the paper does. ``minmax``: (s - min) / (p99.9 - min), robust
    to a few extreme training scores. ``logz``: the z-score of log(1 + (s - min) / (median - min)).
    A kNN distance is inversely proportional to the density, so its log is the negative log density
    up to a constant and the sum over features is the joint one (features taken as independent);
    it also keeps a feature whose normal scores are tightly bunched (tiny std) from reaching z-scores
    in the hundreds and drowning the others.

    ``tail``: the surprise -log P(S >= s) of a score under the training scores S: from their
    empirical distribution up to its 90th percentile u, and beyond it a Pareto tail fitted to the
    exceedances (Hill's estimator: share(S > u) * (s / u) ** (-1 / hill), scores taken from their
    minimum where some are negative), so that
    it keeps growing past the highest training score instead of saturating, but only as the log of
    how far out a score lies: one feature's artefact (a flow spike at a frame seam) cannot outvote
    all the others. Every feature's scores are on one scale, the surprise in nats, whatever their
    distribution: a normal object's is about Exp(1) whichever the feature, and the sum over features
    is Fisher's combination of their evidence. Where 90% of the training scores are the lowest
    one (a label every normal object shares), there is no Pareto tail to fit: those like the normal
    objects get 0, the others the surprise of the normal objects' share above it plus the log of how
    many of their mean exceedances out they lie (growing linearly instead, a label rare among Ped1's
    normal objects got 150 nats and outvoted every other feature).
    """

    # [11 + 101]: mean, std, min, 99.9th percentile, median of the training scores, mean and std of
    # their logz; u (90th percentile), share above u, mean exceedance over u, Hill's estimator of the
    # Pareto tail above u; quantiles at BODY_LEVELS
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
        tail_start = np.quantile(scores, TAIL_LEVEL)
        above = scores[scores > tail_start] - tail_start
        # no score above u (all alike): one more normal score would be the share, the spread unknown
        share = len(above) / len(scores) if len(above) else 1.0 / (len(scores) + 1)
        spread = above.mean() if len(above) else max(tail_start - low, 1e-12)
        # Hill's estimator of a Pareto tail of the scores (from 0, or from their minimum where some are
        # negative); 0: no such tail
        origin = min(low, 0.0)
        hill = np.mean(np.log1p(above / (tail_start - origin))) if len(above) and tail_start > origin else 0.0
        return cls(np.concatenate([[scores.mean(), scores.std(), low, np.percentile(scores, 99.9), median,
                                    logs.mean(), logs.std(), tail_start, share, spread, hill],
                                   np.quantile(scores, BODY_LEVELS)]))

    def __call__(self, scores: np.ndarray, method: str = "zscore") -> np.ndarray:
        """[N] raw scores -> [N] standardized scores (NaN stays NaN)."""
        mean, std, low, high, median, log_mean, log_std = self.stats[:7]
        scores = np.asarray(scores, dtype=np.float64)
        if method == "zscore":
            return (scores - mean) / max(std, 1e-12)
        if method == "minmax":
            return (scores - low) / max(high - low, 1e-12)
        if method == "logz":
            return (_log_ratio(scores, low, median) - log_mean) / max(log_std, 1e-12)
        if method == "tail":
            return self._surprise(scores)
        raise InputError(f"unknown standardization {method!r}; choose from {list(METHODS)}")

    def _surprise(self, scores: np.ndarray) -> np.ndarray:
        if len(self.stats) < 11 + len(BODY_LEVELS):
            raise InputError("this standardizer was stored without the tail of its training scores: refit the "
                             "model ('tao-ros fit') to use standardization 'tail'")
        origin = min(self.stats[2], 0.0)
        tail_start, share, spread, hill = self.stats[7:11]
        body = self.stats[11:]
        # share of training scores at or above s, interpolated between the stored quantiles: with
        # body[i - 1] < s <= body[i], the level of s lies between those of i - 1 and i
        with np.errstate(invalid="ignore"):
            upper = np.clip(np.searchsorted(body, scores, side="left"), 1, len(body) - 1)
            below, above = body[upper - 1], body[upper]
            within = np.clip((scores - below) / np.maximum(above - below, 1e-300), 0.0, 1.0)
        level = np.where(scores <= body[0], 0.0, (upper - 1 + within) / (len(body) - 1.0))
        at_or_above = 1.0 - level
        surprise = -np.log(np.clip(at_or_above, share, 1.0))
        with np.errstate(invalid="ignore"):
            beyond = scores > tail_start
        if hill > 0:
            surprise[beyond] = -np.log(share) + np.log1p((scores[beyond] - tail_start) / (tail_start - origin)) / hill
        else:  # no Pareto tail to fit (the scores' 90th percentile is their minimum): log growth on
            # the exceedances' own scale, all that a few differing normal scores can support
            surprise[beyond] = -np.log(share) + np.log1p((scores[beyond] - tail_start) / max(spread, 1e-12))
        surprise[np.isnan(scores)] = np.nan
        return surprise

    def typical(self, method: str = "zscore") -> float:
        """The standardized score of a typical normal object: the training scores' median, scaled."""
        return float(self(np.array([self.stats[4]]), method)[0])


def _log_ratio(scores: np.ndarray, low: float, median: float) -> np.ndarray:
    """[N] scores -> [N] log(1 + (s - low) / (median - low)), scores below ``low`` taken as ``low``."""
    with np.errstate(invalid="ignore"):
        return np.log1p(np.maximum(scores - low, 0.0) / max(median - low, 1e-12))


RULES = ("sum", "excess")


def combine(standardized: dict[str, np.ndarray], n: int, typical: dict[str, float] | None = None,
            rule: str = "sum") -> np.ndarray:
    """Feature name -> [N] standardized scores -> [N] combined score.

    ``typical``: feature name -> the standardized score of a typical normal object (its normal
    median, ``Standardizer.typical``; 0 where not given). An object a feature cannot describe (NaN)
    gets that value: evidence missing is evidence of nothing, under every standardization.
    ``rule``: ``sum`` adds the scores, as the paper does; ``excess`` adds only what each feature
    gives above its typical normal value, so that a feature that carries nothing for a scene (its
    scores on anomalies like those on normal objects) adds no spread below the normal median, where
    half its scores lie. Returns zeros for no features.
    """
    if rule not in RULES:
        raise InputError(f"unknown combination rule {rule!r}; choose from {list(RULES)}")
    typical = typical or {}
    total = np.zeros(n)
    for name, scores in standardized.items():
        middle = typical.get(name, 0.0)
        scores = np.where(np.isnan(scores), middle, scores)
        total += np.maximum(scores - middle, 0.0) if rule == "excess" else scores
    return total
