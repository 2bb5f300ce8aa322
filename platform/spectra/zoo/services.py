"""Writes of the zoo's experiment results."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files import File

from models_zoo.registry import get_card
from spectra.benchmarks.models import Benchmark, Dataset
from spectra.submissions.models import Submission, SubmissionStatus
from spectra.submissions.services import submission_create
from spectra.zoo.models import ZooExperiment


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


def zoo_baseline_pending(*, entry: str, dataset: Dataset) -> Submission | None:
    """The entry's live baseline row on ``dataset`` (queued, running or done), if any: re-running is a no-op."""
    return Submission.objects.filter(zoo_entry=entry, dataset=dataset).exclude(status=SubmissionStatus.FAILED).first()


def zoo_baseline_submit(*, entry: str, benchmark: Benchmark, artifact: Path, input_size: int) -> Submission:
    """Submit a zoo detector's exported TorchScript file exactly as an upload: same checks, same evaluation."""
    card = get_card(entry)
    with artifact.open("rb") as handle:
        submission = submission_create(
            owner=zoo_owner(), name=f"{card.title} (zoo)", benchmark=benchmark,
            upload=File(handle, name=f"{entry}.pt"), declared_format="torchscript", input_size=input_size,
            zoo_entry=entry,
        )
    return submission
