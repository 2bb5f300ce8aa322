"""Cross-generator: score every test image once, then metrics per generator subset and averaged.

A generator subset is that generator's generated images plus the real images that belong to it: real
rows naming the generator (GenImage's per-generator ``nature`` folders) and real rows of the shared pool
(generator null, as in the mini benchmark). "mean" is the unweighted mean over generator subsets.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.metrics import DEFAULT_THRESHOLD, METRIC_NAMES, detection_metrics, mean_of_subsets
from evaluation.protocols.base import ProgressCallback, Protocol, ProtocolResult, ShardData, register

MEAN_SUBSET = "mean"


def subset_metrics(
    labels: np.ndarray, scores: np.ndarray, generators: list[str | None], threshold: float
) -> dict[str, dict[str, float | None]]:
    """Metrics per generator subset plus their mean, from aligned labels, scores and generators."""
    names = sorted({g for g, y in zip(generators, labels, strict=True) if y == 1 and g is not None})
    gen = np.array([g if g is not None else "" for g in generators], dtype=object)
    shared_real = (labels == 0) & (gen == "")
    per_subset: dict[str, dict[str, float | None]] = {}
    for name in names:
        mask = (gen == name) | shared_real
        per_subset[name] = detection_metrics(labels[mask], scores[mask], threshold=threshold)
    per_subset[MEAN_SUBSET] = mean_of_subsets(per_subset, METRIC_NAMES)
    return per_subset


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    scores = np.empty(len(data.rows), dtype=np.float64)
    done = 0
    for rows, images in data.batches():
        scores[done : done + len(rows)] = detector.scores(images)
        done += len(rows)
        progress(done, "scoring")
    progress(done, "metrics")
    labels = np.array([r.row.label for r in data.rows], dtype=np.int64)
    generators = [r.row.generator for r in data.rows]
    metrics = subset_metrics(labels, scores, generators, float(config["threshold"]))
    return ProtocolResult(
        metrics=metrics,
        row_ids=[r.row_id for r in data.rows],
        scores=[float(s) for s in scores],
    )


PROTOCOL = register(
    Protocol(
        name="cross-generator",
        version=1,
        title="Cross-generator accuracy, AP and ROC-AUC",
        needs=frozenset({"outputs"}),
        default_config={"threshold": DEFAULT_THRESHOLD, "batch_size": 32},
        run=run,
    )
)
