"""Bootstrap intervals: against the normal closed form on a Bernoulli case; strata kept; seeded."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation.bootstrap import bootstrap_intervals, resample_indices, strata
from evaluation.metrics import detection_metrics


def _overall(labels, scores, generators, splits):
    return {"all": detection_metrics(labels, scores)}


def test_the_interval_of_an_accuracy_matches_the_binomial_closed_form() -> None:
    # 400 real images, 320 classified right: acc_real = 0.8 with standard error sqrt(p (1 - p) / n) = 0.02.
    labels = np.r_[np.zeros(400, int), np.ones(400, int)]
    scores = np.r_[np.full(320, -2.2), np.full(80, 2.2), np.full(400, 2.2)]  # logits: real at or below 0
    low, high = bootstrap_intervals(labels, scores, [None] * 800, _overall, resamples=2000)["all"]["acc_real"]
    half_width = 1.959964 * np.sqrt(0.8 * 0.2 / 400)
    assert (low + high) / 2 == pytest.approx(0.8, abs=0.005)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.12)


def test_resamples_keep_the_size_of_every_label_and_generator_group() -> None:
    labels = np.array([0] * 5 + [1] * 3 + [1] * 4)
    generators = [None] * 5 + ["a"] * 3 + ["b"] * 4
    groups = strata(labels, generators)
    rng = np.random.default_rng(1)
    for _ in range(20):
        index = resample_indices(groups, rng)
        picked = [(int(labels[i]), generators[i]) for i in index]
        assert picked.count((0, None)) == 5 and picked.count((1, "a")) == 3 and picked.count((1, "b")) == 4


def test_the_same_seed_gives_the_same_intervals() -> None:
    rng = np.random.default_rng(3)
    labels, scores = rng.integers(0, 2, 200), rng.random(200)
    first = bootstrap_intervals(labels, scores, [None] * 200, _overall, resamples=200, seed=5)
    again = bootstrap_intervals(labels, scores, [None] * 200, _overall, resamples=200, seed=5)
    other = bootstrap_intervals(labels, scores, [None] * 200, _overall, resamples=200, seed=6)
    assert first == again and first != other
    assert first["all"]["roc_auc"][0] < detection_metrics(labels, scores)["roc_auc"] < first["all"]["roc_auc"][1]


def test_a_metric_undefined_in_the_data_gets_no_interval() -> None:
    labels, scores = np.zeros(50, int), np.linspace(0, 1, 50)
    intervals = bootstrap_intervals(labels, scores, [None] * 50, _overall, resamples=50)
    assert "roc_auc" not in intervals["all"] and intervals["all"]["acc_real"] is not None
