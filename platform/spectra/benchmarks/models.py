"""Benchmarks and their dataset versions. A version is named by the sha256 of its manifest."""
from __future__ import annotations

from django.db import models

from evaluation.attribution import classes_of
from evaluation.datasets.manifest import MANIFEST_NAME
from evaluation.protocols.base import EVALUATED_SPLIT


class Benchmark(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_synthetic = models.BooleanField(default=False, help_text="Made on the machine; labelled synthetic everywhere.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Dataset(models.Model):
    """One immutable version of a benchmark's data: a folder of images plus manifest.jsonl."""

    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="datasets")
    variant = models.CharField(max_length=50, default="original", help_text="e.g. original, unbiased")
    manifest_sha256 = models.CharField(max_length=64, unique=True)
    root = models.CharField(max_length=1000, help_text="Folder or URL (fsspec) holding the images and manifest.")
    description = models.TextField(blank=True, help_text="How this version was made, when it differs from the benchmark's.")
    licence = models.TextField(blank=True)
    citation = models.TextField(blank=True)
    is_current = models.BooleanField(default=True, help_text="The version new submissions are evaluated on.")
    hidden_splits = models.JSONField(default=list, blank=True, help_text='Splits whose labels never leave the server, e.g. ["test"].')
    archives = models.JSONField(default=list, blank=True, help_text="Download archives: split, name, sha256, size, images, hidden.")
    audit = models.JSONField(default=dict, blank=True, help_text="Bias audit (evaluation.datasets.audit), computed at registration.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["benchmark", "variant", "-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["benchmark", "variant"], condition=models.Q(is_current=True), name="one_current_per_variant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.benchmark.slug}/{self.variant}@{self.manifest_sha256[:12]}"

    @property
    def attribution_classes(self) -> list[str]:
        """The classes an attribution detector's logits are over, in order: real, then the test generators sorted
        (evaluation.attribution.declared_classes, from this version's subsets)."""
        return classes_of(s.generator for s in self.subsets.all() if s.split == EVALUATED_SPLIT and s.n_generated)

    @property
    def manifest_url(self) -> str:
        return f"{self.root.rstrip('/')}/{MANIFEST_NAME}"


class Subset(models.Model):
    """Counts of one (generator, split) of a dataset version. generator "" is the shared real pool."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="subsets")
    generator = models.CharField(max_length=100, blank=True)
    split = models.CharField(max_length=20)
    n_real = models.PositiveIntegerField(default=0)
    n_generated = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["split", "generator"]
        constraints = [models.UniqueConstraint(fields=["dataset", "generator", "split"], name="unique_subset")]

    def __str__(self) -> str:
        return f"{self.generator or 'real (shared)'} / {self.split}"
