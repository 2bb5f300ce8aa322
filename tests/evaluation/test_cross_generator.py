"""The cross-generator protocol's grouping: a generator's images plus its own and the shared real images."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from evaluation.protocols import UnknownProtocolError, get_protocol, list_protocols
from evaluation.protocols.cross_generator import subset_metrics


def test_subsets_use_the_shared_real_pool_and_their_own_reals() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.7, 0.2, 0.9, 0.4, 0.8, 0.6])
    generators = [None, None, "b", "a", "a", "b", "b"]
    metrics = subset_metrics(labels, scores, generators, threshold=0.5)
    assert set(metrics) == {"a", "b", "mean"}
    # a: reals 0.1, 0.7 (shared) vs fakes 0.9, 0.4; b: reals 0.1, 0.7, 0.2 vs fakes 0.8, 0.6.
    assert metrics["a"]["roc_auc"] == pytest.approx(roc_auc_score([0, 0, 1, 1], [0.1, 0.7, 0.9, 0.4]))
    assert metrics["b"]["roc_auc"] == pytest.approx(roc_auc_score([0, 0, 0, 1, 1], [0.1, 0.7, 0.2, 0.8, 0.6]))
    assert metrics["a"]["n_real"] == 2 and metrics["b"]["n_real"] == 3
    assert metrics["a"]["acc_generated"] == 0.5 and metrics["b"]["acc_generated"] == 1.0
    assert metrics["mean"]["acc_generated"] == pytest.approx(0.75)


def test_the_registry_names_protocols_and_suggests_close_names() -> None:
    assert "cross-generator" in list_protocols()
    assert get_protocol("cross-generator").version >= 1
    with pytest.raises(UnknownProtocolError, match="cross-generator"):
        get_protocol("cross_generatr")


def test_sources_without_a_shared_pool_pair_each_generator_with_every_real_image() -> None:
    # Faces-HQ: two real sources, two generated ones, no shared pool.
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.2, 0.3, 0.9, 0.4, 0.8, 0.7])
    generators = ["celeba", "celeba", "ffhq", "ffhq", "tpdne", "tpdne", "100k", "100k"]
    metrics = subset_metrics(labels, scores, generators, threshold=0.5)
    assert set(metrics) == {"100k", "tpdne", "celeba", "ffhq", "mean"}
    reals = [0.1, 0.6, 0.2, 0.3]
    assert metrics["tpdne"]["roc_auc"] == pytest.approx(roc_auc_score([0, 0, 0, 0, 1, 1], reals + [0.9, 0.4]))
    assert metrics["celeba"]["acc_real"] == 0.5 and metrics["celeba"]["acc_generated"] is None
    assert metrics["ffhq"]["acc_real"] == 1.0
    # The mean runs over generator subsets only.
    assert metrics["mean"]["acc_generated"] == pytest.approx((0.5 + 1.0) / 2)
