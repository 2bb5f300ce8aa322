"""Bias audit of a dataset version: can a single nuisance feature tell real from generated?

For each label and generator it counts file formats, JPEG qualities, chroma subsampling, chroma qualities and
image sizes; then it measures, not asserts, the bias: the balanced accuracy of one-feature classifiers trained
on the train split and scored on the test split. The features are the JPEG quality with the format, the chroma
layout (subsampling and chroma quality), all JPEG traits together, and the image size after the version's
centre crop. The classifier is ``ShortcutClassifier``, an add-one smoothed table of P(generated | value), the
same one the shortcut baselines (``evaluation.baselines``) score with; an image counts as generated when its
score is above the platform's threshold, i.e. when the value was more often generated than real in train.
Streaming: memory grows with the number of distinct feature values, never with the number of images.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.datasets.manifest import (
    LABEL_GENERATED,
    LABEL_REAL,
    ManifestRow,
    centre_crops,
    cropped_size,
    dataset_info,
)
from evaluation.metrics import DEFAULT_THRESHOLD

# v2: sizes after the centre crop of dataset.json; v3: chroma features, torchvision's crop (pads, never
# shrinks), one smoothed classifier for audit and baselines (ties predict real), the version's recipe.
AUDIT_VERSION = 3
BIASED_AT = 0.75  # balanced accuracy from one nuisance feature at or above which a dataset is called biased
CLEAN_BELOW = 0.60  # ... and below which (for every feature) it is called clean
FEATURES = ("quality", "chroma", "jpeg", "size")


def feature_value(row: ManifestRow, feature: str, crop: int | None = None) -> str:
    """The nuisance feature as a detector sees it: the size after the version's centre crop, if any."""
    quality = f"{row.format}:{row.jpeg_quality}" if row.jpeg_quality is not None else row.format
    chroma = f"{row.chroma_subsampling or 'none'}:{row.chroma_quality}" if row.chroma_quality is not None \
        else row.chroma_subsampling or "none"
    if feature == "quality":
        return quality
    if feature == "chroma":
        return chroma
    if feature == "jpeg":
        return f"{quality}/{chroma}"
    if feature == "size":
        width, height = cropped_size(row.width, row.height, crop)
        return f"{width}x{height}"
    raise ValueError(f"unknown feature {feature!r}; the features are {', '.join(FEATURES)}")


@dataclass(frozen=True)
class ShortcutClassifier:
    """P(generated | feature value) fitted on label counts, with add-one smoothing; an unseen value gets the
    smoothed share of generated images over all values (the prior)."""

    table: Mapping[str, float]
    prior: float

    @classmethod
    def fit(cls, counts: Mapping[str, Mapping[int, int]]) -> ShortcutClassifier:
        overall: Counter[int] = Counter()
        for labels in counts.values():
            overall.update(labels)

        def smoothed(labels: Mapping[int, int]) -> float:
            return (labels.get(LABEL_GENERATED, 0) + 1) / (labels.get(LABEL_REAL, 0) + labels.get(LABEL_GENERATED, 0) + 2)

        return cls({value: smoothed(labels) for value, labels in counts.items()}, smoothed(overall))

    def score(self, value: str) -> float:
        return self.table.get(value, self.prior)

    def logit(self, value: str) -> float:
        """The score as a logit, the scale of the platform's threshold (smoothing keeps it finite)."""
        p = self.score(value)
        return math.log(p) - math.log1p(-p)


def balanced_accuracy(train: Mapping[str, Mapping[int, int]], test: Mapping[str, Mapping[int, int]]) -> float | None:
    """Balanced accuracy on ``test`` of the ShortcutClassifier fitted on ``train`` (None without both labels)."""
    classifier = ShortcutClassifier.fit(train)
    right: Counter[int] = Counter()
    total: Counter[int] = Counter()
    for value, labels in test.items():
        predicted = LABEL_GENERATED if classifier.logit(value) > DEFAULT_THRESHOLD else LABEL_REAL
        for label, n in labels.items():
            total[label] += n
            right[label] += n if predicted == label else 0
    if len([label for label in total if total[label]]) < 2:
        return None
    return sum(right[label] / total[label] for label in total if total[label]) / 2


@dataclass
class _Tally:
    """Label counts per feature value, per split."""

    counts: dict[str, dict[str, Counter[int]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Counter)))

    def add(self, split: str, value: str, label: int) -> None:
        self.counts[split][value][label] += 1


def _verdict(scores: dict[str, float | None]) -> str:
    known = [s for s in scores.values() if s is not None]
    if not known:
        return "unknown"
    if max(known) >= BIASED_AT:
        return "biased"
    return "clean" if max(known) < CLEAN_BELOW else "some bias"


def _count_distributions(distributions: dict[str, Counter[str]], row: ManifestRow, crop: int | None) -> None:
    def shown(value: object) -> str:
        return "none" if value is None else str(value)

    distributions["format"][row.format] += 1
    distributions["quality"][shown(row.jpeg_quality)] += 1
    distributions["chroma_subsampling"][shown(row.chroma_subsampling)] += 1
    distributions["chroma_quality"][shown(row.chroma_quality)] += 1
    distributions["size"][feature_value(row, "size", crop)] += 1


def audit_version(root_url: str, rows: Iterable[ManifestRow]) -> dict[str, Any]:
    """The audit of the version in ``root_url``: its rows audited with the crops and recipe of its dataset.json."""
    from evaluation.datasets.unbiased import recipe_rules  # numpy + Pillow, only needed here

    return audit_rows(rows, crops=centre_crops(root_url), recipe=recipe_rules(dataset_info(root_url).get("recipe")))


def audit_rows(rows: Iterable[ManifestRow], crops: Mapping[str, int] | None = None,
               recipe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The audit as plain JSON data: distributions per (label, generator) and the one-feature verdict.

    ``crops`` (generator -> side) are the centre crops the version asks for at load time (its dataset.json);
    sizes are audited after them, because that is the size a detector is given. ``recipe`` (name and rules of
    the recipe that made the version, when known) is stored with the audit so the dataset page can show it.
    """
    crops = crops or {}
    tallies = {feature: _Tally() for feature in FEATURES}
    distributions: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for row in rows:
        crop = crops.get(row.generator or "")
        _count_distributions(distributions[f"{'generated' if row.label else 'real'}/{row.generator or 'shared'}"],
                             row, crop)
        for feature, tally in tallies.items():
            tally.add(row.split, feature_value(row, feature, crop), row.label)
    scores = {
        feature: balanced_accuracy(tally.counts.get("train", {}), tally.counts.get("test", {}))
        for feature, tally in tallies.items()
    }
    return asdict(AuditResult(
        version=AUDIT_VERSION, verdict=_verdict(scores), one_feature_accuracy=scores,
        distributions={g: {k: dict(v) for k, v in d.items()} for g, d in sorted(distributions.items())},
        thresholds={"biased_at": BIASED_AT, "clean_below": CLEAN_BELOW}, recipe=dict(recipe) if recipe else None,
    ))


@dataclass(frozen=True)
class AuditResult:
    version: int
    verdict: str  # biased | some bias | clean | unknown (no train/test split with both labels)
    one_feature_accuracy: dict[str, float | None]
    distributions: dict[str, dict[str, dict[str, int]]]
    thresholds: dict[str, float]
    recipe: dict[str, Any] | None = None  # {"name", "rules"} of the recipe named in dataset.json, when known
