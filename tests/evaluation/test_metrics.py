"""Each metric against scikit-learn on random and tied logits, and a case small enough to do by hand."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from evaluation.metrics import (
    DEFAULT_THRESHOLD,
    LOGIT_LIMIT,
    ScoreKind,
    accuracy_at,
    average_precision,
    detection_metrics,
    logits_of,
    mean_of_subsets,
    roc_auc,
)


def _cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    cases = []
    for n in (2, 5, 37, 400):
        labels = rng.integers(0, 2, n)
        labels[:2] = [0, 1]  # both classes present
        cases.append((labels, rng.normal(0.0, 4.0, n)))  # logits
        cases.append((labels, np.round(rng.normal(0.0, 2.0, n))))  # many ties
    return cases


@pytest.mark.parametrize(("labels", "scores"), _cases())
def test_average_precision_equals_sklearn(labels: np.ndarray, scores: np.ndarray) -> None:
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize(("labels", "scores"), _cases())
def test_roc_auc_equals_sklearn(labels: np.ndarray, scores: np.ndarray) -> None:
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize(("labels", "scores"), _cases())
def test_accuracies_equal_a_plain_count(labels: np.ndarray, scores: np.ndarray) -> None:
    metrics = detection_metrics(labels, scores)
    real_right = sum(1 for y, s in zip(labels, scores, strict=True) if y == 0 and s <= 0)  # logit 0: p = 0.5
    fake_right = sum(1 for y, s in zip(labels, scores, strict=True) if y == 1 and s > 0)
    assert metrics["acc_real"] == pytest.approx(real_right / np.sum(labels == 0))
    assert metrics["acc_generated"] == pytest.approx(fake_right / np.sum(labels == 1))
    assert metrics["acc_mean"] == pytest.approx((metrics["acc_real"] + metrics["acc_generated"]) / 2)


def test_a_hand_computed_case() -> None:
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.6, 0.4, 0.9]
    # Ranking 0.9(+) 0.6(-) 0.4(+) 0.1(-): precision at the positives 1/1 and 2/3 -> AP = (1 + 2/3) / 2.
    assert average_precision(labels, scores) == pytest.approx(5 / 6)
    # Pairs (pos, neg): (0.4, 0.1) right, (0.4, 0.6) wrong, (0.9, ·) both right -> 3/4.
    assert roc_auc(labels, scores) == pytest.approx(0.75)
    assert accuracy_at(labels, scores, 0.5, 0) == 0.5 and accuracy_at(labels, scores, 0.5, 1) == 0.5


def test_a_logit_of_exactly_zero_counts_as_real() -> None:
    assert DEFAULT_THRESHOLD == 0.0
    assert detection_metrics([0, 1], [0.0, 0.0])["acc_real"] == 1.0
    assert detection_metrics([0, 1], [0.0, 0.0])["acc_generated"] == 0.0


def test_undefined_metrics_are_none_not_nan() -> None:
    metrics = detection_metrics([1, 1, 1], [-1.2, 0.7, 0.9])
    assert metrics["roc_auc"] is None and metrics["acc_real"] is None and metrics["acc_mean"] is None
    assert metrics["acc_generated"] == pytest.approx(2 / 3)
    assert average_precision([0, 0], [0.1, 0.2]) is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        detection_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        detection_metrics([0, 2], [0.5, 0.5])


def test_mean_of_subsets_is_unweighted_and_none_when_a_subset_lacks_a_value() -> None:
    per_subset = {"a": {"ap": 0.5, "roc_auc": None}, "b": {"ap": 1.0, "roc_auc": 0.7}}
    assert mean_of_subsets(per_subset, ["ap", "roc_auc"]) == {"ap": 0.75, "roc_auc": None}


@pytest.mark.parametrize(("labels", "scores"), _cases())
@pytest.mark.parametrize("target", [0.0, 0.001, 0.01, 0.2])
def test_tpr_at_a_fixed_fpr_equals_the_best_point_of_sklearns_roc_curve(labels, scores, target) -> None:
    from sklearn.metrics import roc_curve

    from evaluation.metrics import tpr_at_fpr

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert tpr_at_fpr(labels, scores, target) == pytest.approx(tpr[fpr <= target].max(), abs=1e-12)


def test_tpr_at_fpr_by_hand() -> None:
    from evaluation.metrics import tpr_at_fpr

    # 100 real at 0.0..0.99; generated at 0.995 (caught at any FPR) and 0.5 (caught only above 49 % FPR).
    labels = np.r_[np.zeros(100, int), [1, 1]]
    scores = np.r_[np.arange(100) / 100, [0.995, 0.5]]
    assert tpr_at_fpr(labels, scores, 0.01) == 0.5
    assert tpr_at_fpr(labels, scores, 0.5) == 1.0
    assert detection_metrics(labels, scores)["tpr_at_1pct_fpr"] == 0.5


@pytest.mark.parametrize(("labels", "scores"), _cases())
def test_detection_metrics_equals_the_separate_functions(labels, scores) -> None:
    from evaluation.metrics import FPR_TARGETS, tpr_at_fpr

    metrics = detection_metrics(labels, scores)
    assert metrics["ap"] == average_precision(labels, scores)
    assert metrics["roc_auc"] == roc_auc(labels, scores)
    for name, target in FPR_TARGETS.items():
        assert metrics[name] == tpr_at_fpr(labels, scores, target)
    assert metrics["acc_real"] == accuracy_at(labels, scores, DEFAULT_THRESHOLD, 0)
    assert metrics["acc_generated"] == accuracy_at(labels, scores, DEFAULT_THRESHOLD, 1)
    one_class = detection_metrics(np.zeros(4, int), np.linspace(0, 1, 4))
    assert (one_class["ap"], one_class["roc_auc"], one_class["acc_generated"]) == (None, None, None)


@pytest.mark.parametrize(("labels", "scores"), _cases())
def test_the_balanced_threshold_is_the_best_of_every_possible_cut(labels, scores) -> None:
    from evaluation.metrics import balanced_threshold

    def balanced(t: float) -> float:
        return (np.mean(scores[labels == 0] <= t) + np.mean(scores[labels == 1] > t)) / 2

    chosen = balanced_threshold(labels, scores)
    cuts = sorted(set(scores)) + [min(scores) - 1]  # brute force: every cut that changes a decision
    assert balanced(chosen) == pytest.approx(max(balanced(t) for t in cuts))


def test_the_balanced_threshold_by_hand() -> None:
    from evaluation.metrics import balanced_threshold

    # Real at 0.1 and 0.3, generated at 0.4 and 0.9: any cut in [0.3, 0.4) separates them; the midpoint is 0.35.
    assert balanced_threshold([0, 0, 1, 1], [0.1, 0.3, 0.4, 0.9]) == pytest.approx(0.35)
    assert balanced_threshold([0, 0], [0.1, 0.3]) is None


def test_the_balanced_threshold_prefers_the_cut_closest_to_logit_zero() -> None:
    from evaluation.metrics import balanced_threshold

    # Cuts at -3.5 and at 4 are equally good (balanced accuracy 0.75); -3.5 is closer to logit 0.
    assert balanced_threshold([0, 1, 0, 1], [-5.0, -2.0, 2.0, 6.0]) == -3.5


TRANSFORMS = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "affine": lambda x: 3 * x + 1,
    "exp": np.exp,
    "cube": lambda x: x**3,
}


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize(("labels", "scores"), _cases())
def test_ranking_metrics_are_the_same_under_any_strictly_increasing_transform(labels, scores, transform) -> None:
    f = TRANSFORMS[transform]
    moved = f(scores)
    assert (np.diff(moved[np.argsort(scores)]) > 0).sum() == len(np.unique(scores)) - 1  # still strictly increasing
    original, after = detection_metrics(labels, scores), detection_metrics(labels, moved, threshold=float(f(0.0)))
    for name in ("ap", "roc_auc", "tpr_at_1pct_fpr", "tpr_at_01pct_fpr", "acc_real", "acc_generated"):
        assert after[name] == pytest.approx(original[name], abs=1e-12), name


def test_stored_probabilities_become_logits_in_float64_in_the_same_order() -> None:
    from scipy.special import logit

    p = np.array([0.0, 1e-30, 0.2, 0.5, 0.7, 1 - 2**-24, 1.0, 1.0], dtype=np.float32)
    converted = logits_of(p, ScoreKind.PROBABILITY)
    assert converted.dtype == np.float64
    np.testing.assert_allclose(converted[1:-2], logit(p[1:-2].astype(np.float64)), rtol=1e-12)
    assert converted[3] == 0.0  # probability 0.5 is logit 0, so the fixed threshold means the same
    assert (converted[0], converted[-1]) == (-LOGIT_LIMIT, LOGIT_LIMIT)  # finite: midpoints stay defined
    assert (np.diff(converted[:-1]) > 0).all() and converted[-1] == converted[-2]  # order and ties kept
    labels = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    assert average_precision(labels, converted) == pytest.approx(average_precision_score(labels, p), abs=1e-12)
    assert roc_auc(labels, converted) == pytest.approx(roc_auc_score(labels, p), abs=1e-12)
    np.testing.assert_array_equal(logits_of([-70.0, 3.0], ScoreKind.LOGIT), [-70.0, 3.0])
    with pytest.raises(ValueError, match="probabilities must lie in"):
        logits_of([1.5], "probability")
