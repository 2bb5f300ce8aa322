"""Writes of evaluation runs: sending the shards, and recording the workers' progress and outcomes."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import current_app, group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from evaluation.datasets.manifest import MANIFEST_NAME
from evaluation.messages import NOT_APPLICABLE, STARTED_STAGE, MessageError, ShardDone, ShardProgress, ShardRequest
from evaluation.metrics import ScoreKind
from evalworker.broker import TASK_EVALUATE_SHARD, evaluation_queue, lease_seconds, shard_attempts
from spectra.core import objectstore, pagecache
from spectra.core.pagecache import Scope
from spectra.core.storage import dataset_object_url, storage_url
from spectra.submissions import scorefiles
from spectra.submissions.models import EvaluationRun, ImageScores, Submission, SubmissionStatus
from spectra.submissions.services.analyses import request_config
from spectra.submissions.services.results import aggregate

log = logging.getLogger(__name__)


def shard_request_build(*, run: EvaluationRun) -> ShardRequest:
    artifact, dataset = run.submission.artifact, run.dataset
    return ShardRequest(
        run_id=run.pk, artifact_url=storage_url(artifact.file.name), artifact_sha256=artifact.sha256,
        artifact_format=artifact.format, artifact_architecture=artifact.architecture,
        input_size=artifact.input_size, dataset_root_url=dataset.root,
        manifest_url=dataset_object_url(dataset.root, MANIFEST_NAME), manifest_sha256=dataset.manifest_sha256, protocol=run.protocol,
        protocol_version=run.protocol_version, config=request_config(run.config), split=run.split, first_row=run.first_row,
        last_row=run.last_row, attempt=run.attempt,
    )


def evaluation_runs_send(*, runs: list[EvaluationRun]) -> None:
    """All shards as one Celery group on queue ``eval`` (a zoo row's on ``eval-zoo``, read only when ``eval`` is
    empty): any number of evaluation workers share them. The aggregate step is the platform worker's
    (shard_done_record), so no result backend is needed."""
    queue = evaluation_queue(zoo=bool(runs and runs[0].submission.zoo_entry))
    # The lease starts when a shard is sent: the reaper notices a message the broker lost (see services.leases).
    EvaluationRun.objects.filter(pk__in=[run.pk for run in runs], lease_expires__isnull=True).update(
        lease_expires=timezone.now() + timedelta(seconds=lease_seconds()))
    signatures = [current_app.signature(TASK_EVALUATE_SHARD, args=[shard_request_build(run=run).to_dict()], queue=queue)
                  for run in runs]
    group(signatures).apply_async()


def shard_progress_record(*, progress: ShardProgress) -> None:
    """A heartbeat: renew the run's lease. The first message of a delivery counts the delivery, and a shard
    delivered more often than SPECTRA_SHARD_ATTEMPTS (it takes its worker down each time) is given up."""
    now = timezone.now()
    started = progress.stage == STARTED_STAGE
    # `total` is the platform's own count, set when the run was made; a worker's message never changes it.
    updated = EvaluationRun.objects.filter(pk=progress.run_id, attempt=progress.attempt).exclude(
        status__in=[SubmissionStatus.DONE, SubmissionStatus.FAILED]).update(
        done=min(progress.done, progress.total), stage=progress.stage, heartbeat=now, status=SubmissionStatus.RUNNING,
        lease_expires=now + timedelta(seconds=lease_seconds()), deliveries=F("deliveries") + int(started),
    )
    if not updated:
        log.info("dropped progress for run %s attempt %s: no such run or attempt, or it has finished",
                 progress.run_id, progress.attempt)
        return
    started_submission = Submission.objects.filter(runs__pk=progress.run_id, status=SubmissionStatus.QUEUED).update(
        status=SubmissionStatus.RUNNING, started=now
    )
    # update() sends no signal: the submission pages show the progress, the lists its submission's status.
    pagecache.bump(Scope.PROGRESS, *([Scope.RESULTS] if started_submission else []))
    if started and EvaluationRun.objects.filter(pk=progress.run_id, deliveries__gt=shard_attempts()).exists():
        run_give_up(run_id=progress.run_id, reason=f"This shard was started {shard_attempts() + 1} times and its "
                    "evaluation worker stopped each time (the worker's process died), so it was given up.")


@transaction.atomic
def run_give_up(*, run_id: int, reason: str, kind: str = "platform") -> None:
    """Mark a run failed with ``reason``; its submission fails and its other unfinished shards are cancelled."""
    run = EvaluationRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None or run.status in (SubmissionStatus.DONE, SubmissionStatus.FAILED):
        return
    submission = Submission.objects.select_for_update().get(pk=run.submission_id)
    run.status, run.error, run.lease_expires = SubmissionStatus.FAILED, reason, None
    run.save(update_fields=["status", "error", "lease_expires"])
    if not submission.error:
        submission.error, submission.error_kind = reason, kind
    _submission_finish(submission)


def _check_outcome(run: EvaluationRun, outcome: ShardDone) -> None:
    """Re-check what the worker sent before anything is written."""
    outcome.check()
    expected = {
        "artifact_sha256": run.submission.artifact.sha256, "manifest_sha256": run.dataset.manifest_sha256,
        "protocol": run.protocol, "protocol_version": run.protocol_version,
    }
    for key, value in expected.items():
        if getattr(outcome, key) != value:
            raise MessageError(f"{key} {getattr(outcome, key)!r} does not match the run's {value!r}")
    expected_rows = run.total  # fixed when the run was made (an analysis's sample); progress cannot change it
    if outcome.status == "done" and (len(outcome.row_ids) != expected_rows or len(set(outcome.row_ids)) != expected_rows):
        raise MessageError(f"expected {expected_rows} distinct scored rows, got {len(outcome.row_ids)}")


def _scores_store(run: EvaluationRun, outcome: ShardDone) -> None:
    """The shard's scores in its ImageScores row, or, under SPECTRA_STORAGE=s3, in an object the row names.

    The object is written before the row (in this transaction) names it, so a committed row never names a missing
    object; a rolled-back transaction leaves at most an unnamed object behind. The object a retried shard
    replaces is deleted once the new row is committed."""
    row_ids, scores = scorefiles.compress_row_ids(outcome.row_ids), scorefiles.compress_scores(outcome.scores)
    fields: dict[str, object] = {"row_ids": row_ids, "scores": scores, "stored": ""}
    if objectstore.is_remote():
        blob = scorefiles.encode(row_ids, scores)
        name = scorefiles.object_name(run.submission_id, run.pk, blob)
        if not default_storage.exists(name):
            default_storage.save(name, ContentFile(blob))
        fields = {"row_ids": b"", "scores": b"", "stored": name}
    previous = ImageScores.objects.filter(run=run).values_list("stored", flat=True).first()
    ImageScores.objects.update_or_create(run=run, defaults={
        "count": len(outcome.row_ids), "conditions": outcome.conditions, "kind": ScoreKind.LOGIT, **fields})
    if previous and previous != fields["stored"]:
        transaction.on_commit(lambda: default_storage.delete(previous))


CANCELLED = "cancelled"  # the stage of a shard stopped because another shard of its submission failed


def _submission_finish(submission: Submission) -> None:
    """Done when every shard is; failed as soon as one shard fails, and its unfinished shards are cancelled
    (a late message for them is ignored, and the reaper leaves them alone)."""
    runs = list(submission.runs.all())
    failed = [r for r in runs if r.status == SubmissionStatus.FAILED]
    if not failed and any(r.status != SubmissionStatus.DONE for r in runs):
        return
    if failed:
        submission.runs.exclude(status__in=[SubmissionStatus.DONE, SubmissionStatus.FAILED]).update(
            status=SubmissionStatus.FAILED, stage=CANCELLED, lease_expires=None,
            error="Cancelled: another shard of this submission failed.")
    submission.status = SubmissionStatus.FAILED if failed else SubmissionStatus.DONE
    submission.finished = timezone.now()
    submission.save(update_fields=["status", "finished", "error", "error_kind"])


def _as_platform_failure(outcome: ShardDone, error: MessageError) -> ShardDone:
    return ShardDone.from_dict({
        **outcome.to_dict(), "status": "failed", "error_kind": "platform", "row_ids": [],
        "scores": [], "error": f"The evaluation worker sent a result that failed the platform's checks ({error}); "
        "no numbers were recorded.",
    })


def _record(run: EvaluationRun, submission: Submission, outcome: ShardDone) -> ShardDone:
    """Store the shard; when it is the last of its (dataset version, protocol), aggregate. Returns the outcome
    as recorded (a platform failure when the checks fail)."""
    try:
        _check_outcome(run, outcome)
        if outcome.status == "done":
            _scores_store(run, outcome)
            run.status, run.analysis = SubmissionStatus.DONE, outcome.analysis
            run.save(update_fields=["status", "analysis"])
            siblings = list(submission.runs.filter(dataset=run.dataset, protocol=run.protocol).select_related("scores"))
            if all(r.status == SubmissionStatus.DONE for r in siblings):
                aggregate(submission, siblings, outcome.evaluator_version)
        elif outcome.status == NOT_APPLICABLE:
            run.not_applicable = outcome.error[:2000]
    except MessageError as error:
        log.error("run %s: the worker's result failed the checks: %s", run.pk, error)
        return _as_platform_failure(outcome, error)
    return outcome


@transaction.atomic
def shard_done_record(*, outcome: ShardDone) -> None:
    """Write a shard's outcome after re-checking it; a message for a vanished run is dropped. The submission
    row is locked, so shards finishing at once on several workers aggregate exactly once."""
    run = EvaluationRun.objects.select_for_update().select_related("dataset").filter(pk=outcome.run_id).first()
    if run is None:
        log.warning("dropped shard_done for run %s: the run no longer exists", outcome.run_id)
        return
    if _stale(run, outcome):
        return
    if outcome.status == "failed" and outcome.retryable and run.attempt < shard_attempts():
        log.warning("run %s attempt %s: %s", run.pk, run.attempt, outcome.error)
        run.error = f"Attempt {run.attempt}: {outcome.error}"[:2000]
        run.save(update_fields=["error"])
        run_send_again(run, timezone.now())
        return
    submission = Submission.objects.select_for_update().select_related("artifact").get(pk=run.submission_id)
    run.submission = submission
    with transaction.atomic():  # a savepoint: a failed check or aggregate leaves no partial rows
        recorded = _record(run, submission, outcome)
        if recorded.status == "failed":
            transaction.set_rollback(True)
    run.heartbeat, run.timings, run.worker = timezone.now(), outcome.timings, outcome.worker[:200]
    run.lease_expires, run.isolation = None, outcome.isolation
    if recorded.status == "failed":
        run.status, run.error = SubmissionStatus.FAILED, recorded.error
        submission.error, submission.error_kind = recorded.error, recorded.error_kind
    else:  # done, or done without numbers when the protocol does not apply to this detector
        run.status, run.done, run.stage = SubmissionStatus.DONE, run.total, "done"
    run.save(update_fields=["status", "done", "stage", "heartbeat", "timings", "worker", "lease_expires",
                            "isolation", "error", "not_applicable"])
    _submission_finish(submission)


def run_send_again(run: EvaluationRun, now: datetime) -> None:
    """Queue ``run`` as its next attempt (fresh links, a new lease); messages of older attempts are ignored."""
    run.attempt += 1
    run.status, run.stage, run.done, run.heartbeat = SubmissionStatus.QUEUED, "", 0, None
    run.lease_expires = now + timedelta(seconds=lease_seconds())
    run.save(update_fields=["attempt", "status", "stage", "done", "heartbeat", "lease_expires"])
    transaction.on_commit(lambda: evaluation_runs_send(runs=[run]))


def _stale(run: EvaluationRun, outcome: ShardDone) -> bool:
    """Whether to ignore ``outcome``: its run was given up or cancelled, or it failed on a superseded attempt.
    A superseded attempt's scores are as good as the current one's (the hashes are checked) and are kept if
    they come first; a repeated result of a finished run overwrites the same rows, so nothing is duplicated."""
    if run.status == SubmissionStatus.FAILED:
        log.info("dropped shard_done for run %s: it has failed or was cancelled", run.pk)
        return True
    if outcome.attempt != run.attempt and (outcome.status == "failed" or run.status == SubmissionStatus.DONE):
        log.info("dropped shard_done of run %s attempt %s: attempt %s is current", run.pk, outcome.attempt, run.attempt)
        return True
    return False
