"""Open-set attribution: which generator made an image, for detectors that return one logit per class.

A detector may return N×(G+1) logits over [real, generator₁ … generator_G], the benchmark's declared generators
in sorted order (``declared_classes``; the benchmark page lists them). Its binary score is the log-odds of
"any generator" (evaluation.detectors.loading.select_logit); here its argmax is its attribution. Reported:
accuracy over every image, balanced accuracy (the mean recall over the classes), and the confusion matrix as
rows of shares (each true class's images, by predicted class). Numpy only; tests compare with scikit-learn.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

REAL_CLASS = "real"
MAX_CLASSES = 256  # real and at most 255 generators: the widest output a detector may return per image
CLASS_PREFIX = "class-"  # the worker's condition names of the class logits: class-0 (real), class-1 …
ATTRIBUTION = "attribution"  # result key of the headline numbers (subset "mean")
CONFUSION = "confusion"  # result key of each true class's row of the matrix (subset: that class)


def class_conditions(count: int) -> list[str]:
    return [f"{CLASS_PREFIX}{c}" for c in range(count)]


def classes_of(generators: Iterable[str | None]) -> list[str]:
    """[real, the named generators in sorted order]: the order of an attribution detector's logits."""
    return [REAL_CLASS, *sorted({g for g in generators if g})]


def declared_classes(labels: np.ndarray, generators: Sequence[str | None]) -> list[str]:
    """The classes of these images: real, then the generators of the generated ones (``classes_of``)."""
    return classes_of(g for g, y in zip(generators, labels, strict=True) if y == 1)


def _true_classes(labels: np.ndarray, generators: Sequence[str | None], classes: list[str]) -> np.ndarray:
    index = {name: k for k, name in enumerate(classes)}
    return np.array([0 if y == 0 else index[g or ""] for y, g in zip(labels, generators, strict=True)], dtype=np.int64)


def attribution_metrics(labels: np.ndarray, class_logits: np.ndarray, generators: Sequence[str | None]
                        ) -> dict[str, dict[str, float | None]]:
    """``class_logits``: C×N. Keys ``mean/attribution`` and ``<true class>/confusion``; when C is not the number
    of declared classes only ``mean/attribution`` with both counts (the page says what was expected)."""
    classes = declared_classes(labels, generators)
    returned = int(class_logits.shape[0])
    counts = {"classes_returned": float(returned), "classes_declared": float(len(classes))}
    unnamed = any(y == 1 and not g for y, g in zip(labels, generators, strict=True))  # no class to attribute to
    if returned != len(classes) or not len(labels) or unnamed:
        return {f"mean/{ATTRIBUTION}": {"attribution_acc": None, "attribution_balanced_acc": None, **counts}}
    truth = _true_classes(labels, generators, classes)
    predicted = np.argmax(class_logits, axis=0)
    matrix = np.zeros((len(classes), len(classes)))
    np.add.at(matrix, (truth, predicted), 1.0)
    present = matrix.sum(axis=1) > 0
    recall = np.diag(matrix)[present] / matrix.sum(axis=1)[present]
    out: dict[str, dict[str, float | None]] = {f"mean/{ATTRIBUTION}": {
        "attribution_acc": float(np.mean(predicted == truth)), "attribution_balanced_acc": float(np.mean(recall)),
        **counts}}
    for k, name in enumerate(classes):
        total = matrix[k].sum()
        out[f"{name}/{CONFUSION}"] = {f"to_{other}": (float(matrix[k, j] / total) if total else None)
                                      for j, other in enumerate(classes)}
    return out
