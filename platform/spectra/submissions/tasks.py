"""Platform-worker tasks (queue ``platform``): thin wrappers that validate a message and call a service."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from evaluation.messages import MessageError, ShardDone, ShardProgress, WorkerAlive
from evalworker.broker import TASK_REAP_RUNS, TASK_SHARD_DONE, TASK_SHARD_PROGRESS, TASK_WORKER_ALIVE
from spectra.submissions.services.leases import runs_reap, worker_alive_record
from spectra.submissions.services.runs import shard_done_record, shard_progress_record

log = logging.getLogger(__name__)
# The database is away (restarting, a network blip): the message is tried again, for about ten minutes,
# instead of being dropped; the reaper is the last resort after that.
_DATABASE_AWAY = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 1, "retry_backoff_max": 30,
                  "retry_jitter": False, "max_retries": 25}


def _receive(message: dict, parse: Callable[[dict], Any], record: Callable[[Any], None]) -> None:
    """Parse a worker's message and record it; a malformed one is logged and dropped, never retried."""
    try:
        record(parse(message))
    except MessageError as error:
        log.error("dropped a %s message that failed its checks: %s", parse.__self__.__name__, error)


@shared_task(name=TASK_SHARD_PROGRESS, **_DATABASE_AWAY)
def shard_progress(message: dict) -> None:
    _receive(message, ShardProgress.from_dict, lambda progress: shard_progress_record(progress=progress))


@shared_task(name=TASK_SHARD_DONE, **_DATABASE_AWAY)
def shard_done(message: dict) -> None:
    _receive(message, ShardDone.from_dict, lambda outcome: shard_done_record(outcome=outcome))


@shared_task(name=TASK_WORKER_ALIVE, **_DATABASE_AWAY)
def worker_alive(message: dict) -> None:
    _receive(message, WorkerAlive.from_dict, lambda alive: worker_alive_record(alive=alive))


@shared_task(name=TASK_REAP_RUNS)
def reap_runs() -> None:
    runs_reap()
