"""Correlation clustering against exhaustive search on small graphs, local optimality, planted structure."""
from __future__ import annotations

import numpy as np
import pytest

from models_zoo.clustering import correlation_clustering, gaec, local_moves, objective, weights_from_embeddings


def _partitions(n: int):
    """Every set partition of range(n), as label arrays (restricted growth strings)."""
    def grow(prefix: list[int], top: int):
        if len(prefix) == n:
            yield np.array(prefix)
            return
        for label in range(top + 2):
            yield from grow(prefix + [label], max(top, label))
    yield from grow([0], 0)


def _brute_force(weights: np.ndarray) -> float:
    return max(objective(labels, weights) for labels in _partitions(len(weights)))


def _random_graph(rng: np.random.Generator, n: int) -> np.ndarray:
    upper = np.triu(rng.normal(0, 1, (n, n)), k=1)
    return upper + upper.T


def test_the_partition_enumeration_has_bell_many() -> None:
    assert [sum(1 for _ in _partitions(n)) for n in range(1, 7)] == [1, 2, 5, 15, 52, 203]


@pytest.mark.parametrize("seed", range(12))
def test_it_reaches_the_exhaustive_optimum_on_small_graphs(seed: int) -> None:
    weights = _random_graph(np.random.default_rng(seed), 7)
    labels = correlation_clustering(weights)
    assert objective(labels, weights) == pytest.approx(_brute_force(weights))


@pytest.mark.parametrize("seed", range(5))
def test_no_single_node_move_improves_the_result(seed: int) -> None:
    weights = _random_graph(np.random.default_rng(100 + seed), 25)
    labels = correlation_clustering(weights)
    best = objective(labels, weights)
    for node in range(25):
        for target in range(labels.max() + 2):
            moved = labels.copy()
            moved[node] = target
            assert objective(moved, weights) <= best + 1e-9
    assert objective(labels, weights) >= objective(gaec(weights), weights) - 1e-9


def test_a_planted_clustering_is_found_without_being_told_how_many_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (4, 3))
    truth = np.repeat(np.arange(4), 10)
    points = centres[truth] + rng.normal(0, 0.3, (40, 3))
    labels = correlation_clustering(weights_from_embeddings(points, threshold=2.0))
    assert len(set(labels)) == 4
    assert all(len(set(labels[truth == k])) == 1 for k in range(4))


def test_local_moves_leave_an_optimum_alone() -> None:
    weights = _random_graph(np.random.default_rng(5), 6)
    best = max(_partitions(6), key=lambda labels: objective(labels, weights))
    assert objective(local_moves(best, weights), weights) == pytest.approx(objective(best, weights))
