"""Cross-generator: score every test image once, then metrics per generator subset and averaged.

A generator subset is that generator's generated images plus the real images that belong to it: real
rows naming the generator (GenImage's per-generator ``nature`` folders) and real rows of the shared pool
(generator null, as in the mini benchmark); when a dataset has neither (Faces-HQ, whose real images come
from sources of their own), every real image. A real source that no generator names (CelebA-HQ, FFHQ)
gets a subset of its own, with its accuracy on real images. "mean" is the unweighted mean over the
generator subsets only.

v2: added the all-real pairing and the real-source subsets (v1 datasets give the same numbers).
v3: added TPR at 1 % and 0.1 % FPR.
v4: accuracies at a threshold carried from the validation split (``*_carried``, ``threshold_carried``): fitted
    by balanced accuracy on the validation images of the declared source generator (config ``source``), or of
    every validation image, then applied to every test subset. Needs the validation rows scored too.
v5: scores are logits (the fixed threshold is logit 0, i.e. probability 0.5): a confident detector's images no
    longer tie at probability 1.0, which changes AP, ROC-AUC and TPR at low FPR; the carried threshold is fitted
    on logits (midpoints between logits) and ``threshold_carried`` is a logit.
v6: calibration of sigmoid(logit): ECE (15 equal-width bins), adaptive ECE (15 equal-mass bins) and Brier per
    subset, the same on the validation split (``*_val``), and the reliability diagram's bins (condition
    ``reliability``: per generator subset and over all test images, ``all``); a detector that returns one
    logit per class (evaluation.attribution) also gets its attribution accuracy and confusion matrix.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.attribution import attribution_metrics, class_conditions
from evaluation.errors import DetectorOutputError
from evaluation.metrics import (
    CALIBRATION_BINS,
    CALIBRATION_NAMES,
    DEFAULT_THRESHOLD,
    MEAN_ACCURACY,
    METRIC_NAMES,
    balanced_threshold,
    calibration_metrics,
    detection_metrics,
    mean_of_subsets,
    reliability_bins,
)
from evaluation.protocols.base import (
    EVALUATED_SPLIT,
    VALIDATION_SPLIT,
    ProgressCallback,
    Protocol,
    ProtocolResult,
    ShardData,
    float32_scores,
    register,
)

NAME = "cross-generator"
MEAN_SUBSET = "mean"
ALL_SUBSET = "all"  # every image of the split, pooled
RELIABILITY = "reliability"
RELIABILITY_SERIES = ("confidence", "frequency", "count")  # per bin: mean p(generated), share generated, images


def _real_pool(labels: np.ndarray, gen: np.ndarray, name: str) -> np.ndarray:
    """The real images a generator is judged against (see the module docstring)."""
    real = labels == 0
    own_or_shared = real & ((gen == name) | (gen == ""))
    return own_or_shared if own_or_shared.any() or (real & (gen == "")).any() else real


def subset_masks(labels: np.ndarray, generators: list[str | None]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The images of each subset, and which subsets are generator subsets (the ones "mean" averages)."""
    gen = np.array([g if g is not None else "" for g in generators], dtype=object)
    names = sorted({g for g in gen[labels == 1] if g})
    masks = {name: ((gen == name) & (labels == 1)) | _real_pool(labels, gen, name) for name in names}
    for source in sorted({g for g in gen[labels == 0] if g} - set(names)):
        masks[source] = (gen == source) & (labels == 0)
    return masks, names


def subset_metrics(
    labels: np.ndarray, scores: np.ndarray, generators: list[str | None], threshold: float
) -> dict[str, dict[str, float | None]]:
    """Metrics per generator subset plus their mean, from aligned labels, scores and generators."""
    masks, generator_subsets = subset_masks(labels, generators)
    per_subset = {name: detection_metrics(labels[m], scores[m], threshold=threshold) for name, m in masks.items()}
    per_subset[MEAN_SUBSET] = mean_of_subsets({n: per_subset[n] for n in generator_subsets}, METRIC_NAMES)
    return per_subset


ACCURACIES = ("acc_real", "acc_generated", MEAN_ACCURACY)


def bin_metric(series: str, index: int) -> str:
    return f"{series}_{index:02d}"


def reliability_metrics(labels: np.ndarray, scores: np.ndarray, generators: list[str | None]
                        ) -> dict[str, dict[str, float | None]]:
    """The reliability diagram's bins per generator subset and over every image (``ALL_SUBSET``); an empty bin's
    confidence and frequency are None."""
    masks, names = subset_masks(labels, generators)
    chosen = {name: masks[name] for name in names} | {ALL_SUBSET: np.ones(len(labels), dtype=bool)}
    out: dict[str, dict[str, float | None]] = {}
    for subset, keep in chosen.items():
        columns = reliability_bins(labels[keep], scores[keep])
        out[subset] = {bin_metric(series, b): (None if np.isnan(values[b]) else float(values[b]))
                       for series, values in zip(RELIABILITY_SERIES, columns, strict=True)
                       for b in range(CALIBRATION_BINS)}
    return out


def _validation_calibration(labels: np.ndarray, scores: np.ndarray, generators: list[str | None]
                            ) -> dict[str, dict[str, float | None]]:
    """ECE, adaptive ECE and Brier of each subset on the validation split (``*_val``)."""
    if not len(labels):
        return {}
    masks, names = subset_masks(labels, generators)
    per_subset = {subset: calibration_metrics(labels[keep], scores[keep]) for subset, keep in masks.items()}
    per_subset[MEAN_SUBSET] = mean_of_subsets({n: per_subset[n] for n in names}, CALIBRATION_NAMES)
    return {subset: {f"{name}_val": values.get(name) for name in CALIBRATION_NAMES} for subset, values in per_subset.items()}


def carried_threshold(labels: np.ndarray, scores: np.ndarray, generators: list[str | None],
                      source: str | None) -> float | None:
    """The balanced-accuracy threshold on the validation images of the source subset (its generated images and
    the real images it is judged against), or of every validation image when no source is declared."""
    if len(labels) == 0:
        return None
    if source:
        masks, _ = subset_masks(labels, generators)
        if source not in masks:
            return None
        labels, scores = labels[masks[source]], scores[masks[source]]
    return balanced_threshold(labels, scores)


def summarise(labels: np.ndarray, scores: np.ndarray, generators: list[str | None], splits: np.ndarray,
              config: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Test-split metrics at the fixed threshold, at the threshold carried from the validation split, the
    validation split's calibration and the test split's reliability bins (keys ``<subset>/reliability``).
    ``scores``: N logits of "generated", or (1 + C)×N with an attribution detector's C class logits below."""
    matrix = np.asarray(scores, dtype=np.float64)
    scores, class_logits = (matrix, None) if matrix.ndim == 1 else (matrix[0], matrix[1:])
    test, val = splits == EVALUATED_SPLIT, splits == VALIDATION_SPLIT
    test_generators = [g for g, keep in zip(generators, test, strict=True) if keep]
    val_generators = [g for g, keep in zip(generators, val, strict=True) if keep]
    metrics = subset_metrics(labels[test], scores[test], test_generators, float(config["threshold"]))
    t = carried_threshold(labels[val], scores[val], val_generators, config.get("source"))
    carried = subset_metrics(labels[test], scores[test], test_generators, t) if t is not None else {}
    calibration = _validation_calibration(labels[val], scores[val], val_generators)
    for subset, values in metrics.items():
        at_t = carried.get(subset, {})
        values.update({f"{name}_carried": at_t.get(name) for name in ACCURACIES})
        values.update({f"{name}_val": calibration.get(subset, {}).get(f"{name}_val") for name in CALIBRATION_NAMES})
        values["threshold_carried"] = t
    reliability = reliability_metrics(labels[test], scores[test], test_generators)
    attribution = {} if class_logits is None else attribution_metrics(labels[test], class_logits[:, test], test_generators)
    return metrics | {f"{subset}/{RELIABILITY}": values for subset, values in reliability.items()} | attribution


def _check_classes(classes: np.ndarray | None, class_logits: np.ndarray | None) -> None:
    """The detector must give every batch the same number of class logits as its first (or none every time)."""
    first = None if classes is None else classes.shape[0]
    now = None if class_logits is None else class_logits.shape[1]
    if first != now:
        raise DetectorOutputError(f"The detector returned {first or 1} logits per image for its first batch and "
                                  f"{now or 1} for a later one; every batch must have the same output shape.")


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    """The logit of "generated" per image; for an attribution detector, its class logits too (as conditions
    ``class-0`` … below the clean scores)."""
    scores = np.empty(len(data.rows), dtype=np.float64)
    classes: np.ndarray | None = None
    done = 0
    for rows, images in data.batches():
        logits, class_logits = detector.outputs(images)
        scores[done : done + len(rows)] = logits
        if done == 0 and class_logits is not None:
            classes = np.empty((class_logits.shape[1], len(data.rows)), dtype=np.float64)
        _check_classes(classes, class_logits)
        if classes is not None and class_logits is not None:
            classes[:, done : done + len(rows)] = class_logits.T
        done += len(rows)
        progress(done, "scoring")
    row_ids = [r.row_id for r in data.rows]
    if classes is None:
        return ProtocolResult(row_ids=row_ids, scores=float32_scores(scores))
    return ProtocolResult(row_ids=row_ids, scores=float32_scores(np.vstack([scores, classes])),
                          conditions=["", *class_conditions(len(classes))])


PROTOCOL = register(
    Protocol(
        name=NAME,
        version=6,
        title="Cross-generator accuracy, AP and ROC-AUC",
        needs=frozenset({"outputs"}),
        default_config={"threshold": DEFAULT_THRESHOLD, "source": None, "batch_size": 32},
        run=run,
        summarise=summarise,
        splits=(EVALUATED_SPLIT, VALIDATION_SPLIT),
    )
)
