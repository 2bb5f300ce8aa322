"""Bias audit of a dataset version: can a single nuisance feature tell real from generated?

For each label and generator it counts file formats, JPEG qualities and image sizes; then it measures,
not asserts, the bias: the balanced accuracy of one-feature classifiers (JPEG quality and format alone,
image size alone) trained on the train split and scored on the test split. A classifier on one categorical
feature can do no better than predicting, for each feature value, the label most frequent with it, so
that lookup table is the classifier. Streaming: memory grows with the number of distinct feature values,
never with the number of images.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.datasets.manifest import ManifestRow

AUDIT_VERSION = 2  # v2: sizes after the centre crop of dataset.json
BIASED_AT = 0.75  # balanced accuracy from one nuisance feature at or above which a dataset is called biased
CLEAN_BELOW = 0.60  # ... and below which (for every feature) it is called clean
FEATURES = ("quality", "size")


def feature_value(row: ManifestRow, feature: str, crop: int | None = None) -> str:
    """The nuisance feature as a detector sees it: the size after the version's centre crop, if any."""
    if feature == "quality":
        return f"{row.format}:{row.jpeg_quality}" if row.jpeg_quality is not None else row.format
    if crop:
        return f"{min(row.width, crop)}x{min(row.height, crop)}"
    return f"{row.width}x{row.height}"


@dataclass
class _Tally:
    """Label counts per feature value, per split."""

    counts: dict[str, dict[str, Counter[int]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Counter)))

    def add(self, split: str, value: str, label: int) -> None:
        self.counts[split][value][label] += 1


def _lookup_classifier(train: dict[str, Counter[int]]) -> tuple[dict[str, int], int]:
    overall: Counter[int] = Counter()
    for labels in train.values():
        overall.update(labels)
    fallback = overall.most_common(1)[0][0] if overall else 0
    # Ties go to the fallback label, so a feature that carries no information predicts one class everywhere.
    table = {v: (max(c, key=lambda k: (c[k], k == fallback)) if c else fallback) for v, c in train.items()}
    return table, fallback


def balanced_accuracy(train: dict[str, Counter[int]], test: dict[str, Counter[int]]) -> float | None:
    """Balanced accuracy on ``test`` of the per-value majority-label classifier fitted on ``train``."""
    table, fallback = _lookup_classifier(train)
    right: Counter[int] = Counter()
    total: Counter[int] = Counter()
    for value, labels in test.items():
        predicted = table.get(value, fallback)
        for label, n in labels.items():
            total[label] += n
            right[label] += n if predicted == label else 0
    if len(total) < 2:
        return None
    return sum(right[label] / total[label] for label in total) / len(total)


def _verdict(scores: dict[str, float | None]) -> str:
    known = [s for s in scores.values() if s is not None]
    if not known:
        return "unknown"
    if max(known) >= BIASED_AT:
        return "biased"
    return "clean" if max(known) < CLEAN_BELOW else "some bias"


def audit_rows(rows: Iterable[ManifestRow], crops: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The audit as plain JSON data: distributions per (label, generator) and the one-feature verdict.

    ``crops`` (generator -> side) are the centre crops the version asks for at load time (its dataset.json);
    sizes are audited after them, because that is the size a detector is given.
    """
    crops = crops or {}
    tallies = {feature: _Tally() for feature in FEATURES}
    distributions: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for row in rows:
        group = f"{'generated' if row.label else 'real'}/{row.generator or 'shared'}"
        distributions[group]["format"][row.format] += 1
        distributions[group]["quality"][str(row.jpeg_quality) if row.jpeg_quality is not None else "none"] += 1
        crop = crops.get(row.generator or "")
        distributions[group]["size"][feature_value(row, "size", crop)] += 1
        for feature, tally in tallies.items():
            tally.add(row.split, feature_value(row, feature, crop), row.label)
    scores = {
        feature: balanced_accuracy(tally.counts.get("train", {}), tally.counts.get("test", {}))
        for feature, tally in tallies.items()
    }
    return asdict(AuditResult(
        version=AUDIT_VERSION, verdict=_verdict(scores), one_feature_accuracy=scores,
        distributions={g: {k: dict(v) for k, v in d.items()} for g, d in sorted(distributions.items())},
        thresholds={"biased_at": BIASED_AT, "clean_below": CLEAN_BELOW},
    ))


@dataclass(frozen=True)
class AuditResult:
    version: int
    verdict: str  # biased | some bias | clean | unknown (no train/test split with both labels)
    one_feature_accuracy: dict[str, float | None]
    distributions: dict[str, dict[str, dict[str, int]]]
    thresholds: dict[str, float]
