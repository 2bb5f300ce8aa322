"""The evaluation worker's Celery app: broker settings only, no Django, no database.

Start it with ``celery -A evalworker.app worker --queues eval --concurrency 1``.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time

# This process runs uploaded models: make Django's settings and database layers and our web package
# unimportable here. (Celery's CLI imports kombu first, which probes django.utils; that part is harmless.)
_BLOCKED = ("django.conf", "django.db", "rest_framework", "spectra")
if any(sys.modules.get(name) for name in _BLOCKED):
    raise RuntimeError("evalworker.app must not be imported into a process that has loaded Django's settings")
sys.modules.update({name: None for name in _BLOCKED})

from celery import Celery  # noqa: E402
from celery.exceptions import SoftTimeLimitExceeded  # noqa: E402
from celery.signals import worker_process_shutdown, worker_ready  # noqa: E402

import models_zoo.registry  # noqa: E402,F401,I001 - importing it wires the zoo's architectures into the loader
from evaluation.messages import MessageError, ShardDone, ShardRequest, WorkerAlive  # noqa: E402
from evaluation.runner import run_shard, shard_done  # noqa: E402
from evaluation.sandbox.launch import bubblewrap_problem, check_sandbox_requirement  # noqa: E402
from evaluation.sandbox.scorer import ScorerCache  # noqa: E402
from evaluation.storage import configure_reader_from_env  # noqa: E402
from evaluation.version import EVALUATOR_VERSION  # noqa: E402
from evalworker.broker import (  # noqa: E402
    TASK_EVALUATE_SHARD,
    TASK_SHARD_DONE,
    TASK_SHARD_PROGRESS,
    TASK_WORKER_ALIVE,
    celery_config,
    heartbeat_seconds,
    shard_attempts,
)
from evalworker.leases import Heartbeat, delivery_count, delivery_finished  # noqa: E402

log = logging.getLogger(__name__)
check_sandbox_requirement()  # SPECTRA_REQUIRE_SANDBOX=1 and no working bubblewrap: refuse to start at all
configure_reader_from_env()  # s3:// dataset images with the read-only key; artifacts and manifests come as links

app = Celery("evalworker", fixups=[])  # no Django fixup, even if DJANGO_SETTINGS_MODULE is set
app.conf.update(celery_config())
# The uploaded model runs in a sandboxed child of the pool process; one child serves all shards of an artifact.
SCORERS = ScorerCache(wire=["models_zoo.registry"])
# A shard's result survives a broker restart: publishing is retried for about a minute.
_PATIENT = {"max_retries": 40, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 2.0}


def _send(task: str, payload: dict, *, patient: bool = False) -> None:
    app.send_task(task, args=[payload], retry=True, **({"retry_policy": _PATIENT} if patient else {}))


def _evaluate(request: ShardRequest, message_id: str) -> ShardDone:
    deliveries = delivery_count(message_id)
    if deliveries > shard_attempts():
        return shard_done(request, status="failed", error_kind="platform", error=(
            f"This shard stopped its evaluation worker {deliveries - 1} times (the worker's process died each time), "
            "so it was given up."))
    try:
        with Heartbeat(request, lambda progress: _send(TASK_SHARD_PROGRESS, progress.to_dict())) as heartbeat:
            return run_shard(request, heartbeat.update, SCORERS)
    except SoftTimeLimitExceeded:
        SCORERS.close()  # its child may be in the middle of a batch
        limit = app.conf.task_soft_time_limit
        return shard_done(request, status="failed", error_kind="user",
                          error=f"the evaluation took longer than the time limit of {limit} s")


@app.task(name=TASK_EVALUATE_SHARD, bind=True)
def evaluate_shard(self, message: dict) -> None:  # noqa: ANN001 - Celery's bound task
    """Thin task: parse the request, run the shard with heartbeats, report the outcome to the platform queue."""
    try:
        request = ShardRequest.from_dict(message)
    except MessageError as error:
        log.error("dropped a malformed evaluate_shard message: %s", error)
        return
    message_id = self.request.id or f"run-{request.run_id}-attempt-{request.attempt}"
    try:
        outcome = _evaluate(request, message_id)
    except Exception as error:  # the platform must hear of every failure, then we re-raise for the log
        log.exception("evaluator crashed on run %s", request.run_id)
        crashed = shard_done(request, status="failed", error_kind="platform",
                             error=f"internal evaluator error ({type(error).__name__})")
        _send(TASK_SHARD_DONE, crashed.to_dict(), patient=True)
        raise
    finally:
        delivery_finished(message_id)
    log.info("run %s attempt %s: %s%s", request.run_id, request.attempt, outcome.status,
             f" ({outcome.error_kind}: {outcome.error})" if outcome.error else "")
    _send(TASK_SHARD_DONE, dataclasses.replace(outcome, worker=self.request.hostname or "").to_dict(), patient=True)


def _announce(worker: str) -> None:
    alive = WorkerAlive(worker=worker, evaluator_version=EVALUATOR_VERSION, sandbox=bubblewrap_problem() or "bubblewrap")
    while True:
        try:
            _send(TASK_WORKER_ALIVE, alive.to_dict())
        except Exception as error:  # the broker may be restarting; the next beat tries again
            log.warning("could not announce this worker: %s", error)
        time.sleep(heartbeat_seconds())


@worker_ready.connect
def _start_announcing(sender: object, **_: object) -> None:
    name = getattr(sender, "hostname", "") or "evaluation worker"
    threading.Thread(target=_announce, args=(name,), daemon=True, name="worker-alive").start()


@worker_process_shutdown.connect
def _stop_scorer(**_: object) -> None:
    SCORERS.close()
