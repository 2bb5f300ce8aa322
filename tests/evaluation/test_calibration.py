"""Calibration: ECE against a case computed by hand and against scikit-learn's calibration_curve, Brier against
brier_score_loss, and the reliability bins the protocols store."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from evaluation.metrics import (
    CALIBRATION_BINS,
    brier_score,
    detection_metrics,
    expected_calibration_error,
    probabilities,
    reliability_bins,
)
from evaluation.protocols.cross_generator import ALL_SUBSET, RELIABILITY, bin_metric, summarise


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def test_ece_of_a_case_worked_by_hand() -> None:
    # Bin (0.6, 0.6667]: p = 0.62, 0.62, 0.62, 0.62 with 3 generated → |0.62 − 0.75| = 0.13, weight 4/6.
    # Bin (0.0667, 0.1333]: p = 0.1, 0.1 with 0 generated → |0.1 − 0| = 0.1, weight 2/6.
    labels = np.array([1, 1, 1, 0, 0, 0])
    scores = np.array([_logit(p) for p in (0.62, 0.62, 0.62, 0.62, 0.1, 0.1)])
    assert expected_calibration_error(labels, scores) == pytest.approx(4 / 6 * 0.13 + 2 / 6 * 0.1, abs=1e-12)
    confidence, frequency, counts = reliability_bins(labels, scores)
    assert counts.sum() == 6 and counts[9] == 4 and counts[1] == 2
    assert frequency[9] == pytest.approx(0.75) and confidence[1] == pytest.approx(0.1)
    assert np.isnan(confidence[0]) and np.isnan(frequency[14])  # empty bins
    perfect = np.array([_logit(0.999999)] * 5 + [_logit(1e-6)] * 5)
    assert expected_calibration_error(np.r_[np.ones(5), np.zeros(5)], perfect) == pytest.approx(0, abs=1e-5)


@pytest.mark.parametrize(("strategy", "adaptive"), [("uniform", False), ("quantile", True)])
def test_ece_equals_the_weighted_gaps_of_scikit_learns_calibration_curve(strategy: str, adaptive: bool) -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 700)
    scores = rng.normal(0, 2, 700) + 1.5 * labels  # overconfident in places, underconfident in others
    p = probabilities(scores)
    frequency, confidence = calibration_curve(labels, p, n_bins=CALIBRATION_BINS, strategy=strategy)
    edges = (np.percentile(p, np.linspace(0, 1, CALIBRATION_BINS + 1) * 100) if adaptive
             else np.linspace(0, 1, CALIBRATION_BINS + 1))
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=CALIBRATION_BINS)
    expected = float(np.sum(counts[counts > 0] * np.abs(frequency - confidence)) / labels.size)
    assert expected_calibration_error(labels, scores, adaptive=adaptive) == pytest.approx(expected, abs=1e-12)
    assert brier_score(labels, scores) == pytest.approx(brier_score_loss(labels, p), abs=1e-12)
    metrics = detection_metrics(labels, scores)
    assert metrics["ece" + ("_adaptive" if adaptive else "")] == pytest.approx(expected, abs=1e-12)
    assert metrics["brier"] == pytest.approx(brier_score_loss(labels, p), abs=1e-12)


def test_probabilities_of_extreme_logits_do_not_overflow() -> None:
    with np.errstate(over="raise", invalid="raise"):  # (exp(−1000) underflows to 0, as it should)
        p = probabilities(np.array([-1000.0, -40.0, 0.0, 30.0, 1000.0]))
    assert p[0] == 0.0 and p[-1] == 1.0 and p[2] == 0.5
    assert p[1] == pytest.approx(np.exp(-40.0), rel=1e-12) and 1 - p[3] == pytest.approx(np.exp(-30.0), rel=1e-3)


def test_cross_generator_stores_the_reliability_bins_per_generator_and_over_all_images() -> None:
    rng = np.random.default_rng(5)
    labels = np.r_[np.zeros(50, int), np.ones(100, int)]
    generators = [None] * 50 + ["a"] * 50 + ["b"] * 50
    scores = rng.normal(0, 2, 150) + labels
    out = summarise(labels, scores, generators, np.full(150, "test", dtype=object), {"threshold": 0.0, "source": None})
    overall = out[f"{ALL_SUBSET}/{RELIABILITY}"]
    frequency, confidence = calibration_curve(labels, probabilities(scores), n_bins=CALIBRATION_BINS)
    stored = [(overall[bin_metric("frequency", b)], overall[bin_metric("confidence", b)])
              for b in range(CALIBRATION_BINS) if overall[bin_metric("count", b)]]
    assert np.allclose(stored, np.c_[frequency, confidence], atol=1e-12)
    assert sum(overall[bin_metric("count", b)] for b in range(CALIBRATION_BINS)) == 150
    assert f"a/{RELIABILITY}" in out and f"b/{RELIABILITY}" in out
