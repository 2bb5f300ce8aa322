"""Stored results of the zoo's experiments (e.g. the spectral detector's few-labelled-samples curve)."""
from __future__ import annotations

from django.db import models

from spectra.benchmarks.models import Dataset
from spectra.submissions.models import Artifact, Submission


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


class ZooExport(models.Model):
    """The same trained weights as a zoo row's evaluated artifact, in another upload format (checked equal on
    a batch of images when exported), offered for download beside it."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="zoo_exports")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="zoo_exports")

    class Meta:
        ordering = ["artifact__format"]
        constraints = [models.UniqueConstraint(fields=["submission", "artifact"], name="unique_zoo_export")]

    def __str__(self) -> str:
        return f"{self.artifact} of {self.submission}"


class ZooStage(models.TextChoices):
    WAITING = "waiting", "Waiting"
    TRAINING = "training", "Training"
    SUBMITTED = "submitted", "Submitted"  # then evaluated like an upload: finished when its submission is done
    FAILED = "failed", "Failed"


class ZooPreparation(models.Model):
    """One baseline row the zoo's preparation trains and submits (entry × training version × seed) for a ranked
    dataset version, updated as it goes; it is the record behind "preparing the zoo: 3 of 9"."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="zoo_preparations",
                                help_text="The ranked version the row is submitted on.")
    entry = models.CharField(max_length=100)
    trained_on = models.CharField(max_length=40, help_text="The dataset variant the detector is trained on.")
    seed = models.PositiveIntegerField(default=0)
    stage = models.CharField(max_length=20, choices=ZooStage.choices, default=ZooStage.WAITING)
    error = models.TextField(blank=True, help_text="Why training or submitting failed, in plain words.")
    submission = models.ForeignKey(Submission, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="zoo_preparations")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["dataset", "entry", "trained_on", "seed"],
                                               name="unique_zoo_preparation")]

    def __str__(self) -> str:
        return f"{self.entry} ({self.trained_on}, seed {self.seed}) on {self.dataset}"
