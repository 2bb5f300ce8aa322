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
"""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.metrics import (
    DEFAULT_THRESHOLD,
    MEAN_ACCURACY,
    METRIC_NAMES,
    balanced_threshold,
    detection_metrics,
    mean_of_subsets,
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
    """Test-split metrics at the fixed threshold, and at the threshold carried from the validation split."""
    test, val = splits == EVALUATED_SPLIT, splits == VALIDATION_SPLIT
    test_generators = [g for g, keep in zip(generators, test, strict=True) if keep]
    metrics = subset_metrics(labels[test], scores[test], test_generators, float(config["threshold"]))
    t = carried_threshold(labels[val], scores[val], [g for g, keep in zip(generators, val, strict=True) if keep],
                          config.get("source"))
    carried = subset_metrics(labels[test], scores[test], test_generators, t) if t is not None else {}
    for subset, values in metrics.items():
        at_t = carried.get(subset, {})
        values.update({f"{name}_carried": at_t.get(name) for name in ACCURACIES})
        values["threshold_carried"] = t
    return metrics


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    scores = np.empty(len(data.rows), dtype=np.float64)
    done = 0
    for rows, images in data.batches():
        scores[done : done + len(rows)] = detector.scores(images)
        done += len(rows)
        progress(done, "scoring")
    return ProtocolResult(row_ids=[r.row_id for r in data.rows], scores=float32_scores(scores))


PROTOCOL = register(
    Protocol(
        name=NAME,
        version=5,
        title="Cross-generator accuracy, AP and ROC-AUC",
        needs=frozenset({"outputs"}),
        default_config={"threshold": DEFAULT_THRESHOLD, "source": None, "batch_size": 32},
        run=run,
        summarise=summarise,
        splits=(EVALUATED_SPLIT, VALIDATION_SPLIT),
    )
)
