"""Leases and the reaper: no shard stays queued or running for ever.

Every shard holds a lease from the moment it is sent; each heartbeat of its worker renews it (the worker
sends one every SPECTRA_HEARTBEAT_SECONDS while busy, and announces itself as often while idle). The reaper
(``reap_runs``, every SPECTRA_REAPER_SECONDS in the platform worker's beat) acts on shards whose lease passed:

- running, and no evaluation worker has been heard from within a lease: failed, nobody is left to run it;
- running, its worker silent: sent again as a new attempt, up to SPECTRA_SHARD_ATTEMPTS, then failed;
- queued again after a lost worker, and no worker alive: failed; otherwise it is waiting its turn.

And when the broker restarted (Redis's run id changed) holding fewer messages than there are queued shards,
it lost them (a Redis without persistence): every queued shard is sent again. kombu's filesystem transport
keeps its queues on disk, so it never loses a queued message this way.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import ChannelError

from evaluation.messages import WorkerAlive
from evalworker.broker import EVAL_QUEUES, lease_seconds, shard_attempts
from spectra.submissions.models import BrokerIncarnation, EvaluationRun, EvaluationWorker, SubmissionStatus
from spectra.submissions.services import runs as run_services

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    resent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def worker_alive_record(*, alive: WorkerAlive) -> None:
    EvaluationWorker.objects.update_or_create(name=alive.worker[:200], defaults={
        "last_seen": timezone.now(), "evaluator_version": alive.evaluator_version[:40], "sandbox": alive.sandbox[:300],
    })


def _broker_state() -> tuple[str, int] | None:
    """(the broker's identity, messages waiting in the evaluation queues), or None if it cannot say."""
    try:
        with current_app.connection_for_read() as connection:
            channel = connection.default_channel
            waiting = sum(_waiting_in(channel, queue) for queue in EVAL_QUEUES)
            client = getattr(channel, "client", None)  # the Redis transport's client
            identity = str(client.info("server")["run_id"]) if hasattr(client, "info") else connection.as_uri()
            return identity, waiting
    except Exception as error:  # the broker is away: decide nothing about queued shards this time
        log.warning("the reaper could not read the broker's state: %s", error)
        return None


def _waiting_in(channel: Any, queue: str) -> int:
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # not declared (yet, or no more: a restarted Redis forgot its bindings): nothing waits
        return 0


def _queued_after_a_restart(now: datetime) -> list[int]:
    """The queued shards to send again because the broker restarted and lost their messages."""
    state = _broker_state()
    if state is None:
        return []
    identity, waiting = state
    seen = BrokerIncarnation.objects.first()
    if seen is None or seen.identity != identity:
        BrokerIncarnation.objects.all().delete()
        BrokerIncarnation.objects.create(identity=identity[:100], seen=now)
    if seen is None or seen.identity == identity:
        return []
    queued = EvaluationRun.objects.filter(status=SubmissionStatus.QUEUED, lease_expires__isnull=False)
    if queued.count() <= waiting:
        return []  # a broker that persists its queues kept them
    log.warning("the broker restarted (%s) and lost queued messages: sending its queued shards again", identity)
    return list(queued.values_list("pk", flat=True))


def runs_reap(*, now: datetime | None = None) -> Reaped:
    now = now or timezone.now()
    reaped = Reaped()
    for pk in _queued_after_a_restart(now):
        _resend_lost(pk, now, reaped)
    expired = list(EvaluationRun.objects.filter(
        status__in=[SubmissionStatus.QUEUED, SubmissionStatus.RUNNING], lease_expires__lt=now,
    ).order_by("lease_expires", "pk").values_list("pk", flat=True)[:1000])
    if expired:
        alive = EvaluationWorker.objects.filter(last_seen__gte=now - timedelta(seconds=lease_seconds())).exists()
        for pk in expired:
            _reap(pk, now, alive=alive, reaped=reaped)
    if reaped.resent or reaped.failed:
        log.info("reaper: sent again %s, failed %s", reaped.resent, reaped.failed)
    return reaped


@transaction.atomic
def _resend_lost(pk: int, now: datetime, reaped: Reaped) -> None:
    run = EvaluationRun.objects.select_for_update().select_related("submission").filter(pk=pk).first()
    if run is not None and run.status == SubmissionStatus.QUEUED:
        run_services.run_send_again(run, now)
        reaped.resent.append(run.pk)


@transaction.atomic
def _reap(pk: int, now: datetime, *, alive: bool, reaped: Reaped) -> None:
    run = EvaluationRun.objects.select_for_update().select_related("submission").filter(pk=pk).first()
    if run is None or run.status not in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING) or run.lease_expires >= now:
        return  # finished or renewed meanwhile
    lease = lease_seconds()
    running = run.status == SubmissionStatus.RUNNING
    if not running and (run.attempt == 1 or alive):  # waiting its turn behind other shards
        EvaluationRun.objects.filter(pk=run.pk).update(lease_expires=now + timedelta(seconds=lease))
        return
    if not alive:
        reason = (f"No evaluation worker has been heard from for {lease:.0f} s: the worker running this shard "
                  "stopped, and none is left to take it.")
    elif run.attempt >= shard_attempts():
        reason = (f"This shard's evaluation worker stopped answering (no heartbeat for {lease:.0f} s) on each of "
                  f"its {run.attempt} attempts, so it was given up.")
    else:
        run_services.run_send_again(run, now)
        reaped.resent.append(run.pk)
        return
    run_services.run_give_up(run_id=run.pk, reason=reason)
    reaped.failed.append(run.pk)
