"""Shortcut-baseline results: rows on every leaderboard that score a dataset version from one nuisance feature."""
from __future__ import annotations

from django.db import models

from spectra.benchmarks.models import Dataset


class BaselineResult(models.Model):
    """The metrics of one shortcut baseline (evaluation.baselines) on one subset of a dataset version."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="baseline_results")
    baseline = models.CharField(max_length=50, help_text="e.g. jpeg-quality-only, size-only")
    baseline_version = models.PositiveIntegerField()
    protocol = models.CharField(max_length=50)
    protocol_version = models.PositiveIntegerField()
    subset = models.CharField(max_length=100)
    metrics = models.JSONField()
    intervals = models.JSONField(default=dict, blank=True)
    evaluator_version = models.CharField(max_length=40)
    manifest_sha256 = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "baseline", "subset"]
        constraints = [models.UniqueConstraint(fields=["dataset", "baseline", "protocol", "subset"],
                                               name="unique_baseline_result")]

    def __str__(self) -> str:
        return f"{self.dataset}:{self.baseline}:{self.subset}"
