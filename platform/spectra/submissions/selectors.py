"""Reads of submissions, their progress, results and stored scores."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.core.files.storage import default_storage
from django.db.models import Q, QuerySet

from evaluation.datasets.manifest import read_manifest_stream
from evaluation.metrics import logits_of
from evaluation.protocols import EVALUATED_SPLIT, MEAN_SUBSET, wild
from evaluation.storage import open_url
from evaluation.wild import CHAIN_PREFIX, condition_chain, describe_chain
from spectra.benchmarks.selectors import VARIANT_ORDER
from spectra.core.errors import NotFoundError
from spectra.submissions import scorefiles
from spectra.submissions.models import Artifact, EvaluationRun, ImageScores, Result, Submission, SubmissionStatus


@dataclass(frozen=True)
class Progress:
    status: str
    done: int
    total: int
    stage: str

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0


def sees_private(user) -> bool:
    """Staff (and superusers) see every submission, private ones included."""
    return bool(user is not None and user.is_authenticated and (user.is_staff or user.is_superuser))


def visible_to(user, *, path: str = "") -> Q:
    """The rows whose submission ``user`` may see (None: anonymous): public ones, their own, or all for staff.
    ``path`` leads from the filtered model to its submission, e.g. "submission__" on Result."""
    if sees_private(user):
        return Q()
    public = Q(**{f"{path}private": False})
    return public | Q(**{f"{path}owner": user}) if user is not None and user.is_authenticated else public


def submission_get(*, pk: int, user) -> Submission:
    """The submission ``user`` may see; a private one of someone else is not found, so its existence does not leak."""
    try:
        return (Submission.objects.select_related("artifact", "benchmark", "dataset", "owner")
                .filter(visible_to(user)).get(pk=pk))
    except Submission.DoesNotExist:
        raise NotFoundError(f"There is no submission #{pk}.") from None


def artifact_downloadable(*, submission: Submission, user) -> bool:
    """A person's uploaded weights are theirs to share: only the owner and staff may download them."""
    return (user is not None and user.is_authenticated and submission.owner_id == user.pk) or sees_private(user)


def submission_artifact_get(*, pk: int, user) -> Artifact:
    """The uploaded file of a submission, for its owner and staff; anyone else is told there is no such submission."""
    submission = submission_get(pk=pk, user=user)
    if not artifact_downloadable(submission=submission, user=user):
        raise NotFoundError(f"There is no submission #{pk}.")
    return submission.artifact


def submission_list(*, owner) -> QuerySet[Submission]:
    """The owner's own submissions, private ones included."""
    return Submission.objects.select_related("benchmark", "artifact").filter(owner=owner)


def submission_progress(*, submission: Submission) -> Progress:
    runs = list(submission.runs.all())
    stages = [r.stage for r in runs if r.stage]
    return Progress(
        status=submission.status, done=sum(r.done for r in runs), total=sum(r.total for r in runs),
        stage=stages[-1] if stages else "",
    )


def submission_isolation(*, submission: Submission) -> dict | None:
    """What isolated the detector while its shards ran: the weakest isolation any finished shard reported
    (the scorer of each worker says, evaluation.sandbox.launch.Isolation), or None before any shard is done."""
    reported = [run.isolation for run in submission.runs.all() if run.isolation]
    if not reported:
        return None
    return min(reported, key=lambda isolation: (bool(isolation.get("full")), isolation.get("sandbox") == "bubblewrap"))


def result_list(*, submission: Submission, protocol: str | None = None) -> list[Result]:
    """Results per dataset version (the ranked one first), protocol and condition; the mean first, then
    subsets by name."""
    # Prefetched, not joined: a join decodes the version's audit JSON again on every row.
    results = submission.results.prefetch_related("dataset")
    if protocol:
        results = results.filter(protocol=protocol)
    order = {v: i for i, v in enumerate(VARIANT_ORDER)}
    return sorted(results, key=lambda r: (r.dataset_id != submission.dataset_id, order.get(r.dataset.variant, 99),
                                          r.dataset.variant, r.protocol, r.condition, r.subset != MEAN_SUBSET, r.subset))


def image_scores_get(*, scores: ImageScores) -> tuple[np.ndarray, np.ndarray]:
    """(manifest row ids, float64 logits) of a run's stored per-image scores; rows stored as probabilities
    (before evaluator 0.3) are converted in float64, which keeps their order (and their ties at 1.0)."""
    if scores.stored:
        with default_storage.open(scores.stored, "rb") as handle:
            streams = scorefiles.decode(handle.read())
    else:
        streams = (bytes(scores.row_ids), bytes(scores.scores))
    row_ids, values = scorefiles.unpack(*streams)
    return row_ids, logits_of(values, scores.kind)


def analyses_not_applicable(*, submission: Submission) -> list[tuple[str, str]]:
    """(protocol title, why) of each protocol that does not apply to this submission's detector."""
    from evaluation.protocols import get_protocol

    runs = submission.runs.exclude(not_applicable="").values_list("protocol", "not_applicable").distinct()
    return [(get_protocol(protocol).title, reason) for protocol, reason in runs]


def wild_chains_public(*, submission: Submission) -> bool:
    """Whether the wild protocol's images may be listed with their chains and logits: only when the test split is
    public. A hidden split's listing would tie its files to manifest order, and a strong detector's logits to
    its labels; its chains are told by ``python -m evaluation.wild IMAGE`` instead."""
    return EVALUATED_SPLIT not in submission.dataset.hidden_splits


def _wild_scored(runs: list[EvaluationRun]) -> Iterator[tuple[int, np.ndarray]]:
    for run in runs:  # one shard's scores in memory at a time
        row_ids, values = image_scores_get(scores=run.scores)
        matrix = values.reshape(len(run.scores.conditions), len(row_ids))
        for column, row_id in enumerate(row_ids.tolist()):
            yield row_id, matrix[:, column]


def wild_chain_lines(*, submission: Submission) -> Iterator[list[object]]:
    """The wild protocol's images on the ranked version (a public test split), each with its chain and its logit
    under every condition, a header first, in manifest order: the manifest and the stored scores are streamed side
    by side. NotFoundError before anything when the split is hidden or the evaluation has not finished."""
    if not wild_chains_public(submission=submission):
        raise NotFoundError("This benchmark's test split is hidden, so its images are not listed. An image's chain "
                            "depends only on its file: `python -m evaluation.wild IMAGE` prints it.")
    runs = sorted(submission.runs.filter(protocol=wild.NAME, dataset=submission.dataset_id).select_related("scores"),
                  key=lambda run: run.first_row)
    if not runs or any(run.status != SubmissionStatus.DONE or not hasattr(run, "scores") for run in runs):
        raise NotFoundError(f"Submission #{submission.pk} has no finished wild evaluation.")
    conditions = runs[0].scores.conditions
    chained = next((c for c in conditions if c.startswith(CHAIN_PREFIX)), None)
    if chained is None:
        raise NotFoundError(f"Submission #{submission.pk}'s wild scores hold no chain condition.")
    return _chain_lines(submission, runs, conditions, chained)


def _chain_lines(submission: Submission, runs: list[EvaluationRun], conditions: list[str],
                 chained: str) -> Iterator[list[object]]:
    yield ["row_id", "path", "label", "generator", "sha256", "chain", *(f"logit {c or 'clean'}" for c in conditions)]
    scored = _wild_scored(runs)
    pending = next(scored, None)
    with open_url(submission.dataset.manifest_url) as handle:
        for line, row in enumerate(read_manifest_stream(handle)):
            if pending is None:
                return
            if line == pending[0]:
                yield [line, row.path, row.label, row.generator or "", row.sha256,
                       describe_chain(condition_chain(chained, row.sha256)), *(f"{v:.9g}" for v in pending[1])]
                pending = next(scored, None)
