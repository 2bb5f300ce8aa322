"""Writes of the zoo's experiment results."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction

from models_zoo.registry import get_card
from spectra.benchmarks.models import Benchmark, Dataset
from spectra.submissions.models import Submission, SubmissionStatus
from spectra.submissions.services.artifacts import artifact_store
from spectra.submissions.services.submissions import submission_create
from spectra.zoo.models import ZooExperiment, ZooExport


def zoo_experiment_store(*, entry: str, name: str, dataset: Dataset, data: dict, evaluator_version: str) -> ZooExperiment:
    experiment, _ = ZooExperiment.objects.update_or_create(
        entry=entry, name=name, dataset=dataset, defaults={"data": data, "evaluator_version": evaluator_version})
    return experiment


ZOO_USERNAME = "zoo"


def zoo_owner() -> Any:
    """The account that owns the zoo's baseline rows (it cannot log in)."""
    user, created = get_user_model().objects.get_or_create(username=ZOO_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def zoo_baseline_pending(*, entry: str, trained_on: str, dataset: Dataset) -> Submission | None:
    """The entry's live baseline row trained on ``trained_on`` and ranked on ``dataset`` (queued, running or done),
    if any: re-running is a no-op."""
    return (Submission.objects.filter(zoo_entry=entry, zoo_trained_on=trained_on, dataset=dataset)
            .exclude(status=SubmissionStatus.FAILED).first())


ZOO_SUBMITTED_FORMAT = "safetensors"  # the row is evaluated from the data-only format; the others are downloads


def zoo_baseline_submit(*, entry: str, trained_on: str, benchmark: Benchmark, exports: dict[str, Path],
                        input_size: int) -> Submission:
    """Submit a zoo detector's safetensors weights exactly as an upload (same checks, same evaluation), and keep
    its other exports (TorchScript, ONNX: the same weights) for download beside the row."""
    card, owner = get_card(entry), zoo_owner()
    with transaction.atomic():
        with exports[ZOO_SUBMITTED_FORMAT].open("rb") as handle:
            submission = submission_create(
                owner=owner, name=f"{card.title} (zoo, trained on {trained_on})", benchmark=benchmark,
                upload=File(handle, name=f"{entry}.safetensors"), declared_format=ZOO_SUBMITTED_FORMAT,
                input_size=input_size, zoo_entry=entry, zoo_trained_on=trained_on, architecture=entry,
            )
        for fmt, path in exports.items():
            if fmt != ZOO_SUBMITTED_FORMAT:
                with path.open("rb") as handle:
                    artifact = artifact_store(owner=owner, upload=File(handle, name=path.name), declared_format=fmt,
                                              input_size=input_size)
                ZooExport.objects.get_or_create(submission=submission, artifact=artifact)
    return submission
