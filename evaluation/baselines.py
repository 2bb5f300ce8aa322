"""Shortcut baselines: detectors that never look at pixels, only at one nuisance feature of the file.

``jpeg-quality-only`` sees every JPEG trait of the file: its format, luma quality, chroma subsampling and
chroma quality (the audit's ``jpeg`` feature; the name is kept so stored rows stay comparable by name, the
version says what it saw). ``size-only`` sees the image size after the version's centre crop, as a detector
would. Each is the audit's ``ShortcutClassifier`` (add-one smoothed P(generated | value), an unseen value
getting the train prior) fitted on the train split, scoring the requested split. On a biased dataset they
score well; an uploaded detector that barely beats them has learned little more than the bias.
Streaming: two passes over the manifest, memory in the number of distinct values and scored rows.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from evaluation.datasets.audit import ShortcutClassifier, feature_value
from evaluation.datasets.manifest import read_manifest_stream
from evaluation.storage import open_url

BASELINE_VERSION = 2  # v2: the JPEG shortcut also sees chroma subsampling and chroma quality; padded crop sizes


@dataclass(frozen=True)
class Shortcut:
    name: str
    feature: str  # a feature of evaluation.datasets.audit
    title: str


SHORTCUTS = (
    Shortcut("jpeg-quality-only", "jpeg",
             "Shortcut baseline: file format, JPEG quality and chroma subsampling only"),
    Shortcut("size-only", "size", "Shortcut baseline: image size only"),
)


def _fit(manifest_url: str, feature: str, crops: Mapping[str, int]) -> ShortcutClassifier:
    per_value: dict[str, Counter[int]] = {}
    with open_url(manifest_url) as handle:
        for row in read_manifest_stream(handle):
            if row.split == "train":
                value = feature_value(row, feature, crops.get(row.generator or ""))
                per_value.setdefault(value, Counter())[row.label] += 1
    return ShortcutClassifier.fit(per_value)


def shortcut_scores(manifest_url: str, shortcut: Shortcut, crops: Mapping[str, int] | None = None,
                    split: str = "test") -> tuple[list[int], list[float]]:
    """(manifest line ids, P(generated)) of the ``split`` rows, from the feature alone."""
    crops = crops or {}
    classifier = _fit(manifest_url, shortcut.feature, crops)
    row_ids, scores = [], []
    with open_url(manifest_url) as handle:
        for line_id, row in enumerate(read_manifest_stream(handle)):
            if row.split == split:
                row_ids.append(line_id)
                scores.append(classifier.score(feature_value(row, shortcut.feature, crops.get(row.generator or ""))))
    return row_ids, scores
