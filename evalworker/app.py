"""The evaluation worker's Celery app: broker settings only, no Django, no database.

Start it with ``celery -A evalworker.app worker --queues eval --concurrency 1``.
"""
from __future__ import annotations

import dataclasses
import logging
import sys

# This process runs uploaded models: make Django's settings and database layers and our web package
# unimportable here. (Celery's CLI imports kombu first, which probes django.utils; that part is harmless.)
_BLOCKED = ("django.conf", "django.db", "rest_framework", "spectra")
if any(sys.modules.get(name) for name in _BLOCKED):
    raise RuntimeError("evalworker.app must not be imported into a process that has loaded Django's settings")
sys.modules.update({name: None for name in _BLOCKED})

from celery import Celery  # noqa: E402
from celery.exceptions import SoftTimeLimitExceeded  # noqa: E402

import models_zoo.registry  # noqa: E402,F401,I001 - importing it wires the zoo's architectures into the loader
from evaluation.messages import MessageError, ShardDone, ShardProgress, ShardRequest  # noqa: E402
from evaluation.runner import run_shard  # noqa: E402
from evaluation.version import EVALUATOR_VERSION  # noqa: E402
from evalworker.broker import TASK_EVALUATE_SHARD, TASK_SHARD_DONE, TASK_SHARD_PROGRESS, celery_config  # noqa: E402

log = logging.getLogger(__name__)

app = Celery("evalworker", fixups=[])  # no Django fixup, even if DJANGO_SETTINGS_MODULE is set
app.conf.update(celery_config())


def _send(task: str, payload: dict) -> None:
    app.send_task(task, args=[payload])


def _failed(request: ShardRequest, error: str, kind: str) -> ShardDone:
    return ShardDone(
        run_id=request.run_id, status="failed", evaluator_version=EVALUATOR_VERSION,
        artifact_sha256=request.artifact_sha256, manifest_sha256=request.manifest_sha256,
        protocol=request.protocol, protocol_version=request.protocol_version, error=error, error_kind=kind,
    )


@app.task(name=TASK_EVALUATE_SHARD, bind=True)
def evaluate_shard(self, message: dict) -> None:  # noqa: ANN001 - Celery's bound task
    """Thin task: parse the request, run the shard, report the outcome to the platform queue."""
    try:
        request = ShardRequest.from_dict(message)
    except MessageError as error:
        log.error("dropped a malformed evaluate_shard message: %s", error)
        return

    def report(progress: ShardProgress) -> None:
        _send(TASK_SHARD_PROGRESS, progress.to_dict())

    try:
        outcome = run_shard(request, report)
    except SoftTimeLimitExceeded:
        limit = app.conf.task_soft_time_limit
        outcome = _failed(request, f"the evaluation took longer than the time limit of {limit} s", "user")
    except Exception as error:  # the platform must hear of every failure, then we re-raise for the log
        log.exception("evaluator crashed on run %s", request.run_id)
        _send(TASK_SHARD_DONE, _failed(request, f"internal evaluator error ({type(error).__name__})", "platform").to_dict())
        raise
    _send(TASK_SHARD_DONE, dataclasses.replace(outcome, worker=self.request.hostname or "").to_dict())
