"""The landscape protocol's worker side: load the sample once, ask the detector for logits on the grid and for
Hessian-vector products, and apply the labels here. See evaluation.protocols.landscape."""
from __future__ import annotations

import itertools
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from evaluation.hessian import stochastic_lanczos_quadrature, top_eigenvalues
from evaluation.protocols.base import ProgressCallback, ProtocolResult, ShardData, float32_scores
from evaluation.protocols.landscape import axis, slice_axis


def mean_bce(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean binary cross-entropy of logits (…×N) against labels (N): log(1 + eᶻ) − y·z, stably."""
    z = np.asarray(logits, dtype=np.float64)
    return (np.logaddexp(0.0, z) - labels * z).mean(axis=-1)


def bce_derivatives(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ℓ' and ℓ'' of the mean BCE per image: (σ(z) − y)/N and σ(z)(1 − σ(z))/N."""
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
    return (p - labels) / len(labels), p * (1 - p) / len(labels)


def _grid(detector: Any, batches: list[torch.Tensor], points: list[tuple[float, float]], config: dict[str, Any]
          ) -> np.ndarray:
    return np.concatenate([detector.grid_logits(b, points, int(config["seed"]), str(config["normalisation"]))
                           for b in batches], axis=1)


def landscape_shard(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    batches, labels_of = [], []
    for rows, images in data.batches():
        batches.append(images)
        labels_of += [r.row.label for r in rows]
    labels = np.asarray(labels_of, dtype=np.float64)
    clean = np.concatenate([detector.scores(b) for b in batches])
    progress(0, "surface")
    xs = ys = axis(config)
    points = [(x, y) for x, y in itertools.product(xs, ys)]
    surface = _grid(detector, batches, points, config)
    line = _grid(detector, batches, [(t, 0.0) for t in slice_axis(config)], config)
    accuracy = ((surface > float(config["threshold"])) == labels.astype(bool)).mean(axis=1)
    progress(len(labels) // 2, "hessian")
    first, second = bce_derivatives(clean, labels)
    cuts = np.cumsum([0, *(len(b) for b in batches)])
    size = detector.weight_count()

    def hvp(vector: np.ndarray) -> np.ndarray:
        return sum((detector.hessian_vector(b, first[lo:hi], second[lo:hi], vector).astype(np.float64)
                    for b, lo, hi in zip(batches, cuts[:-1], cuts[1:], strict=True)), np.zeros(size))

    analysis = {
        "xs": xs, "ys": ys, "loss": mean_bce(surface, labels).tolist(), "accuracy": accuracy.tolist(),
        "slice": {"t": slice_axis(config), "loss": mean_bce(line, labels).tolist()},
        "centre_loss": float(mean_bce(clean, labels)), "weights": size,
        "top_eigenvalues": top_eigenvalues(hvp, size, int(config["top_k"]), seed=int(config["seed"])),
        "slq": [asdict(run) for run in stochastic_lanczos_quadrature(
            hvp, size, int(config["slq_steps"]), int(config["slq_repeats"]), seed=int(config["seed"]))],
    }
    progress(len(labels), "hessian")
    return ProtocolResult(row_ids=[r.row_id for r in data.rows], scores=float32_scores(clean), analysis=analysis)
