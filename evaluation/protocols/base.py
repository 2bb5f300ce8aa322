"""What a protocol is, and the registry that names them.

A protocol scores a shard of a dataset with a detector and turns the per-image scores into metrics per
subset. Its ``version`` is stored with every Result: bump it whenever its numbers could change.
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
    metrics: dict[str, dict[str, float | None]]  # subset -> metric -> value; "mean" averages subsets
    row_ids: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # condition-major: len(conditions or [""]) × len(row_ids)
    conditions: list[str] = field(default_factory=list)  # empty: one clean condition


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    title: str
    needs: frozenset[str]  # capabilities the detector must have, e.g. {"outputs"}
    default_config: dict[str, Any]
    run: Callable[[Detector, ShardData, dict[str, Any], ProgressCallback], ProtocolResult]
    # Metrics from per-image scores alone (numpy, no torch): the platform recomputes every number and its
    # bootstrap interval with it from stored scores, so a new metric never re-runs a detector.
    # (labels, scores, generators, splits, config) -> subset -> metric -> value
    summarise: Callable[[np.ndarray, np.ndarray, list[str | None], np.ndarray, dict[str, Any]],
                        dict[str, dict[str, float | None]]]


_REGISTRY: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    if protocol.name in _REGISTRY:
        raise ValueError(f"protocol {protocol.name!r} is registered twice")
    _REGISTRY[protocol.name] = protocol
    return protocol


def list_protocols() -> list[str]:
    return sorted(_REGISTRY)


def get_protocol(name: str) -> Protocol:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3) or list_protocols()
        raise UnknownProtocolError(f"no protocol named {name!r}; did you mean: {', '.join(close)}?") from None
