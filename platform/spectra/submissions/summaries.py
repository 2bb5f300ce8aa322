"""Metrics and their bootstrap intervals, recomputed by the platform from a run's per-image scores.

The evaluation worker only has to get the scores right: every number shown is computed here, from the
stored scores and the labels in the platform's own copy of the manifest, by the protocol's torch-free
``summarise``. So a new metric or interval never re-runs a detector, and a worker cannot report numbers
that do not follow from its scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from evaluation.bootstrap import bootstrap_intervals
from evaluation.datasets.manifest import rows_by_line
from evaluation.errors import DatasetError
from evaluation.protocols import get_protocol

Metrics = dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class Summary:
    metrics: Metrics  # subset -> metric -> value
    intervals: dict[str, dict[str, list[float] | None]]  # subset -> metric -> [low, high] (95 %)


def summary_from_scores(*, protocol: str, config: dict, manifest_url: str, split: str, row_ids: list[int],
                        scores: list[float]) -> Summary:
    """DatasetError when a row id is not a line of the manifest's ``split``."""
    spec = get_protocol(protocol)
    config = {**spec.default_config, **config}
    rows = rows_by_line(manifest_url, row_ids)
    strays = [i for i in row_ids if rows[i].split != split]
    if strays:
        raise DatasetError(f"{len(strays)} scored rows are not in the {split} split (e.g. line {strays[0]})")
    labels = np.array([rows[i].label for i in row_ids], dtype=np.int64)
    generators = [rows[i].generator for i in row_ids]
    values = np.asarray(scores, dtype=np.float64)
    metrics = spec.summarise(labels, values, generators, config)
    intervals = bootstrap_intervals(
        labels, values, generators, lambda y, s, g: spec.summarise(y, s, g, config),
        resamples=settings.SPECTRA_BOOTSTRAP_RESAMPLES,
    )
    return Summary(metrics, intervals)
