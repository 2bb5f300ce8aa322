"""Reads of the zoo: cards come from the models_zoo registry (torch-free), experiments from the database."""
from __future__ import annotations

from django.db.models import QuerySet

from models_zoo.registry import Card, UnknownModelError, get_card, list_cards
from spectra.core.errors import NotFoundError
from spectra.submissions.models import Artifact, Submission
from spectra.zoo.models import ZooExperiment


def zoo_card_list() -> list[Card]:
    return list_cards()


def zoo_card_get(*, name: str) -> Card:
    try:
        return get_card(name)
    except UnknownModelError as error:
        raise NotFoundError(str(error)) from None


def zoo_experiment_list(*, entry: str) -> QuerySet[ZooExperiment]:
    return ZooExperiment.objects.filter(entry=entry).select_related("dataset", "dataset__benchmark")


def zoo_submission_list(*, entry: str) -> QuerySet[Submission]:
    """The entry's baseline rows (submitted through the upload path), newest first."""
    return Submission.objects.filter(zoo_entry=entry).select_related("artifact", "benchmark", "dataset")


def zoo_artifact_get(*, entry: str, sha256: str) -> Artifact:
    artifact = Artifact.objects.filter(sha256=sha256, submissions__zoo_entry=entry).first()
    if artifact is None:
        raise NotFoundError(f"The zoo entry {entry!r} has no weights with sha256 {sha256[:64]!r}.")
    return artifact
