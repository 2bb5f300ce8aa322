"""Triplet losses by hand, label noise, triplet sampling, cluster scores against scikit-learn and brute force,
and the CPU recipe training a few steps."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from models_zoo.triplet import (
    LOSSES,
    cluster_embedding,
    cluster_scores,
    noisy_labels,
    sample_triplets,
    threshold_for,
    train_embedding,
)


def test_the_losses_equal_their_formulas_on_a_hand_case() -> None:
    a = torch.tensor([[0.0, 0.0]])
    p = torch.tensor([[1.0, 1.0]])  # d(a, p) = 2
    n = torch.tensor([[1.0, 0.0]])  # d(a, n) = 1
    assert LOSSES["standard"](a, p, n).item() == pytest.approx(max(0, 2 - 1 + 1))
    assert LOSSES["improved"](a, p, n).item() == pytest.approx(max(0, 2 - 1 + 1) + 0.5 * max(0, 2 - 0.1))
    assert LOSSES["absolute"](a, p, n).item() == pytest.approx(max(0, 3 - 1) + max(0, 2 - 1))
    far = torch.tensor([[2.0, 0.0]])  # d = 4 > α: the absolute loss ignores a negative beyond α
    assert LOSSES["absolute"](a, torch.tensor([[0.5, 0.5]]), far).item() == pytest.approx(0.0)


def test_noise_flips_exactly_the_requested_share_to_other_classes() -> None:
    labels = np.repeat(np.arange(5), 40)
    noisy = noisy_labels(labels, 0.2, 5, np.random.default_rng(0))
    assert np.sum(noisy != labels) == 40 and set(noisy) <= set(range(5))
    assert np.array_equal(noisy_labels(labels, 0.0, 5, np.random.default_rng(0)), labels)


def test_triplets_respect_the_labels() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    for a, p, n in sample_triplets(labels, 200, np.random.default_rng(1)):
        assert a != p and labels[a] == labels[p] and labels[n] != labels[a]


def test_cluster_scores_match_scikit_learn_and_a_brute_force_matching() -> None:
    rng = np.random.default_rng(2)
    truth, predicted = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    scores = cluster_scores(truth, predicted)
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(truth, predicted))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(truth, predicted))
    best = max(np.mean(np.array(perm)[predicted] == truth) for perm in itertools.permutations(range(4)))
    assert scores["accuracy"] == pytest.approx(best)


def test_the_recipe_trains_and_the_embedding_clusters_clean_labels(mini_root) -> None:
    from tests.reference import json_rows, load_images

    rows = [r for r in json_rows(mini_root) if r["split"] == "train"]
    picked = [r for g in (None, "upsample", "spectral") for r in [x for x in rows if x["generator"] == g][:40]]
    truth = np.repeat(np.arange(3), 40)
    images = load_images(mini_root, picked, 64)
    net, history = train_embedding(images, truth, "absolute", steps=60, seed=0)
    assert np.mean(history[-10:]) < np.mean(history[:10])  # it learns
    from models_zoo.triplet import embed

    embeddings = embed(net, images)
    result = cluster_embedding(embeddings, truth, k=3, threshold=threshold_for("absolute", embeddings))
    assert result["kmeans"]["accuracy"] > 0.6 and result["correlation"]["clusters"] >= 1
