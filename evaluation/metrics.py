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
METRIC_NAMES = ("acc_real", "acc_generated", MEAN_ACCURACY, "ap", "roc_auc", *FPR_TARGETS)


def _as_arrays(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if not np.isin(y, (0, 1)).all():
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
    plus counts. The ranking is computed once and shared (the bootstrap calls this thousands of times); each
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
    return {"acc_real": acc_real, "acc_generated": acc_generated, MEAN_ACCURACY: both, **ranked,
            "n_real": float(n_real), "n_generated": float(n_generated)}


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
