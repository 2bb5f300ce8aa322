"""Writes of the zoo: experiment results, baseline rows and the record of their preparation."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction

from models_zoo.cards import DEBIASING_SEEDS
from models_zoo.registry import Card, get_card, list_cards
from spectra.benchmarks.models import Benchmark, Dataset
from spectra.submissions.models import Submission, SubmissionStatus
from spectra.submissions.services.artifacts import artifact_store
from spectra.submissions.services.submissions import submission_create
from spectra.zoo.models import ZooExperiment, ZooExport, ZooPreparation, ZooStage


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


def trainable_entries() -> list[Card]:
    return [card for card in list_cards("detector") if card.trainer]


def baseline_seeds(card: Card) -> tuple[int, ...]:
    """A card trained on several versions is a comparison (the debiasing effect): its rows are trained with
    several seeds, so the effect has a spread; every other entry has one row, seed 0."""
    return DEBIASING_SEEDS if len(card.trained_on) > 1 else (0,)


def zoo_preparation_plan(*, dataset: Dataset, entries: list[str] | None = None) -> list[ZooPreparation]:
    """The record of every baseline row the zoo trains for the ranked version ``dataset``, created as waiting."""
    cards = [card for card in trainable_entries() if not entries or card.name in entries]
    return [ZooPreparation.objects.get_or_create(dataset=dataset, entry=card.name, trained_on=variant, seed=seed)[0]
            for card in cards for variant in card.trained_on for seed in baseline_seeds(card)]


def zoo_baseline_pending(*, record: ZooPreparation) -> Submission | None:
    """The record's live baseline row (queued, running or done), if any: re-running is a no-op."""
    row = record.submission
    return row if row is not None and row.status != SubmissionStatus.FAILED else None


def zoo_preparation_stage(*, record: ZooPreparation, stage: str, error: str = "",
                          submission: Submission | None = None) -> ZooPreparation:
    record.stage, record.error = stage, error
    if submission is not None:
        record.submission = submission
    elif stage == ZooStage.TRAINING:
        record.submission = None
    record.save(update_fields=["stage", "error", "submission", "updated"])
    return record


ZOO_SUBMITTED_FORMAT = "safetensors"  # the row is evaluated from the data-only format; the others are downloads


def zoo_baseline_submit(*, entry: str, trained_on: str, seed: int, benchmark: Benchmark, exports: dict[str, Path],
                        input_size: int) -> Submission:
    """Submit a zoo detector's safetensors weights exactly as an upload (same checks, same evaluation), and keep
    its other exports (TorchScript, ONNX: the same weights) for download beside the row."""
    card, owner = get_card(entry), zoo_owner()
    with transaction.atomic():
        with exports[ZOO_SUBMITTED_FORMAT].open("rb") as handle:
            submission = submission_create(
                owner=owner, name=f"{card.title} (zoo, trained on {trained_on}, seed {seed})", benchmark=benchmark,
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
