"""Cross-generator: score every test image once, then metrics per generator subset and averaged.

A generator subset is that generator's generated images plus the real images that belong to it: real
rows naming the generator (GenImage's per-generator ``nature`` folders) and real rows of the shared pool
(generator null, as in the mini benchmark); when a dataset has neither (Faces-HQ, whose real images come
from sources of their own), every real image. A real source that no generator names (CelebA-HQ, FFHQ)
gets a subset of its own, with its accuracy on real images. "mean" is the unweighted mean over the
generator subsets only.

v2: added the all-real pairing and the real-source subsets (v1 datasets give the same numbers).
v3: added TPR at 1 % and 0.1 % FPR.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.metrics import DEFAULT_THRESHOLD, METRIC_NAMES, detection_metrics, mean_of_subsets
from evaluation.protocols.base import ProgressCallback, Protocol, ProtocolResult, ShardData, register

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


def summarise(labels: np.ndarray, scores: np.ndarray, generators: list[str | None],
              config: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    return subset_metrics(labels, scores, generators, float(config["threshold"]))


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    scores = np.empty(len(data.rows), dtype=np.float64)
    done = 0
    for rows, images in data.batches():
        scores[done : done + len(rows)] = detector.scores(images)
        done += len(rows)
        progress(done, "scoring")
    progress(done, "metrics")
    labels = np.array([r.row.label for r in data.rows], dtype=np.int64)
    metrics = summarise(labels, scores, [r.row.generator for r in data.rows], config)
    return ProtocolResult(
        metrics=metrics,
        row_ids=[r.row_id for r in data.rows],
        scores=[float(s) for s in scores],
    )


PROTOCOL = register(
    Protocol(
        name="cross-generator",
        version=3,
        title="Cross-generator accuracy, AP and ROC-AUC",
        needs=frozenset({"outputs"}),
        default_config={"threshold": DEFAULT_THRESHOLD, "batch_size": 32},
        run=run,
        summarise=summarise,
    )
)
