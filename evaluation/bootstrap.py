"""Bootstrap confidence intervals for metrics computed from stored per-image scores (numpy only).

Resampling is stratified: the images are grouped by (split, label, generator) and each group is resampled with
replacement to its own size, so every resample keeps the subsets' composition, both classes, and the
validation images a carried threshold is fitted on (it is re-fitted in every resample). The interval
is the percentile interval of the resampled statistic. Seeded, so the same scores give the same intervals.
A statistic that is undefined in more than half of the resamples gets no interval (None).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0

Metrics = dict[str, dict[str, float | None]]  # subset -> metric -> value
Intervals = dict[str, dict[str, list[float] | None]]  # subset -> metric -> [low, high]
Statistic = Callable[[np.ndarray, np.ndarray, list[str | None], np.ndarray], Metrics]  # labels, scores, gens, splits


def strata(labels: np.ndarray, generators: Sequence[str | None], splits: Sequence[str] | None = None) -> list[np.ndarray]:
    """Indices of each (split, label, generator) group, in a fixed order."""
    splits = splits if splits is not None else [""] * len(labels)
    keys = [(s, int(y), g or "") for y, g, s in zip(labels, generators, splits, strict=True)]
    groups: dict[tuple[str, int, str], list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return [np.asarray(groups[key], dtype=np.int64) for key in sorted(groups)]


def resample_indices(groups: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([group[rng.integers(0, group.size, group.size)] for group in groups])


def bootstrap_intervals(
    labels: np.ndarray, scores: np.ndarray, generators: Sequence[str | None], statistic: Statistic, *,
    splits: Sequence[str] | None = None, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED,
) -> Intervals:
    """Percentile intervals of every (subset, metric) that ``statistic`` returns, over stratified resamples."""
    # ``scores`` may hold several conditions (K×N): resampling picks images, i.e. the last axis.
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    generators = np.asarray([g or "" for g in generators], dtype=object)
    split_array = np.asarray(splits if splits is not None else ["test"] * len(labels), dtype=object)
    groups = strata(labels, list(generators), list(split_array))
    rng = np.random.default_rng(seed)
    draws: dict[tuple[str, str], list[float]] = {}
    for _ in range(resamples):
        index = resample_indices(groups, rng)
        sample = statistic(labels[index], scores[..., index], list(generators[index]), split_array[index])
        for subset, metrics in sample.items():
            for name, value in metrics.items():
                if value is not None:
                    draws.setdefault((subset, name), []).append(value)
    tail = 100 * (1 - level) / 2
    intervals: Intervals = {}
    for (subset, name), values in draws.items():
        enough = len(values) * 2 > resamples
        low, high = np.percentile(values, [tail, 100 - tail]) if enough else (None, None)
        intervals.setdefault(subset, {})[name] = [float(low), float(high)] if enough else None
    return intervals


def difference_interval(first: float, first_interval: Sequence[float] | None, second: float,
                        second_interval: Sequence[float] | None) -> list[float] | None:
    """An interval for ``first − second`` from the two numbers' own intervals, their half-widths added in
    quadrature (exact for independent normal errors; conservative when both are measured on the same images,
    whose errors are positively correlated). None when either has no interval."""
    if not first_interval or not second_interval:
        return None
    half = float(np.hypot((first_interval[1] - first_interval[0]) / 2, (second_interval[1] - second_interval[0]) / 2))
    return [first - second - half, first - second + half]
