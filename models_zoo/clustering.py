"""Correlation clustering: greedy additive edge contraction (GAEC) followed by greedy local moves.

Input: a symmetric matrix W of edge weights, positive = "these two belong together", negative = "apart". A
clustering's objective is the total weight of the edges inside clusters; maximising it is the same as minimising
the usual disagreement cost (cut attractive weight plus joined repulsive weight). The number of clusters is not
given: it comes out of the weights.

GAEC (Keuper et al., 2015): start from singletons; repeatedly join the two clusters whose summed connecting
weight is largest, while it is positive. Local moves: move one node to the cluster (or to a new singleton)
that raises the objective most; repeat until no move does. The result is locally optimal for single-node
moves (tested), and equal to the exhaustive optimum on small graphs in the tests.
"""
from __future__ import annotations

import numpy as np


def objective(labels: np.ndarray, weights: np.ndarray) -> float:
    """Sum of the weights of the edges whose two ends share a cluster (each edge once)."""
    same = labels[:, None] == labels[None, :]
    return float(np.sum(np.triu(weights * same, k=1)))


def _relabel(labels: np.ndarray) -> np.ndarray:
    _, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64)


def gaec(weights: np.ndarray) -> np.ndarray:
    """Greedy additive edge contraction; returns a cluster label per node."""
    n = len(weights)
    between = weights.astype(np.float64).copy()
    np.fill_diagonal(between, -np.inf)
    alive = np.ones(n, dtype=bool)
    members = [[i] for i in range(n)]
    while True:
        masked = np.where(alive[:, None] & alive[None, :], between, -np.inf)
        a, b = np.unravel_index(np.argmax(masked), masked.shape)
        if not masked[a, b] > 0:
            break
        between[a, :] += between[b, :]  # cluster a absorbs b: its edges to every other cluster add up
        between[:, a] = between[a, :]
        between[a, a] = -np.inf
        alive[b] = False
        members[a] += members[b]
    labels = np.empty(n, dtype=np.int64)
    for cluster, nodes in enumerate(m for m, keep in zip(members, alive, strict=True) if keep):
        labels[nodes] = cluster
    return labels


def local_moves(labels: np.ndarray, weights: np.ndarray, max_rounds: int = 100) -> np.ndarray:
    """Move single nodes while that raises the objective (to another cluster, or alone)."""
    labels = _relabel(labels.copy())
    w = weights.astype(np.float64).copy()
    np.fill_diagonal(w, 0.0)
    for _ in range(max_rounds):
        moved = False
        for node in range(len(labels)):
            clusters = int(labels.max()) + 1
            gain_to = np.bincount(labels, weights=w[node], minlength=clusters)  # weight from node into each cluster
            current = gain_to[labels[node]]
            best = int(np.argmax(gain_to))
            if gain_to[best] > current + 1e-12 and best != labels[node]:
                labels[node], moved = best, True
            elif current < -1e-12:  # alone beats staying
                labels[node], moved = clusters, True
            labels = _relabel(labels)
        if not moved:
            break
    return labels


def correlation_clustering(weights: np.ndarray) -> np.ndarray:
    """GAEC, then local moves; a cluster label per node (0, 1, …)."""
    return local_moves(gaec(weights), weights)


def weights_from_embeddings(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Edge weights threshold − ‖e_i − e_j‖²: attractive closer than the threshold, repulsive beyond it."""
    squared = np.sum((embeddings[:, None, :] - embeddings[None, :, :]) ** 2, axis=-1)
    return threshold - squared
