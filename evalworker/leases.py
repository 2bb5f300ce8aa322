"""The evaluation worker's side of the leases: heartbeats while a shard runs, and a count of deliveries.

A busy shard's heartbeat is its latest progress, sent again from a thread whenever nothing went out for
``heartbeat_seconds``, so the platform hears from a shard whose model computes a long batch. A shard that took its worker down (the pool
process died) is redelivered by the broker; the count of its deliveries lives on this machine's disk, because
the process that counted in memory is the one that died, and the shard is given up after ``shard_attempts``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from evaluation.messages import STARTED_STAGE, ShardProgress, ShardRequest
from evalworker.broker import heartbeat_seconds, var_dir

log = logging.getLogger(__name__)


class Heartbeat:
    """Sends a shard's progress as it comes, and the latest one again every few seconds until stopped."""

    def __init__(self, request: ShardRequest, send: Callable[[ShardProgress], None]) -> None:
        self._send, self._stopped, self._sent = send, threading.Event(), 0.0
        self._latest = ShardProgress(run_id=request.run_id, attempt=request.attempt, done=0,
                                     total=request.last_row - request.first_row, stage=STARTED_STAGE)
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{request.run_id}")

    def __enter__(self) -> Heartbeat:
        self.update(self._latest)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def update(self, progress: ShardProgress) -> None:
        self._latest = progress
        self._deliver(progress)

    def _beat(self) -> None:
        interval = heartbeat_seconds()
        while not self._stopped.wait(max(self._sent + interval - time.monotonic(), 0.05)):
            if time.monotonic() - self._sent >= interval:  # nothing went out for a whole interval
                self._deliver(self._latest)

    def _deliver(self, progress: ShardProgress) -> None:
        self._sent = time.monotonic()
        try:
            self._send(progress)
        except Exception as error:  # a broker outage must not stop the shard: its result is sent with retries
            log.warning("could not send progress of run %s: %s", progress.run_id, error)


def _deliveries_file(message_id: str) -> Path:
    folder = var_dir() / "evalworker" / "deliveries"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "".join(c for c in message_id if c.isalnum() or c == "-")[:100]


def delivery_count(message_id: str) -> int:
    """Count one more delivery of the message ``message_id`` (a redelivered message keeps its id) on this
    machine, and return the count."""
    path = _deliveries_file(message_id)
    try:
        count = int(path.read_text() or 0) + 1
    except (FileNotFoundError, ValueError):
        count = 1
    path.write_text(str(count))
    return count


def delivery_finished(message_id: str) -> None:
    _deliveries_file(message_id).unlink(missing_ok=True)
