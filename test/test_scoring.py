"""Standardization by training scores, the sum over features, and the density models."""

from __future__ import annotations

import numpy as np
import pytest

from tao_ros.builtin.scorers import KnnScorer, MahalanobisScorer, held_out_scores
from tao_ros.core.scoring import Standardizer, combine
from tao_ros.errors import InputError


def test_zscore_against_hand_computed_values():
    standardizer = Standardizer.fit(np.array([1.0, 2.0, 3.0, 4.0]))  # mean 2.5, std sqrt(1.25)
    np.testing.assert_allclose(standardizer(np.array([2.5, 5.0])), [0.0, 2.5 / np.sqrt(1.25)])


def test_minmax_uses_the_999th_percentile():
    scores = np.arange(1001, dtype=float)  # min 0, p99.9 = 999
    standardizer = Standardizer.fit(scores)
    np.testing.assert_allclose(standardizer(np.array([0.0, 999.0, 499.5]), "minmax"), [0.0, 1.0, 0.5])


def test_logz_against_hand_computed_values_and_tames_bunched_scores():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # min 1, median 3
    logs = np.log1p((scores - 1.0) / 2.0)
    standardizer = Standardizer.fit(scores)
    np.testing.assert_allclose(standardizer(np.array([3.0, 0.0]), "logz"),
                               (np.array([np.log(2.0), 0.0]) - logs.mean()) / logs.std())
    # tightly bunched normal scores: an outlier's z-score explodes, its logz stays a few standard deviations out
    bunched = Standardizer.fit(np.linspace(1.0, 1.01, 1000))
    outlier = np.array([2.0])
    assert bunched(outlier, "zscore")[0] > 300
    assert 3 < bunched(outlier, "logz")[0] < 20


def test_standardizer_needs_two_finite_scores():
    with pytest.raises(InputError, match="at least 2"):
        Standardizer.fit(np.array([1.0, np.nan]))


def test_combine_sums_features_and_treats_unknown_as_typical():
    total = combine({"speed": np.array([1.0, np.nan, 2.0]), "depth": np.array([0.5, 1.0, np.nan])}, 3)
    np.testing.assert_allclose(total, [1.5, 1.0, 2.0])
    assert combine({}, 0).shape == (0,)
    typical = {"speed": 0.25, "depth": -0.5}
    np.testing.assert_allclose(combine({"speed": np.array([1.0, np.nan, 2.0]), "depth": np.array([0.5, 1.0, np.nan])},
                                       3, typical), [1.5, 1.25, 1.5])


@pytest.mark.parametrize("method", ["zscore", "minmax", "logz"])
def test_an_object_a_feature_cannot_describe_scores_as_a_typical_normal_object_under_every_standardization(
        method, rng):
    normal = rng.gamma(2.0, 1.0, 500)  # skewed, as kNN distances are: mean and median differ
    standardizer = Standardizer.fit(normal)
    typical = standardizer.typical(method)
    assert typical == pytest.approx(np.median(standardizer(normal, method)), rel=1e-4)
    assert typical != pytest.approx(0.0, abs=1e-3)  # so the tests below tell typical from zero
    known = standardizer(np.array([normal.max()]), method)[0]
    for rule in ("sum", "excess"):
        unknown_pose = combine({"speed": np.array([known, known]), "pose": np.array([typical, np.nan])}, 2,
                               {"speed": typical, "pose": typical}, rule)
        assert unknown_pose[0] == pytest.approx(unknown_pose[1])


def test_the_excess_rule_adds_only_what_each_feature_gives_above_its_typical_normal_score():
    standardized = {"speed": np.array([3.0, -1.0, 0.5]), "pose": np.array([0.0, 2.0, np.nan])}
    typical = {"speed": 0.5, "pose": 0.5}
    np.testing.assert_allclose(combine(standardized, 3, typical, "excess"), [2.5, 1.5, 0.0])
    np.testing.assert_allclose(combine(standardized, 3, typical, "sum"), [3.0, 1.0, 1.0])
    with pytest.raises(InputError, match="unknown combination rule 'max'"):
        combine(standardized, 3, typical, "max")


@pytest.mark.parametrize("scorer_cls", [KnnScorer, MahalanobisScorer])
def test_scorers_rank_outliers_above_normal_samples(scorer_cls, rng):
    normal = rng.normal(0, 1, (400, 2))
    groups = np.repeat(np.arange(4), 100)
    scorer = scorer_cls(**{k: p.default for k, p in scorer_cls.params.items()})
    training = scorer.fit(normal, groups)
    assert training.shape == (400,)
    scores = scorer.score(np.array([[0.0, 0.0], [6.0, 6.0]]))
    assert scores[1] > scores[0]
    assert scores[1] > training.max()


def test_knn_training_scores_leave_the_sample_out():
    features = np.array([[0.0], [0.0], [10.0], [10.0], [20.0]])
    scorer = KnnScorer(k=1)
    # one group: leave-one-out. The lone sample at 20 is 10 away from its nearest other sample,
    # not 0 away from itself.
    np.testing.assert_allclose(scorer.fit(features, np.zeros(5)), np.array([0, 0, 0, 0, 10]) / features.std())


@pytest.mark.parametrize("dimensions", [1, 4, 15, 16, 34])  # KD-tree up to 15, brute force beyond
def test_neighbour_distances_are_exact_on_either_search(dimensions, rng):
    from tao_ros.builtin.scorers import NeighbourIndex

    train, query = rng.normal(0, 1, (300, dimensions)), rng.normal(0, 1, (7, dimensions))
    exact = np.sort(np.linalg.norm(query[:, None] - train[None], axis=2), axis=1)
    index = NeighbourIndex(train)
    np.testing.assert_allclose(index.distances(query, 5), exact[:, :5], rtol=1e-9)
    np.testing.assert_allclose(index.distances(query, 1), exact[:, :1], rtol=1e-9)
    assert NeighbourIndex(train[:3]).distances(query, 5).shape == (7, 3)  # k beyond the samples: all of them
    assert index.distances(train[:2], 1)[:, 0].tolist() == [0.0, 0.0]  # a training sample is 0 from itself


def test_held_out_scores_leave_out_the_neighbouring_chunks_too():
    # chunk 1 shows the objects of chunk 0 again (the same people, a moment later); chunk 3, after a
    # gap (another clip), shows others
    features = np.array([[0.0], [0.0], [0.0], [0.0], [3.0], [3.0]])
    groups = np.array([0, 0, 1, 1, 3, 3])
    training = KnnScorer(k=1).fit(features, groups) * features.std()
    # chunks 0 and 1 are each scored without the other: only chunk 3 is left, 3 away
    np.testing.assert_allclose(training[:4], 3.0)
    # chunk 3 has no neighbour: scored against chunks 0 and 1
    np.testing.assert_allclose(training[4:], 3.0)
    # where leaving the neighbours out leaves nothing to fit on, only the own chunk is left out
    np.testing.assert_allclose(held_out_scores(lambda tr, q: np.full(len(q), len(tr)), features[:4], groups[:4], 1),
                               [2, 2, 2, 2])


def test_knn_leave_one_clip_out_differs_from_leave_one_out():
    features = np.array([[0.0], [0.1], [5.0], [5.1]])
    groups = np.array([0, 0, 1, 1])  # each clip's samples only see the other clip
    training = KnnScorer(k=1).fit(features, groups)
    assert np.all(training * features.std() > 4.8)


def test_tail_is_the_surprise_under_the_normal_scores_and_extrapolates_a_pareto_tail(rng):
    # Pareto scores with tail index 3: P(S >= s) = s ** -3 for s >= 1
    normal = (1.0 - rng.random(20000)) ** (-1.0 / 3.0)
    standardizer = Standardizer.fit(normal)
    inside, far = np.array([1.2, 1.5, 2.0]), np.array([10.0, 50.0])
    np.testing.assert_allclose(standardizer(inside, "tail"), 3 * np.log(inside), atol=0.05)
    # far beyond every normal score (P = 1e-3 and 8e-6): still the true surprise, within a tenth
    np.testing.assert_allclose(standardizer(far, "tail"), 3 * np.log(far), rtol=0.1)
    assert standardizer.typical("tail") == pytest.approx(np.log(2.0), abs=0.02)
    # no Pareto tail where nearly every normal score is the lowest (a label all normal objects share):
    # a score far beyond the few that differ grows as the log of how far, not linearly
    bunched = np.concatenate([np.zeros(990), np.full(10, 0.02)])
    rare = Standardizer.fit(bunched)
    assert rare(np.array([0.0]), "tail")[0] == pytest.approx(0.0)
    far = rare(np.array([0.02, 3.5]), "tail")
    # share 0.01 above the 90th percentile (0), mean exceedance 0.02
    np.testing.assert_allclose(far, -np.log(0.01) + np.log1p(np.array([0.02, 3.5]) / 0.02), atol=1e-9)
    assert far[1] < 15
    surprise = standardizer(np.linspace(0.5, 100.0, 500), "tail")
    assert np.all(np.diff(surprise) >= 0) and surprise[0] == 0.0
    assert np.isnan(standardizer(np.array([np.nan]), "tail")[0])


def test_tail_of_a_feature_every_normal_object_shares_stays_bounded(rng):
    # a label: 99.9% of normal objects at distance 0, a few rare ones above
    normal = np.r_[np.zeros(9990), rng.uniform(0.0, 0.3, 10)]
    standardizer = Standardizer.fit(normal)
    shared, odd = standardizer(np.array([0.0, 3.0]), "tail")
    assert shared == 0.0
    assert 5.0 < odd < 50.0  # rarer than any normal object, but not the 1e4 that min-max gives
    assert standardizer(np.array([3.0]), "minmax")[0] > 1e3
