"""Do feature-space indicators predict robustness? A population of small detectors trained on purpose, each
measured both ways (seeds.md §2: the paper's claim, tested rather than assumed).

Population (``population``): one small CNN per (training version, augmentation, seed): the benchmark's versions
(original, biased, unbiased where they exist) × augmentations (none, horizontal flips, Gaussian noise σ = 0.03,
JPEG re-encoding at quality 75 of half the images) × seeds; 3 × 4 × 2 = 24 on the mini benchmark. Each is trained
``steps`` Adam steps (lr 1e-3, batch 64) on its version's train split.

Measured on the ranked version's test split, the same images for every model:
- the indicators of evaluation.indicators on the CNN's pooled features (its penultimate layer, 64 values);
- robustness: the normalised area under the mean-accuracy curve over JPEG qualities 100, 90, 70, 50, 30 (the
  jpeg-robustness protocol's area on fewer points), and the drop from clean to that area; and the wild protocol's
  robust ROC-AUC (mean over generators, every image under its own chain of real-world distortions, seed 0) and
  its drop from the clean ROC-AUC.
Then Spearman's ρ of each indicator against each robustness measure, with a bootstrap interval over the models.
Whatever comes out is reported.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluation.datasets.images import condition_batches, rows_of_split
from evaluation.datasets.manifest import MANIFEST_NAME, centre_crops
from evaluation.indicators import INDICATORS, feature_indicators, rank_correlation
from evaluation.metrics import DEFAULT_THRESHOLD, MEAN_ACCURACY
from evaluation.perturbations import jpeg_condition
from evaluation.protocols import wild
from evaluation.protocols.cross_generator import MEAN_SUBSET, subset_metrics
from evaluation.protocols.indicators import REAL_SOURCE
from evaluation.protocols.robustness import normalised_area
from evaluation.wild import chain_condition
from models_zoo.registry import register_model

AUGMENTATIONS = ("none", "flip", "noise", "jpeg")
QUALITIES = (100, 90, 70, 50, 30)
ROBUSTNESS = ("jpeg_area", "jpeg_drop", "wild_auc", "wild_drop")
WILD_CONDITION = chain_condition(wild.DEFAULT_SEED)
TEST_CONDITIONS = ("", *(jpeg_condition(q) for q in QUALITIES), WILD_CONDITION)
SIZE = 64


@dataclass(frozen=True)
class Variation:
    variant: str
    augmentation: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}/{self.augmentation}/seed {self.seed}"


def population(variants: Sequence[str], seeds: Sequence[int]) -> list[Variation]:
    return [Variation(v, a, s) for v, a, s in itertools.product(variants, AUGMENTATIONS, seeds)]


class StudyCnn(nn.Module):
    """Four 3×3 convolutions (all strided: 24 of them must train in minutes on a CPU), global average pooling
    (the features), one logit."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - 0.5) / 0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


@register_model("indicators")
def build_study_cnn() -> StudyCnn:
    """One untrained member of the study's population."""
    return StudyCnn()


@dataclass
class Split:
    """A split decoded once under each condition: images (K×N×3×S×S), labels, generators."""

    images: torch.Tensor
    labels: np.ndarray
    generators: list[str | None]


def load_split(root: Path, split: str, conditions: Sequence[str] = ("",)) -> Split:
    manifest = str(root / MANIFEST_NAME)
    rows = list(rows_of_split(manifest, split, 0, 10**9))
    parts, kept = [], []
    for chunk, batch in condition_batches(str(root), iter(rows), size=SIZE, batch_size=64,
                                          crops=centre_crops(str(root)), conditions=conditions):
        parts.append(batch)
        kept += chunk
    return Split(images=torch.cat(parts, dim=1), labels=np.array([r.row.label for r in kept]),
                 generators=[r.row.generator for r in kept])


def _augment(batch: torch.Tensor, jpeg: torch.Tensor, augmentation: str, g: torch.Generator) -> torch.Tensor:
    if augmentation == "flip":
        return torch.where(torch.rand(len(batch), 1, 1, 1, generator=g) < 0.5, batch.flip(3), batch)
    if augmentation == "noise":
        return (batch + 0.03 * torch.randn(batch.shape, generator=g)).clamp(0, 1)
    if augmentation == "jpeg":
        return torch.where(torch.rand(len(batch), 1, 1, 1, generator=g) < 0.5, jpeg, batch)
    return batch


def train(train_split: Split, variation: Variation, steps: int) -> StudyCnn:
    """``train_split`` holds the clean images and their JPEG-75 copies (conditions "", jpeg-75)."""
    torch.manual_seed(variation.seed)
    model = StudyCnn()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(variation.seed)
    clean, jpeg = train_split.images[0], train_split.images[1]
    labels = torch.from_numpy(train_split.labels).float()
    for _ in range(steps):
        pick = torch.randint(0, len(labels), (64,), generator=g)
        batch = _augment(clean[pick], jpeg[pick], variation.augmentation, g)
        loss = nn.functional.binary_cross_entropy_with_logits(model(batch), labels[pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def _difference(first: float | None, second: float | None) -> float | None:
    return None if first is None or second is None else first - second


def measure(model: nn.Module, test: Split) -> dict[str, float | None]:
    """The model's indicators, JPEG and wild robustness on ``test`` (its images under TEST_CONDITIONS)."""
    with torch.no_grad():
        logits = [torch.cat([model(chunk) for chunk in images.split(256)]).double().numpy() for images in test.images]
        features = torch.cat([model.features(chunk) for chunk in test.images[0].split(256)]).numpy()
    sources = [g if label else REAL_SOURCE for g, label in zip(test.generators, test.labels, strict=True)]
    means = [subset_metrics(test.labels, z, test.generators, DEFAULT_THRESHOLD)[MEAN_SUBSET] for z in logits]
    levels = [m[MEAN_ACCURACY] for m in means[:1 + len(QUALITIES)]]
    area = normalised_area([float(q) for q in QUALITIES], levels[1:])
    clean_auc, wild_auc = means[0]["roc_auc"], means[TEST_CONDITIONS.index(WILD_CONDITION)]["roc_auc"]
    return {**feature_indicators(features, test.labels, sources), "clean_acc": levels[0], "jpeg_area": area,
            "jpeg_drop": _difference(levels[0], area), "wild_auc": wild_auc, "wild_drop": _difference(clean_auc, wild_auc)}


def run_study(roots: dict[str, Path], ranked: str, *, seeds: Sequence[int] = (0, 1), steps: int = 300,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and measure the population on ``roots`` (variant -> version folder), test on ``roots[ranked]``."""
    test = load_split(roots[ranked], "test", TEST_CONDITIONS)
    models = []
    for variant, root in roots.items():
        train_split = load_split(root, "train", ["", jpeg_condition(75)])
        for variation in population([variant], seeds):
            numbers = measure(train(train_split, variation, steps), test)
            models.append({"name": variation.name, "variant": variation.variant,
                           "augmentation": variation.augmentation, "seed": variation.seed, **numbers})
            log(f"  {variation.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in numbers.items() if v is not None))
    correlations = {f"{i}~{r}": rank_correlation([m[i] for m in models], [m[r] for m in models])
                    for i in INDICATORS for r in ROBUSTNESS}
    return {"models": models, "correlations": correlations, "steps": steps, "seeds": list(seeds),
            "qualities": list(QUALITIES), "tested_on": ranked, "indicators": list(INDICATORS),
            "robustness": list(ROBUSTNESS)}
