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


def _by_hand_carried(val_labels, val_scores, test_labels, test_scores) -> tuple[float, float]:
    """Brute force: the cut with the best balanced accuracy on validation, then the test accuracy at it."""
    def balanced(labels, scores, t):
        return (np.mean(scores[labels == 0] <= t) + np.mean(scores[labels == 1] > t)) / 2

    cuts = sorted(set(val_scores))
    best = max(balanced(val_labels, val_scores, t) for t in cuts)
    t = min((c for c in cuts if balanced(val_labels, val_scores, c) == best), key=lambda c: abs(c))  # nearest logit 0
    return t, balanced(test_labels, test_scores, t)


def test_the_threshold_is_fitted_on_validation_and_carried_to_the_test_subsets() -> None:
    from evaluation.protocols.cross_generator import summarise

    rng = np.random.default_rng(11)
    # Validation and test logits: a shared real pool and two generators; generator "b" is scored lower overall.
    def part(split: str, n: int):
        labels = np.r_[np.zeros(n, int), np.ones(2 * n, int)]
        generators = [None] * n + ["a"] * n + ["b"] * n
        scores = np.r_[rng.normal(-2.0, 0.8, n), rng.normal(0.5, 0.8, n), rng.normal(-0.8, 0.8, n)]
        return labels, scores, generators, [split] * (3 * n)

    val, test = part("val", 60), part("test", 80)
    labels, scores = np.r_[val[0], test[0]], np.r_[val[1], test[1]]
    generators, splits = val[2] + test[2], np.array(val[3] + test[3], dtype=object)
    out = summarise(labels, scores, generators, splits, {"threshold": 0.0, "source": None})
    t = out["mean"]["threshold_carried"]
    assert -2.0 < t < 0.0  # below logit 0: the generated images score low
    by_hand_t, _ = _by_hand_carried(val[0], val[1], test[0], test[1])
    # Any cut between the same two validation scores decides alike; ours is their midpoint.
    assert np.mean(val[1] <= t) == np.mean(val[1] <= by_hand_t)
    for name in ("a", "b"):
        y, s = test[0][test_mask := np.array([g in (name, None) for g in test[2]])], test[1][test_mask]
        assert out[name]["acc_mean_carried"] == pytest.approx((np.mean(s[y == 0] <= t) + np.mean(s[y == 1] > t)) / 2)
        assert out[name]["acc_mean"] == subset_metrics(test[0], test[1], test[2], 0.0)[name]["acc_mean"]
    # Declaring the source fits the threshold on that generator's validation subset only.
    only_a = summarise(labels, scores, generators, splits, {"threshold": 0.0, "source": "a"})
    a_mask = np.array([g in ("a", None) for g in val[2]])
    by_hand_a, _ = _by_hand_carried(val[0][a_mask], val[1][a_mask], test[0], test[1])
    assert np.mean(val[1][a_mask] <= only_a["mean"]["threshold_carried"]) == np.mean(val[1][a_mask] <= by_hand_a)
    assert only_a["mean"]["threshold_carried"] > t
    assert only_a["a"]["acc_mean_carried"] == pytest.approx(
        (np.mean(test[1][test[0] == 0] <= only_a["mean"]["threshold_carried"])
         + np.mean(test[1][np.array(test[2]) == "a"] > only_a["mean"]["threshold_carried"])) / 2)
    # Without validation rows there is nothing to carry.
    assert summarise(test[0], test[1], test[2], np.array(test[3], dtype=object), {"threshold": 0.0})["mean"][
        "acc_mean_carried"] is None


def test_protocols_declare_the_splits_and_versions_they_score() -> None:
    from evaluation.protocols import EVALUATED_SPLIT, RANKED_PROTOCOL, VALIDATION_SPLIT

    ranked = get_protocol(RANKED_PROTOCOL)
    assert ranked.splits == (EVALUATED_SPLIT, VALIDATION_SPLIT) and ranked.fitting_splits == (VALIDATION_SPLIT,)
    assert ranked.every_version and ranked.default_config["threshold"] == 0.0  # a logit
    for name in ("jpeg-robustness", "resize-robustness"):
        sweep = get_protocol(name)
        assert sweep.splits == (EVALUATED_SPLIT,) and not sweep.every_version
