"""Reads of the zoo: cards come from the models_zoo registry (torch-free), experiments and rows from the database."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from evaluation.bootstrap import difference_interval
from evaluation.protocols import RANKED_PROTOCOL as CROSS_GENERATOR
from models_zoo.registry import Card, UnknownModelError, get_card, list_cards
from spectra.benchmarks.selectors import VARIANT_ORDER
from spectra.core.errors import NotFoundError
from spectra.leaderboards.selectors import MEAN_SUBSET, RANK_METRIC
from spectra.submissions.models import Artifact, Result, Submission, SubmissionStatus
from spectra.zoo.models import ZooExperiment

EFFECT_METRIC = RANK_METRIC  # the paper's metric is accuracy: here the mean of the real and generated accuracies


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
    """The entry's baseline rows (submitted through the upload path) with their other exports, newest first."""
    return (Submission.objects.filter(zoo_entry=entry).select_related("artifact", "benchmark", "dataset")
            .prefetch_related("zoo_exports__artifact"))


def zoo_row_accuracy(*, rows: list[Submission]) -> dict[int, list[tuple[str, float]]]:
    """Each row's clean cross-generator mean accuracy per dataset version, in the platform's version order."""
    found: dict[int, dict[str, float]] = {}
    results = Result.objects.filter(submission__in=rows, subset=MEAN_SUBSET, condition="", protocol=CROSS_GENERATOR)
    for submission_id, variant, metrics in results.values_list("submission_id", "dataset__variant", "metrics"):
        if metrics.get(RANK_METRIC) is not None:
            found.setdefault(submission_id, {})[variant] = metrics[RANK_METRIC]
    return {pk: [(v, by_variant[v]) for v in VARIANT_ORDER if v in by_variant] for pk, by_variant in found.items()}


def zoo_artifact_get(*, entry: str, sha256: str) -> Artifact:
    """A file of the entry's rows: the evaluated weights or one of their exports."""
    artifact = (Artifact.objects.filter(sha256=sha256)
                .filter(Q(submissions__zoo_entry=entry) | Q(zoo_exports__submission__zoo_entry=entry)).first())
    if artifact is None:
        raise NotFoundError(f"The zoo entry {entry!r} has no weights with sha256 {sha256[:64]!r}.")
    return artifact


@dataclass(frozen=True)
class DebiasingEffect:
    """Accuracy of the row trained on the unbiased version minus the row trained on the biased one, on one test
    version: the effect the Unbiased GenImage paper reports (seeds.md §1.7), measured on this benchmark."""

    benchmark: str
    variant: str  # the version both rows were scored on
    biased: float
    unbiased: float
    difference: float
    interval: list[float] | None


def zoo_debiasing_effect(*, entry: str) -> list[DebiasingEffect]:
    """One line per (benchmark, test version) where the entry's latest done rows trained on the biased and on
    the unbiased version both have a clean cross-generator mean."""
    rows = {(s.benchmark_id, s.zoo_trained_on): s for s in reversed(zoo_submission_list(entry=entry))
            if s.status == SubmissionStatus.DONE and s.zoo_trained_on in ("biased", "unbiased")}
    effects = []
    for (benchmark_id, trained_on), unbiased_row in rows.items():
        biased_row = rows.get((benchmark_id, "biased"))
        if trained_on != "unbiased" or biased_row is None:
            continue
        biased, unbiased = _means_by_variant(biased_row), _means_by_variant(unbiased_row)
        for variant in [v for v in VARIANT_ORDER if v in biased and v in unbiased]:
            (b, b_interval), (u, u_interval) = biased[variant], unbiased[variant]
            effects.append(DebiasingEffect(unbiased_row.benchmark.name, variant, b, u, u - b,
                                           difference_interval(u, u_interval, b, b_interval)))
    return effects


def _means_by_variant(submission: Submission) -> dict[str, tuple[float, list[float] | None]]:
    results = Result.objects.filter(submission=submission, subset=MEAN_SUBSET, condition="",
                                    protocol=CROSS_GENERATOR).select_related("dataset")
    return {r.dataset.variant: (r.metrics[EFFECT_METRIC], (r.intervals or {}).get(EFFECT_METRIC))
            for r in results if r.metrics.get(EFFECT_METRIC) is not None}
