"""Detection metrics computed from per-image scores, in numpy only (the web process imports this).

Scores are logits of "AI-generated" (a probability above 0.5 is a logit above 0); labels are 0 (real) and
1 (generated). Logits, not probabilities, because float32 probabilities of confident detectors round to exactly
1.0 and tie images the detector ranks apart. AP, ROC-AUC and TPR at a fixed FPR depend only on the order of the
scores, so any strictly increasing transform of them gives the same numbers.
A metric that is undefined for the data (e.g. ROC-AUC with one class) is None, never NaN.
Tests compare each function with scikit-learn.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_THRESHOLD = 0.0  # a logit: probability 0.5
MEAN_ACCURACY = "acc_mean"  # the mean of the accuracies on real and on generated images
# TPR at a fixed false-positive rate: the share of generated images caught when at most 1 % (0.1 %) of the
# real ones are flagged, the operating points a deployment cares about.
FPR_TARGETS = {"tpr_at_1pct_fpr": 0.01, "tpr_at_01pct_fpr": 0.001}
# Calibration of the probabilities sigmoid(logit), computed in float64: expected calibration error over
# CALIBRATION_BINS equal-width bins (``ece``) and equal-mass bins (``ece_adaptive``), and the Brier score.
CALIBRATION_BINS = 15
CALIBRATION_NAMES = ("ece", "ece_adaptive", "brier")
METRIC_NAMES = ("acc_real", "acc_generated", MEAN_ACCURACY, "ap", "roc_auc", *FPR_TARGETS, *CALIBRATION_NAMES)


def _as_arrays(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if not ((y == 0) | (y == 1)).all():  # (np.isin is several times slower, and the bootstrap calls this a lot)
        raise ValueError("labels must be 0 (real) or 1 (generated)")
    return y, s


def accuracy_at(labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float, label: int) -> float | None:
    """Share of images of class ``label`` classified correctly; generated means score > threshold."""
    y, s = _as_arrays(labels, scores)
    mask = y == label
    if not mask.any():
        return None
    predicted = (s[mask] > threshold).astype(np.int64)
    return float(np.mean(predicted == label))


def _ranked_counts(y: IntArray, s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Cumulative true and false positives at each distinct score, highest score first."""
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    # Tied scores form one threshold: keep the last index of each run of equal scores.
    last_of_tie = np.r_[np.flatnonzero(s[1:] != s[:-1]), y.size - 1]
    tps = np.cumsum(y)[last_of_tie].astype(np.float64)
    fps = (1 + last_of_tie - tps).astype(np.float64)
    return tps, fps


def average_precision(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """Sum over thresholds of (R_n − R_{n−1})·P_n, the step-wise AP (no interpolation)."""
    y, s = _as_arrays(labels, scores)
    if not y.any():
        return None
    tps, fps = _ranked_counts(y, s)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """Area under the ROC curve by the trapezoidal rule over distinct thresholds (ties count half)."""
    y, s = _as_arrays(labels, scores)
    if y.all() or not y.any():
        return None
    tps, fps = _ranked_counts(y, s)
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.trapezoid(tpr, fpr))


def tpr_at_fpr(labels: npt.ArrayLike, scores: npt.ArrayLike, target: float) -> float | None:
    """The highest TPR of a threshold whose FPR does not exceed ``target`` (no interpolation between points)."""
    y, s = _as_arrays(labels, scores)
    if y.all() or not y.any():
        return None
    tps, fps = _ranked_counts(y, s)
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    return float(tpr[fpr <= target + 1e-12].max())


def detection_metrics(
    labels: npt.ArrayLike, scores: npt.ArrayLike, *, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float | None]:
    """Accuracy on real, on generated and their mean at ``threshold``, AP, ROC-AUC, TPR at 1 % and 0.1 % FPR,
    calibration (ECE, adaptive ECE, Brier) plus counts. The ranking is computed once and shared (the bootstrap calls this thousands of times); each
    value equals the function of the same name above."""
    y, s = _as_arrays(labels, scores)
    n_generated = int(y.sum())
    n_real = y.size - n_generated
    acc_real = float(np.mean(s[y == 0] <= threshold)) if n_real else None
    acc_generated = float(np.mean(s[y == 1] > threshold)) if n_generated else None
    both = None if acc_real is None or acc_generated is None else (acc_real + acc_generated) / 2
    ranked: dict[str, float | None] = {"ap": None, "roc_auc": None, **dict.fromkeys(FPR_TARGETS)}
    if n_generated:
        tps, fps = _ranked_counts(y, s)
        precision = tps / (tps + fps)
        ranked["ap"] = float(np.sum(np.diff(tps / tps[-1], prepend=0.0) * precision))
        if n_real:
            tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
            ranked["roc_auc"] = float(np.trapezoid(tpr, fpr))
            ranked.update({name: float(tpr[fpr <= target + 1e-12].max()) for name, target in FPR_TARGETS.items()})
    return {"acc_real": acc_real, "acc_generated": acc_generated, MEAN_ACCURACY: both, **ranked, **_calibration(y, s),
            "n_real": float(n_real), "n_generated": float(n_generated)}


def probabilities(logits: npt.ArrayLike) -> FloatArray:
    """sigmoid(logit) in float64, without overflow for logits of any size."""
    s = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(s))
    return np.where(s >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def uniform_bin_edges(bins: int = CALIBRATION_BINS) -> FloatArray:
    return np.linspace(0.0, 1.0, bins + 1)


def _bin_ids(p: FloatArray, edges: FloatArray) -> IntArray:
    """Bin i holds (edges[i], edges[i+1]], the first bin [0, edges[1]] (scikit-learn's calibration_curve)."""
    return np.searchsorted(edges[1:-1], p).astype(np.int64)


def reliability_bins(labels: npt.ArrayLike, scores: npt.ArrayLike, edges: npt.ArrayLike | None = None
                     ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per bin of p(generated): the mean probability, the share of generated images and the count (NaN where a
    bin is empty). Equal-width bins unless ``edges`` are given."""
    y, s = _as_arrays(labels, scores)
    return _binned(y, probabilities(s), uniform_bin_edges() if edges is None else np.asarray(edges, dtype=np.float64))


def _binned(y: IntArray, p: FloatArray, edges: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    ids, n = _bin_ids(p, edges), edges.size - 1
    counts = np.bincount(ids, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(ids, weights=p, minlength=n) / counts
        frequency = np.bincount(ids, weights=y.astype(np.float64), minlength=n) / counts
    return confidence, frequency, counts


def expected_calibration_error(labels: npt.ArrayLike, scores: npt.ArrayLike, *, adaptive: bool = False
                               ) -> float | None:
    """Σ_b (n_b / N)·|mean p_b − share generated_b| over CALIBRATION_BINS bins of p(generated): equal-width,
    or equal-mass (edges at the quantiles of p, as calibration_curve's "quantile" strategy) when ``adaptive``."""
    y, s = _as_arrays(labels, scores)
    return _calibration_error(y, probabilities(s), adaptive) if y.size else None


def _calibration_error(y: IntArray, p: FloatArray, adaptive: bool) -> float:
    # The percentages as calibration_curve forms them (linspace(0, 1) × 100), so an edge that falls on an image's
    # probability falls on it the same way.
    edges = np.percentile(p, uniform_bin_edges() * 100) if adaptive else uniform_bin_edges()
    confidence, frequency, counts = _binned(y, p, edges)
    used = counts > 0
    return float(np.sum(counts[used] * np.abs(confidence[used] - frequency[used])) / y.size)


def brier_score(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """Mean of (p(generated) − label)²."""
    y, s = _as_arrays(labels, scores)
    return float(np.mean((probabilities(s) - y) ** 2)) if y.size else None


def calibration_metrics(labels: npt.ArrayLike, scores: npt.ArrayLike) -> dict[str, float | None]:
    """ECE, adaptive ECE and Brier at once (each equals the function of its name)."""
    return _calibration(*_as_arrays(labels, scores))


def _calibration(y: IntArray, s: FloatArray) -> dict[str, float | None]:
    if not y.size:
        return dict.fromkeys(CALIBRATION_NAMES)
    p = probabilities(s)
    return {"ece": _calibration_error(y, p, False), "ece_adaptive": _calibration_error(y, p, True),
            "brier": float(np.mean((p - y) ** 2))}


def mean_of_subsets(per_subset: Mapping[str, Mapping[str, float | None]], names: Sequence[str]) -> dict[str, float | None]:
    """Unweighted mean over subsets of each metric; None when any subset lacks it."""
    averaged: dict[str, float | None] = {}
    for name in names:
        values = [m.get(name) for m in per_subset.values()]
        averaged[name] = None if not values or any(v is None for v in values) else float(np.mean(values))
    return averaged


def balanced_threshold(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """The threshold that maximises balanced accuracy (mean of the accuracies on real and on generated) on these
    images: a midpoint between consecutive distinct scores, or the highest score (everything real). Among equally
    good thresholds, the one closest to DEFAULT_THRESHOLD. None unless both classes are present."""
    y, s = _as_arrays(labels, scores)
    if y.all() or not y.any():
        return None
    distinct = np.unique(s)
    candidates = np.r_[(distinct[:-1] + distinct[1:]) / 2, distinct[-1]]
    real, generated = np.sort(s[y == 0]), np.sort(s[y == 1])
    # generated means score > t: real right = #real <= t, generated right = #generated > t
    real_right = np.searchsorted(real, candidates, side="right") / real.size
    generated_right = 1 - np.searchsorted(generated, candidates, side="right") / generated.size
    balanced = (real_right + generated_right) / 2
    best = np.flatnonzero(np.isclose(balanced, balanced.max(), rtol=0, atol=1e-12))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - DEFAULT_THRESHOLD))]])


class ScoreKind(StrEnum):
    """What stored scores are: logits (evaluator 0.3 on), or the float32 probabilities stored before."""

    LOGIT = "logit"
    PROBABILITY = "probability"


# The largest float32: ShardDone accepts logits up to it, and a stored probability of exactly 0 or 1 maps to it,
# so converted scores keep their order and midpoints between them stay finite in float64.
LOGIT_LIMIT = float(np.finfo(np.float32).max)


def logits_of(scores: npt.ArrayLike, kind: ScoreKind | str) -> FloatArray:
    """Scores of ``kind`` as float64 logits: logits as they are, probabilities p as log(p) − log(1 − p)."""
    values = np.asarray(scores, dtype=np.float64)
    if ScoreKind(kind) is ScoreKind.LOGIT:
        return values
    if not ((values >= 0) & (values <= 1)).all():
        raise ValueError("probabilities must lie in [0, 1]")
    with np.errstate(divide="ignore"):
        logits = np.log(values) - np.log1p(-values)
    return np.clip(logits, -LOGIT_LIMIT, LOGIT_LIMIT)
