"""Reads of the zoo: cards come from the models_zoo registry (torch-free), experiments and rows from the database."""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import F, Q, QuerySet

from evaluation.bootstrap import difference_interval
from evaluation.protocols import MEAN_SUBSET, wild
from models_zoo.registry import Card, UnknownModelError, get_card, list_cards
from spectra.benchmarks.selectors import VARIANT_ORDER
from spectra.core.errors import NotFoundError
from spectra.leaderboards.selectors import mean_accuracy_by_variant
from spectra.submissions.models import Artifact, Result, Submission, SubmissionStatus
from spectra.submissions.selectors import visible_to
from spectra.zoo.models import ZooExperiment, ZooPreparation, ZooStage


def zoo_card_list() -> list[Card]:
    return list_cards()


def zoo_card_get(*, name: str) -> Card:
    try:
        return get_card(name)
    except UnknownModelError as error:
        raise NotFoundError(str(error)) from None


def zoo_experiment_list(*, entry: str) -> QuerySet[ZooExperiment]:
    return ZooExperiment.objects.filter(entry=entry).select_related("dataset", "dataset__benchmark")


def zoo_submission_list(*, entry: str, user) -> QuerySet[Submission]:
    """The entry's baseline rows that ``user`` may see (submitted through the upload path) with their other exports,
    newest first."""
    return (Submission.objects.filter(visible_to(user), zoo_entry=entry).select_related("artifact", "benchmark", "dataset")
            .prefetch_related("zoo_exports__artifact", "zoo_preparations"))


def zoo_row_accuracy(*, rows: list[Submission]) -> dict[int, list[tuple[str, float]]]:
    """Each row's clean cross-generator mean accuracy per dataset version, in the platform's version order."""
    means = mean_accuracy_by_variant(submissions=[row.pk for row in rows])
    return {pk: [(variant, value) for variant, (value, _) in by_variant.items()] for pk, by_variant in means.items()}


@dataclass(frozen=True)
class WildLoss:
    clean: float | None
    robust: float | None
    drop: float | None
    drop_interval: list[float] | None


def zoo_row_wild(*, rows: list[Submission]) -> dict[int, WildLoss]:
    """Each row's ROC-AUC (mean over generators) clean and under the wild chains, and the drop with its paired
    95 % interval, on its ranked version."""
    found: dict[int, dict[str, Result]] = {}
    results = Result.objects.filter(submission__in=[row.pk for row in rows], protocol=wild.NAME, subset=MEAN_SUBSET,
                                    condition__in=["", wild.CHAINS, wild.DROP], dataset=F("submission__dataset"))
    for result in results:
        found.setdefault(result.submission_id, {})[result.condition] = result
    out = {}
    for pk, by_condition in found.items():
        clean, robust, drop = (by_condition.get(c) for c in ("", wild.CHAINS, wild.DROP))
        out[pk] = WildLoss(clean.metrics.get("roc_auc") if clean else None, robust.metrics.get("roc_auc") if robust else None,
                           drop.metrics.get(wild.ROC_AUC_DROP) if drop else None,
                           (drop.intervals or {}).get(wild.ROC_AUC_DROP) if drop else None)
    return out


def zoo_artifact_get(*, entry: str, sha256: str, user) -> Artifact:
    """A file of the entry's rows that ``user`` may see: the evaluated weights or one of their exports."""
    weights = Q(submissions__zoo_entry=entry) & visible_to(user, path="submissions__")
    exports = Q(zoo_exports__submission__zoo_entry=entry) & visible_to(user, path="zoo_exports__submission__")
    artifact = Artifact.objects.filter(sha256=sha256).filter(weights | exports).first()
    if artifact is None:
        raise NotFoundError(f"The zoo entry {entry!r} has no weights with sha256 {sha256[:64]!r}.")
    return artifact


@dataclass(frozen=True)
class DebiasingEffect:
    """Accuracy (the leaderboard's rank metric: the mean of the real and generated accuracies, as the paper's metric
    is accuracy) of the rows trained on the unbiased version minus the rows trained on the biased one, on one test
    version, over the seeds that have both rows: the effect the Unbiased GenImage paper reports (seeds.md §1.7),
    measured on this benchmark."""

    benchmark: str
    variant: str  # the version both rows were scored on
    by_seed: tuple[tuple[int, float], ...]  # (seed, unbiased − biased) of each seed's pair of rows
    biased: float  # means over the seeds
    unbiased: float
    difference: float
    spread: float | None  # standard deviation of the seeds' differences (n − 1); None with one seed
    interval: list[float] | None  # 95 % for the mean difference, from the rows' bootstrap intervals

    @property
    def seeds(self) -> int:
        return len(self.by_seed)


_Mean = tuple[float, list[float] | None]  # a row's mean accuracy on one version and its interval
_SeedPair = tuple[int, _Mean, _Mean]  # seed, the biased-trained row's mean, the unbiased-trained row's


def mean_difference_interval(differences: list[float], intervals: list[list[float] | None]) -> list[float] | None:
    """An interval for the mean of k independent differences from their own intervals: the half-widths added in
    quadrature, divided by k (the mean of independent normal errors). None when any has no interval."""
    if not intervals or any(interval is None for interval in intervals):
        return None
    half = math.sqrt(sum(((high - low) / 2) ** 2 for low, high in intervals)) / len(intervals)
    centre = statistics.fmean(differences)
    return [centre - half, centre + half]


def zoo_debiasing_effect(*, entry: str, user) -> list[DebiasingEffect]:
    """One line per (benchmark, test version) over the seeds whose rows trained on the biased and on the unbiased
    version are both done, visible to ``user`` and have a clean cross-generator mean there."""
    pairs: dict[tuple[int, int], dict[str, Submission]] = defaultdict(dict)
    records = (ZooPreparation.objects.filter(visible_to(user, path="submission__"), entry=entry,
                                             trained_on__in=("biased", "unbiased"),
                                             submission__status=SubmissionStatus.DONE, dataset__is_current=True)
               .select_related("submission__benchmark").order_by("seed"))
    for record in records:
        pairs[(record.dataset_id, record.seed)][record.trained_on] = record.submission
    by_line: dict[tuple[str, str], list[_SeedPair]] = defaultdict(list)
    means = mean_accuracy_by_variant(submissions=[row.pk for rows in pairs.values() for row in rows.values()])
    for (_, seed), rows in pairs.items():
        if len(rows) < 2:
            continue
        biased, unbiased = means.get(rows["biased"].pk, {}), means.get(rows["unbiased"].pk, {})
        for variant in (v for v in VARIANT_ORDER if v in biased and v in unbiased):
            by_line[(rows["unbiased"].benchmark.name, variant)].append((seed, biased[variant], unbiased[variant]))
    return [_effect(benchmark, variant, seeds) for (benchmark, variant), seeds in by_line.items()]


def _effect(benchmark: str, variant: str, seeds: list[_SeedPair]) -> DebiasingEffect:
    differences = [u - b for _, (b, _), (u, _) in seeds]
    intervals = [difference_interval(u, u_interval, b, b_interval) for _, (b, b_interval), (u, u_interval) in seeds]
    return DebiasingEffect(
        benchmark=benchmark, variant=variant,
        by_seed=tuple((seed, d) for (seed, _, _), d in zip(seeds, differences, strict=True)),
        biased=statistics.fmean(b for _, (b, _), _ in seeds), unbiased=statistics.fmean(u for _, _, (u, _) in seeds),
        difference=statistics.fmean(differences), spread=statistics.stdev(differences) if len(seeds) > 1 else None,
        interval=mean_difference_interval(differences, intervals))


@dataclass(frozen=True)
class ZooRowProgress:
    label: str  # e.g. "resnet50 trained on biased, seed 1"
    state: str  # waiting | training | evaluating | finished | failed
    error: str = ""


@dataclass(frozen=True)
class ZooProgress:
    """The zoo's preparation on the current versions: a row is finished when its submission is done."""

    rows: tuple[ZooRowProgress, ...]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def finished(self) -> int:
        return sum(row.state == "finished" for row in self.rows)

    @property
    def failed(self) -> list[ZooRowProgress]:
        return [row for row in self.rows if row.state == "failed"]

    @property
    def active(self) -> list[ZooRowProgress]:
        return [row for row in self.rows if row.state in ("training", "evaluating")]

    @property
    def ready(self) -> bool:
        return self.finished == self.total


def _row_progress(record: ZooPreparation) -> ZooRowProgress:
    label = f"{record.entry} trained on {record.trained_on}, seed {record.seed}"
    row = record.submission
    if record.stage == ZooStage.FAILED:
        return ZooRowProgress(label, "failed", record.error)
    if row is None:
        return ZooRowProgress(label, "training" if record.stage == ZooStage.TRAINING else "waiting")
    if row.status == SubmissionStatus.FAILED:
        return ZooRowProgress(label, "failed", f"its evaluation failed: {row.error or 'no reason recorded'}")
    return ZooRowProgress(label, "finished" if row.status == SubmissionStatus.DONE else "evaluating")


def zoo_preparation_progress() -> ZooProgress | None:
    """None when the zoo was never prepared on a current version (nothing to say)."""
    records = ZooPreparation.objects.filter(dataset__is_current=True).select_related("submission")
    rows = tuple(_row_progress(record) for record in records)
    return ZooProgress(rows) if rows else None
