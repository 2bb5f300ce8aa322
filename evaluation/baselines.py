"""Shortcut baselines: detectors that never look at pixels, only at one nuisance feature of the file.

``jpeg-quality-only`` sees the file format and JPEG quality; ``size-only`` sees the image size (after the
version's centre crop, as a detector would). Each is fitted on the train split as P(generated | feature value)
with add-one smoothing, an unseen value getting the train prior, and scores the test split. On a biased
dataset they score well; an uploaded detector that barely beats them has learned little more than the bias.
Streaming: two passes over the manifest, memory in the number of distinct values and test rows.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import fsspec

from evaluation.datasets.audit import feature_value
from evaluation.datasets.manifest import read_manifest_stream

BASELINE_VERSION = 1


@dataclass(frozen=True)
class Shortcut:
    name: str
    feature: str  # a feature of evaluation.datasets.audit
    title: str


SHORTCUTS = (
    Shortcut("jpeg-quality-only", "quality", "Shortcut baseline: file format and JPEG quality only"),
    Shortcut("size-only", "size", "Shortcut baseline: image size only"),
)


def _fit(manifest_url: str, feature: str, crops: Mapping[str, int]) -> tuple[dict[str, float], float]:
    per_value: dict[str, Counter[int]] = {}
    overall: Counter[int] = Counter()
    with fsspec.open(manifest_url, "rb") as handle:
        for row in read_manifest_stream(handle):
            if row.split == "train":
                per_value.setdefault(feature_value(row, feature, crops.get(row.generator or "")), Counter())[row.label] += 1
                overall[row.label] += 1
    prior = (overall[1] + 1) / (sum(overall.values()) + 2)
    return {v: (c[1] + 1) / (c[0] + c[1] + 2) for v, c in per_value.items()}, prior


def shortcut_scores(manifest_url: str, shortcut: Shortcut, crops: Mapping[str, int] | None = None,
                    split: str = "test") -> tuple[list[int], list[float]]:
    """(manifest line ids, P(generated)) of the ``split`` rows, from the feature alone."""
    crops = crops or {}
    table, prior = _fit(manifest_url, shortcut.feature, crops)
    row_ids, scores = [], []
    with fsspec.open(manifest_url, "rb") as handle:
        for line_id, row in enumerate(read_manifest_stream(handle)):
            if row.split == split:
                row_ids.append(line_id)
                scores.append(table.get(feature_value(row, shortcut.feature, crops.get(row.generator or "")), prior))
    return row_ids, scores
