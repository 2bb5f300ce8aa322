"""What a protocol is, and the registry that names them.

A protocol scores a shard of a dataset with a detector (``run``, in the evaluation worker) and turns the
per-image scores into metrics per subset (``summarise``, torch-free, on the platform). It declares which splits
it scores and on which dataset versions, so no caller needs to know protocols by name. Its ``version`` is
stored with every Result: bump it whenever its numbers could change.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.errors import EvaluationError

if TYPE_CHECKING:  # torch stays out of processes that only list protocols
    import torch

    from evaluation.datasets.images import IndexedRow
    from evaluation.detectors.loading import Detector

ProgressCallback = Callable[[int, str], None]  # (images done, stage)
EVALUATED_SPLIT = "test"
VALIDATION_SPLIT = "val"


class UnknownProtocolError(EvaluationError):
    """A protocol name that is not registered; the message lists the closest valid names."""


@dataclass(frozen=True)
class ShardData:
    """The rows of one shard and ways to stream their decoded images: clean batches (B×3×S×S), or batches
    under several conditions at once (K×B×3×S×S, each image decoded once; see evaluation.perturbations)."""

    rows: list[IndexedRow]
    batches: Callable[[], Iterator[tuple[list[IndexedRow], torch.Tensor]]]
    condition_batches: Callable[[Sequence[str]], Iterator[tuple[list[IndexedRow], torch.Tensor]]]


@dataclass(frozen=True)
class ProtocolResult:
    """A shard's scores: the logits of "generated", as float32 values (what the platform stores)."""

    row_ids: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # condition-major: len(conditions or [""]) × len(row_ids)
    conditions: list[str] = field(default_factory=list)  # empty: one clean condition
    # An analysis protocol's other outputs, JSON-able: what the platform's ``summarise_analysis`` reads.
    analysis: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    title: str
    needs: frozenset[str]  # capabilities the detector must have, e.g. {"outputs"}
    default_config: dict[str, Any]
    run: Callable[[Detector, ShardData, dict[str, Any], ProgressCallback], ProtocolResult]
    # Metrics from per-image logits alone (numpy, no torch): the platform recomputes every number and its
    # bootstrap interval with it from stored scores, so a new metric never re-runs a detector.
    # (labels, scores, generators, splits, config) -> subset -> metric -> value
    summarise: Callable[[np.ndarray, np.ndarray, list[str | None], np.ndarray, dict[str, Any]],
                        dict[str, dict[str, float | None]]]
    # The evaluated split, then any split whose scores fit something the evaluated split is scored with (the
    # carried threshold: "val"); a fitting split the dataset lacks, or that the platform skips, is left out.
    splits: tuple[str, ...] = (EVALUATED_SPLIT,)
    every_version: bool = True  # scored on every dataset version, or on the ranked one only
    # An analysis runs only when the submitter asks for it, as one shard over an evenly spaced sample of the
    # ranked version's test images (``config["images"]`` of them, see ``sample_positions``).
    analysis: bool = False
    # Whether a detector without gradients is attacked through a zoo surrogate's (the platform sends its weights
    # as ``config["surrogate"]``, with ``config["mode"] = "transfer"``) instead of being "not applicable".
    transfer_surrogate: bool = False
    # (the run's ``analysis`` output, config) -> key ("subset/condition") -> metric -> value: numbers that the
    # worker's per-image logits cannot give (e.g. a detector fitted on features), computed from its outputs.
    summarise_analysis: Callable[[dict[str, Any], dict[str, Any]], dict[str, dict[str, float | None]]] | None = None
    # (image ids: the files' sha256, config) -> G×N rows of per-image values that are not scores (e.g. which distortions an image
    # got), stacked under the scores so the bootstrap resamples them with their images: ``summarise`` gets (K+G)×N.
    image_groups: Callable[[list[str], dict[str, Any]], np.ndarray] | None = None
    # config -> the conditions the worker scores each image under, in the scores' order, when the config alone
    # decides them (None: clean only, or decided by the detector, as cross-generator's attribution logits are).
    conditions: Callable[[dict[str, Any]], list[str]] | None = None

    @property
    def fitting_splits(self) -> tuple[str, ...]:
        return self.splits[1:]


def sample_positions(total: int, images: int) -> range:
    """Which of a split's ``total`` rows (positions 0..total-1) an analysis scores: at most ``images`` of them,
    evenly spaced, so every generator's images are in the sample whatever the manifest's order."""
    stride = max(1, -(-total // max(images, 1)))
    return range(0, total, stride)


def shard_ranges(total: int, size: int) -> list[tuple[int, int]]:
    """[first, last) row ranges of at most ``size`` rows covering ``total`` rows (at least one range): how the
    platform shards a split, and how the CLI repeats it (the same batches give the same logits to the last bit)."""
    size = max(size, 1)
    return [(first, min(first + size, total)) for first in range(0, total, size)] or [(0, 0)]


_REGISTRY: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    if protocol.name in _REGISTRY:
        raise ValueError(f"protocol {protocol.name!r} is registered twice")
    _REGISTRY[protocol.name] = protocol
    return protocol


def list_protocols() -> list[str]:
    return sorted(_REGISTRY)


def list_analyses() -> list[str]:
    """The protocols a submitter chooses to run (the others always run)."""
    return [name for name in list_protocols() if _REGISTRY[name].analysis]


def get_protocol(name: str) -> Protocol:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3) or list_protocols()
        raise UnknownProtocolError(f"no protocol named {name!r}; did you mean: {', '.join(close)}?") from None


def score_conditions(detector: Detector, data: ShardData, conditions: list[str],
                     progress: ProgressCallback) -> ProtocolResult:
    """Every image scored under each of ``conditions`` (decoded once, see ShardData.condition_batches)."""
    scores = np.empty((len(conditions), len(data.rows)), dtype=np.float64)
    done = 0
    for rows, batch in data.condition_batches(conditions):
        for k in range(len(conditions)):
            scores[k, done:done + len(rows)] = detector.scores(batch[k])
        done += len(rows)
        progress(done, "scoring")
    return ProtocolResult(row_ids=[r.row_id for r in data.rows], scores=float32_scores(scores),
                          conditions=list(conditions))


def float32_scores(scores: np.ndarray) -> list[float]:
    """Scores as the platform stores them (float32), so the worker's CLI and the platform see the same values."""
    return np.asarray(scores, dtype=np.float32).astype(np.float64).ravel().tolist()
