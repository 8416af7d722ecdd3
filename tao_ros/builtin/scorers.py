"""Density models of normal feature vectors: kNN distance (scipy, scikit-learn) and Mahalanobis distance
(scikit-learn)."""

from __future__ import annotations

import numpy as np

from tao_ros.errors import InputError
from tao_ros.hookspecs import Param, hookimpl


def held_out_scores(fit_and_score, features: np.ndarray, groups: np.ndarray, minimum: int = 1
                    ) -> np.ndarray | None:
    """[N] scores of each sample by a model fitted without its group and the groups numbered next to
    it; None if one group.

    ``groups`` [N] are chunks of footage numbered in time order (``AnomalyPipeline.describe_normal``):
    the chunks next to a sample's own still hold the objects it shows, which would match themselves.
    Where leaving them out too leaves fewer than ``minimum`` samples to fit on, only the sample's own
    group is left out.
    """
    groups = np.asarray(groups)
    unique = np.unique(groups)
    if len(unique) < 2:
        return None
    scores = np.empty(len(features))
    for group in unique:
        held_out = groups == group
        fitted_on = np.abs(groups - group) > 1
        if fitted_on.sum() < minimum:
            fitted_on = ~held_out
        scores[held_out] = fit_and_score(features[fitted_on], features[held_out])
    return scores


def check_features(features: np.ndarray, minimum: int) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < minimum:
        raise InputError(f"need at least {minimum} normal feature vectors of shape [N, D], got "
                         f"{features.shape}: fit on more normal footage")
    if not np.all(np.isfinite(features)):
        raise InputError("normal feature vectors hold NaN or inf: drop those rows before fitting")
    return features


class NeighbourIndex:
    """Exact Euclidean nearest neighbours of queries among [N, D] ``train``.

    Up to ``KD_TREE_DIMENSIONS`` dimensions a scipy KD-tree, else scikit-learn's brute force, the
    choice scikit-learn's own ``algorithm='auto'`` makes (a KD-tree prunes little in more dimensions).
    scipy's tree rather than scikit-learn's ``NearestNeighbors``: the node queries a frame's few objects
    once per feature per frame, where ``NearestNeighbors``' per-call input checks and job dispatch cost
    5-15x the search itself and hold the interpreter lock that other cameras in the process wait for
    (scipy searches without it).
    """

    KD_TREE_DIMENSIONS = 15

    def __init__(self, train: np.ndarray):
        self.size = len(train)
        if train.shape[1] <= self.KD_TREE_DIMENSIONS:
            from scipy.spatial import KDTree

            self.tree, self.brute = KDTree(train), None
        else:
            from sklearn.neighbors import NearestNeighbors

            self.tree, self.brute = None, NearestNeighbors(algorithm="brute").fit(train)

    def distances(self, query: np.ndarray, k: int) -> np.ndarray:
        """[M, D] queries -> [M, min(k, N)] distances to their nearest training samples, nearest first."""
        k = min(k, self.size)
        if self.tree is not None:
            return self.tree.query(query, k=list(range(1, k + 1)))[0]
        return self.brute.kneighbors(query, n_neighbors=k)[0]


class KnnScorer:
    """Mean Euclidean distance to the k nearest normal samples, on per-dimension scaled features."""

    name = "knn"
    params = {"k": Param(5, "Number of nearest normal samples averaged (5: chosen leave-one-clip-out, "
                            "benchmarks/generalization.py).", minimum=1)}

    def __init__(self, **params):
        self.k = params["k"]
        self.scale = None
        self.index = None

    def fit(self, features, groups):
        features = check_features(features, self.k + 2)
        mean, std = features.mean(axis=0), features.std(axis=0)
        self.scale = np.stack([mean, np.where(std > 1e-12, std, 1.0)])
        scaled = (features - mean) / self.scale[1]
        self.load_state({"scale": self.scale, "train": scaled})
        held_out = held_out_scores(lambda tr, q: NeighbourIndex(tr).distances(q, self.k).mean(axis=1), scaled,
                                   groups, self.k)
        if held_out is not None:
            return held_out
        return self.index.distances(scaled, self.k + 1)[:, 1:].mean(axis=1)  # drop self

    def score(self, features):
        if self.index is None:
            raise InputError("knn scorer is not fitted: run 'tao-ros fit' first")
        features = np.asarray(features, dtype=np.float64).reshape(-1, self.scale.shape[1])
        if len(features) == 0:
            return np.zeros(0)
        return self.index.distances((features - self.scale[0]) / self.scale[1], self.k).mean(axis=1)

    def state(self):
        return {"scale": self.scale, "train": self.train}

    def load_state(self, state):
        self.scale = np.asarray(state["scale"], dtype=np.float64)
        self.train = np.asarray(state["train"], dtype=np.float64)
        self.index = NeighbourIndex(self.train)


class MahalanobisScorer:
    """Mahalanobis distance to the normal samples' mean under a Ledoit-Wolf shrunk covariance."""

    name = "mahalanobis"
    params = {}

    def __init__(self, **params):
        self.location = None
        self.precision = None

    @staticmethod
    def _fit(features):
        from sklearn.covariance import LedoitWolf

        model = LedoitWolf().fit(features)
        return model.location_, model.precision_

    @staticmethod
    def _distance(location, precision, features):
        centred = features - location
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", centred, precision, centred), 0.0))

    def fit(self, features, groups):
        features = check_features(features, 3)
        self.location, self.precision = self._fit(features)
        if len(np.unique(groups)) < 2:  # one clip: 10 interleaved folds, so no sample scores itself
            groups = np.arange(len(features)) % 10
        return held_out_scores(lambda tr, q: self._distance(*self._fit(tr), q), features, groups, 3)

    def score(self, features):
        if self.location is None:
            raise InputError("mahalanobis scorer is not fitted: run 'tao-ros fit' first")
        features = np.asarray(features, dtype=np.float64).reshape(-1, len(self.location))
        return self._distance(self.location, self.precision, features)

    def state(self):
        return {"location": self.location, "precision": self.precision}

    def load_state(self, state):
        self.location = np.asarray(state["location"], dtype=np.float64)
        self.precision = np.asarray(state["precision"], dtype=np.float64)


@hookimpl
def tao_ros_add_scorers():
    return [KnnScorer, MahalanobisScorer]
