"""Every shown number from per-image scores: a protocol's ``summarise`` plus bootstrap intervals (no torch).

The platform calls this when the last shard of a run is in, and the CLI after scoring locally, so both
print the same numbers for the same scores. Labels come from the manifest, never from the scorer.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.bootstrap import RESAMPLES, bootstrap_intervals
from evaluation.datasets.manifest import rows_by_line
from evaluation.errors import DatasetError
from evaluation.metrics import ScoreKind, logits_of
from evaluation.protocols import get_protocol

Metrics = dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class Summary:
    metrics: Metrics  # subset -> metric -> value
    intervals: dict[str, dict[str, list[float] | None]]  # subset -> metric -> [low, high] (95 %)


def summary_from_scores(*, protocol: str, config: dict, manifest_url: str, split: str | set[str], row_ids: list[int],
                        scores: Sequence[float] | np.ndarray, score_kind: ScoreKind | str,
                        resamples: int = RESAMPLES) -> Summary:
    """``scores``: N values, or K×N for a protocol with K conditions, logits or probabilities as ``score_kind``
    says (the protocols take float64 logits). DatasetError when a row id is not a line of the manifest's
    ``split``."""
    spec = get_protocol(protocol)
    config = {**spec.default_config, **config}
    rows = rows_by_line(manifest_url, row_ids)
    allowed = {split} if isinstance(split, str) else split
    strays = [i for i in row_ids if rows[i].split not in allowed]
    if strays:
        raise DatasetError(f"{len(strays)} scored rows are not in the {' or '.join(sorted(allowed))} split "
                           f"(e.g. line {strays[0]})")
    labels = np.array([rows[i].label for i in row_ids], dtype=np.int64)
    generators = [rows[i].generator for i in row_ids]
    splits = np.array([rows[i].split for i in row_ids], dtype=object)
    values = logits_of(scores, score_kind)
    if spec.image_groups is not None:
        groups = spec.image_groups([rows[i].sha256 for i in row_ids], config)
        values = np.vstack([values.reshape(-1, len(row_ids)), groups])
    metrics = spec.summarise(labels, values, generators, splits, config)
    intervals = bootstrap_intervals(labels, values, generators, lambda y, s, g, p: spec.summarise(y, s, g, p, config),
                                    splits=splits, resamples=resamples)
    return Summary(metrics, intervals)
