"""Feature-space robustness indicators of a detector (seeds.md §2; this project's definitions, see
evaluation.indicators): its ``features(x)`` on an evenly spaced sample of the clean test images, clustered by
k-means; the worker computes the indicators from the features and the sample's labels and sources (the features
never leave the worker). Needs ``features``: a TorchScript module with a ``features(x)`` method (a zoo
architecture's penultimate layer); otherwise "not applicable". Whether an indicator predicts robustness is not
assumed: the zoo's population study (models_zoo.indicator_study) measures it."""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.indicators import INDICATORS, feature_indicators
from evaluation.metrics import DEFAULT_THRESHOLD
from evaluation.protocols.base import ProgressCallback, Protocol, ProtocolResult, ShardData, float32_scores, register
from evaluation.protocols.cross_generator import MEAN_SUBSET, subset_metrics

NAME = "indicators"
CONDITION = "indicators"  # the Result row (subset "mean") holding the indicators
RANKED_INDICATOR = INDICATORS[0]  # the leaderboard tab's: the label-free one
REAL_SOURCE = "real"
DEFAULT_CONFIG: dict[str, Any] = {"images": 256, "batch_size": 32, "threshold": DEFAULT_THRESHOLD}
FULL_SCALE: dict[str, Any] = {"images": 5000}


def summarise(labels: np.ndarray, scores: np.ndarray, generators: list[str | None], splits: np.ndarray,
              config: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The clean metrics of the analysed sample."""
    return subset_metrics(labels, np.asarray(scores, dtype=np.float64), generators, float(config["threshold"]))


def summarise_analysis(analysis: dict[str, Any], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{MEAN_SUBSET}/{CONDITION}": {**{k: analysis.get(k) for k in INDICATORS},
                                           "dimensions": analysis.get("dimensions")}}


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    features, scores, labels, sources = [], [], [], []
    for rows, images in data.batches():
        scores.append(detector.scores(images))
        features.append(np.asarray(detector.features(images), dtype=np.float32).reshape(len(rows), -1))
        labels += [r.row.label for r in rows]
        sources += [r.row.generator if r.row.label else REAL_SOURCE for r in rows]
        progress(len(labels), "features")
    matrix = np.concatenate(features)
    analysis = {**feature_indicators(matrix, labels, sources), "dimensions": int(matrix.shape[1])}
    return ProtocolResult(row_ids=[r.row_id for r in data.rows], scores=float32_scores(np.concatenate(scores)),
                          analysis=analysis)


PROTOCOL = register(Protocol(
    name=NAME, version=1, title="Feature-space robustness indicators", needs=frozenset({"features"}),
    default_config=DEFAULT_CONFIG, run=run, summarise=summarise, every_version=False, analysis=True,
    summarise_analysis=summarise_analysis,
))
