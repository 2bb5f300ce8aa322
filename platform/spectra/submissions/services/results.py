"""Writes of results: the aggregate step that computes every number from the stored per-image scores."""
from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import transaction

from evaluation.errors import DatasetError
from evaluation.messages import MessageError
from evaluation.metrics import ScoreKind
from evaluation.protocols import get_protocol
from evaluation.version import EVALUATOR_VERSION
from spectra.core.errors import ApplicationError
from spectra.submissions.models import EvaluationRun, Result, Submission, SubmissionStatus
from spectra.submissions.reproduce import RESAMPLES_KEY
from spectra.submissions.selectors import image_scores_get
from spectra.submissions.services.analyses import recorded_config
from spectra.submissions.summaries import summary_from_scores


def _merged_scores(runs: list[EvaluationRun]) -> tuple[list[int], np.ndarray]:
    """The float64 logits of every shard of one (dataset version, protocol) in row order: K conditions × N rows.
    Each shard's scores are converted by their own kind, so shards stored before and after evaluator 0.3 mix."""
    row_ids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for run in sorted(runs, key=lambda r: (r.split, r.first_row)):
        ids, values = image_scores_get(scores=run.scores)
        row_ids.append(ids)
        scores.append(values.reshape(max(len(run.scores.conditions), 1), len(ids)))
    return np.concatenate(row_ids).tolist(), np.concatenate(scores, axis=1).astype(np.float64)


def aggregate(submission: Submission, runs: list[EvaluationRun], evaluator_version: str) -> None:
    """The aggregate step: every number of one (dataset version, protocol) from all its shards' scores, by the
    current protocol's ``summarise`` (whose version the rows record)."""
    dataset, protocol = runs[0].dataset, runs[0].protocol
    row_ids, matrix = _merged_scores(runs)
    scores = matrix if runs[0].scores.conditions else matrix[0]  # a clean-only protocol takes N scores
    config = recorded_config(runs[0].config)  # every shard of a (version, protocol) is sent the same settings
    try:
        summary = summary_from_scores(protocol=protocol, config={**config, "source": submission.source or None},
                                      manifest_url=dataset.manifest_url, split={r.split for r in runs},
                                      row_ids=row_ids, scores=scores, score_kind=ScoreKind.LOGIT)
    except DatasetError as error:
        raise MessageError(error.message) from None
    spec = get_protocol(protocol)
    numbers = dict(summary.metrics)
    if spec.summarise_analysis is not None:  # one run: an analysis is one shard
        numbers.update(spec.summarise_analysis(runs[0].analysis, {**spec.default_config, **config}))
    for key, metrics in numbers.items():
        subset, _, condition = key.partition("/")  # robustness protocols key their numbers subset/condition
        Result.objects.update_or_create(
            submission=submission, dataset=dataset, protocol=protocol, condition=condition, subset=subset,
            defaults={
                "protocol_version": spec.version, "metrics": metrics,
                "intervals": summary.intervals.get(key, {}), "evaluator_version": evaluator_version,
                "manifest_sha256": dataset.manifest_sha256, "artifact_sha256": submission.artifact.sha256,
                "schema_version": Result.SCHEMA_VERSION,
                "config": {**config, RESAMPLES_KEY: settings.SPECTRA_BOOTSTRAP_RESAMPLES},
            },
        )


@transaction.atomic
def submission_results_recompute(*, submission: Submission) -> int:
    """Recompute every Result of a finished submission from its stored scores (after a protocol's ``summarise``
    gains a metric, or to check the stored numbers): no detector runs. Returns the number of groups redone."""
    submission = Submission.objects.select_for_update().select_related("artifact").get(pk=submission.pk)
    groups: dict[tuple[int, str], list[EvaluationRun]] = {}
    for run in submission.runs.filter(status=SubmissionStatus.DONE, not_applicable="").select_related("dataset", "scores"):
        groups.setdefault((run.dataset_id, run.protocol), []).append(run)
    for runs in groups.values():
        try:
            aggregate(submission, runs, EVALUATOR_VERSION)
        except MessageError as error:
            raise ApplicationError(f"Submission #{submission.pk}: {error}") from None
    return len(groups)
