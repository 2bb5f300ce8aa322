"""Metrics and their bootstrap intervals, recomputed by the platform from a run's per-image scores.

The evaluation worker only has to get the scores right: every number shown is computed here, from the
stored scores and the labels in the platform's own copy of the manifest (evaluation.summary), so a new
metric or interval never re-runs a detector and a worker cannot report numbers that do not follow from
its scores.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings

from evaluation.metrics import ScoreKind
from evaluation.summary import Summary
from evaluation.summary import summary_from_scores as _summary_from_scores


def summary_from_scores(*, protocol: str, config: dict, manifest_url: str, split: str | set[str], row_ids: list[int],
                        scores: Sequence[float] | np.ndarray, score_kind: ScoreKind | str) -> Summary:
    """DatasetError when a row id is not a line of the manifest's ``split``."""
    return _summary_from_scores(protocol=protocol, config=config, manifest_url=manifest_url, split=split,
                                row_ids=row_ids, scores=scores, score_kind=score_kind,
                                resamples=settings.SPECTRA_BOOTSTRAP_RESAMPLES)
