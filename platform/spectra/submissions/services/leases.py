"""Leases and the reaper: no shard stays queued or running for ever.

Every shard holds a lease from the moment it is sent; each heartbeat of its worker renews it. The reaper
(``reap_runs``, every SPECTRA_REAPER_SECONDS in the platform worker's beat) looks at the shards whose lease
has passed:

- running, and no evaluation worker has been heard from within a lease: failed (nobody is left to run it);
- running, its worker silent: sent again as a new attempt, up to SPECTRA_SHARD_ATTEMPTS, then failed;
- queued, and the broker holds fewer waiting messages than there are queued shards: the oldest are sent
  again (the broker lost them, e.g. a Redis restarted without persistence);
- queued again after a lost worker, and no worker alive: failed; otherwise it is waiting its turn.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import current_app
from django.db import transaction
from django.utils import timezone

from evaluation.messages import WorkerAlive
from evalworker.broker import EVAL_QUEUES, lease_seconds, shard_attempts
from spectra.submissions.models import EvaluationRun, EvaluationWorker, SubmissionStatus
from spectra.submissions.services.runs import evaluation_runs_send, run_give_up

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    resent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def worker_alive_record(*, alive: WorkerAlive) -> None:
    EvaluationWorker.objects.update_or_create(name=alive.worker[:200], defaults={
        "last_seen": timezone.now(), "evaluator_version": alive.evaluator_version[:40], "sandbox": alive.sandbox[:300],
    })


def _waiting_messages() -> int | None:
    """Messages waiting in the evaluation queues (None if the broker cannot say)."""
    try:
        with current_app.connection_for_read() as connection:
            channel = connection.default_channel
            return sum(channel.queue_declare(queue=queue, passive=True).message_count for queue in EVAL_QUEUES)
    except Exception as error:  # the broker is down: decide nothing about queued shards this time
        log.warning("the reaper could not count the waiting messages: %s", error)
        return None


def _lost_queued(now: datetime) -> set[int]:
    """Queued shards whose message the broker no longer holds: the oldest beyond the waiting count."""
    queued = EvaluationRun.objects.filter(status=SubmissionStatus.QUEUED, lease_expires__isnull=False)
    waiting = _waiting_messages()
    if waiting is None:
        return set()
    missing = queued.count() - waiting
    if missing <= 0:
        return set()
    oldest = queued.filter(lease_expires__lt=now).order_by("lease_expires", "pk").values_list("pk", flat=True)
    return set(oldest[:missing])


def runs_reap(*, now: datetime | None = None) -> Reaped:
    now = now or timezone.now()
    reaped = Reaped()
    expired = list(EvaluationRun.objects.filter(
        status__in=[SubmissionStatus.QUEUED, SubmissionStatus.RUNNING], lease_expires__lt=now,
    ).order_by("lease_expires", "pk").values_list("pk", flat=True)[:1000])
    if not expired:
        return reaped
    alive = EvaluationWorker.objects.filter(last_seen__gte=now - timedelta(seconds=lease_seconds())).exists()
    lost = _lost_queued(now)
    for pk in expired:
        _reap(pk, now, alive=alive, lost=pk in lost, reaped=reaped)
    if reaped.resent or reaped.failed:
        log.info("reaper: sent again %s, failed %s", reaped.resent, reaped.failed)
    return reaped


@transaction.atomic
def _reap(pk: int, now: datetime, *, alive: bool, lost: bool, reaped: Reaped) -> None:
    run = EvaluationRun.objects.select_for_update().select_related("submission").filter(pk=pk).first()
    if run is None or run.status not in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING) or run.lease_expires >= now:
        return  # finished or renewed meanwhile
    lease = lease_seconds()
    running = run.status == SubmissionStatus.RUNNING
    if (running or run.attempt > 1) and not alive and not lost:
        reason = (f"No evaluation worker has been heard from for {lease:.0f} s: the worker running this shard "
                  "stopped, and none is left to take it.")
    elif (running or lost) and run.attempt >= shard_attempts():
        reason = (f"This shard's evaluation worker stopped answering (no heartbeat for {lease:.0f} s) on each of "
                  f"its {run.attempt} attempts, so it was given up.")
    elif running or lost:
        _resend(run, now)
        reaped.resent.append(run.pk)
        return
    else:  # waiting behind other shards: its message is still in the queue
        EvaluationRun.objects.filter(pk=run.pk).update(lease_expires=now + timedelta(seconds=lease))
        return
    run_give_up(run_id=run.pk, reason=reason)
    reaped.failed.append(run.pk)


def _resend(run: EvaluationRun, now: datetime) -> None:
    run.attempt += 1
    run.status, run.stage, run.done, run.heartbeat = SubmissionStatus.QUEUED, "", 0, None
    run.lease_expires = now + timedelta(seconds=lease_seconds())
    run.save(update_fields=["attempt", "status", "stage", "done", "heartbeat", "lease_expires"])
    transaction.on_commit(lambda: evaluation_runs_send(runs=[run]))
