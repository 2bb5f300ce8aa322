"""Platform-worker tasks (queue ``platform``): thin wrappers that validate a message and call a service."""
from __future__ import annotations

import logging

from celery import shared_task

from evaluation.messages import MessageError, ShardDone, ShardProgress
from evalworker.broker import TASK_SHARD_DONE, TASK_SHARD_PROGRESS
from spectra.submissions.services.runs import shard_done_record, shard_progress_record

log = logging.getLogger(__name__)


@shared_task(name=TASK_SHARD_PROGRESS)
def shard_progress(message: dict) -> None:
    try:
        shard_progress_record(progress=ShardProgress.from_dict(message))
    except MessageError as error:
        log.error("dropped a malformed shard_progress message: %s", error)


@shared_task(name=TASK_SHARD_DONE)
def shard_done(message: dict) -> None:
    try:
        shard_done_record(outcome=ShardDone.from_dict(message))
    except MessageError as error:
        log.error("dropped a shard_done message that failed its checks: %s", error)
