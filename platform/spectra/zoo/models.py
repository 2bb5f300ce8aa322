"""Stored results of the zoo's experiments (e.g. the spectral detector's few-labelled-samples curve)."""
from __future__ import annotations

from django.db import models

from spectra.benchmarks.models import Dataset


class ZooExperiment(models.Model):
    entry = models.CharField(max_length=100, help_text="A zoo entry family, e.g. spectral.")
    name = models.CharField(max_length=100, help_text="e.g. few-shot")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="zoo_experiments")
    data = models.JSONField(help_text="What the experiment returned (sizes, accuracy mean and std per method).")
    evaluator_version = models.CharField(max_length=40)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["entry", "name"]
        constraints = [models.UniqueConstraint(fields=["entry", "name", "dataset"], name="unique_zoo_experiment")]

    def __str__(self) -> str:
        return f"{self.entry}/{self.name} on {self.dataset}"
