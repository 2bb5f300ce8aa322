"""Celery settings shared by the platform and evaluation workers; read from the environment only.

Kept free of Django and torch so both sides can import it. The default broker is kombu's filesystem
transport, which needs no server: the queues live as files in one folder.

People's uploads go to ``eval`` and the zoo's own baseline rows to ``eval-zoo``; an evaluation worker consumes
both and takes a zoo shard only when no person's shard is waiting. kombu round-robins between a worker's queues
by default, on both transports, so each broker is told otherwise: Redis by its ``sorted`` queue order (BRPOP
takes from the first non-empty list in the order given), the filesystem transport by the transport below.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps
from kombu.utils.scheduling import FairCycle

EVAL_QUEUE = "eval"  # people's uploads
ZOO_EVAL_QUEUE = "eval-zoo"  # the zoo's baseline rows: read only when EVAL_QUEUE is empty
EVAL_QUEUES = (EVAL_QUEUE, ZOO_EVAL_QUEUE)  # in the order an evaluation worker reads them (also sorted by name)
PLATFORM_QUEUE = "platform"

TASK_EVALUATE_SHARD = "spectra.evaluate_shard"
TASK_SHARD_PROGRESS = "spectra.shard_progress"
TASK_SHARD_DONE = "spectra.shard_done"
TASK_WORKER_ALIVE = "spectra.worker_alive"
TASK_REAP_RUNS = "spectra.reap_runs"

DEFAULT_VAR_DIR = Path(__file__).resolve().parent.parent / "var"


def var_dir() -> Path:
    raw = os.environ.get("SPECTRA_VAR_DIR")
    return Path(raw).expanduser().resolve() if raw else DEFAULT_VAR_DIR


def broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL", "filesystem://")


def _number(name: str, default: float, kind: type = int) -> float:
    raw = os.environ.get(name, "")
    try:
        return kind(raw) if raw.strip() else default
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None


def _int(name: str, default: int) -> int:
    return int(_number(name, default))


def _seconds(name: str, default: float) -> float:
    return float(_number(name, default, float))


def heartbeat_seconds() -> float:
    """How often a busy shard and an idle evaluation worker say they are alive."""
    return max(_seconds("SPECTRA_HEARTBEAT_SECONDS", 10.0), 0.1)


def lease_seconds() -> float:
    """How long a shard may go unheard before the reaper treats its worker as gone (several heartbeats)."""
    return max(_seconds("SPECTRA_LEASE_SECONDS", 120.0), 3 * heartbeat_seconds())


def shard_attempts() -> int:
    """Deliveries of one shard before it is given up: re-sent after an expired lease, or redelivered by the
    broker after it took its worker down."""
    return max(_int("SPECTRA_SHARD_ATTEMPTS", 3), 1)


def reaper_seconds() -> float:
    return max(_seconds("SPECTRA_REAPER_SECONDS", 30.0), 0.2)


def evaluation_queue(*, zoo: bool) -> str:
    """The queue of a submission's shards: the zoo's own rows wait behind every person's upload."""
    return ZOO_EVAL_QUEUE if zoo else EVAL_QUEUE


def _queue_rank(queue: str) -> int:
    return EVAL_QUEUES.index(queue) if queue in EVAL_QUEUES else len(EVAL_QUEUES)


class _QueuesInOrder(FairCycle):
    """Tries a channel's queues in EVAL_QUEUES order on every read, instead of kombu's round robin."""

    def get(self, callback: Any, **kwargs: Any) -> Any:
        for queue in sorted(self.resources, key=_queue_rank):
            try:
                return self.fun(queue, callback, **kwargs)
            except self.predicate:
                continue
        raise self.predicate()


class _PeopleFirstChannel(filesystem.Channel):
    def _reset_cycle(self) -> None:
        self._cycle = _QueuesInOrder(self._get_and_deliver, self._active_queues, Empty)

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        """kombu's writer creates the message file, then fills it, while a reader may take any ``*.msg`` file at
        any time and read it empty; under load that crashed the consumer. The message is written under a name
        no reader looks at, then renamed into the queue, which is atomic."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = Path(self.data_folder_out) / name
        partial = final.with_name(f".{name}.part")
        try:
            partial.write_bytes(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ChannelError(f"Cannot add file {str(final)!r} to directory") from exc


class PeopleFirstFilesystemTransport(filesystem.Transport):
    """kombu's filesystem transport, reading a worker's queues people first (each queue stays FIFO), and
    writing each message whole before a reader can see it."""

    Channel = _PeopleFirstChannel


def celery_config() -> dict[str, Any]:
    """The Celery configuration (lower-case setting names) both workers and the web process use."""
    url = broker_url()
    config: dict[str, Any] = {
        "broker_url": url,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        # A worker that dies mid-task leaves the message for another worker instead of losing it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": _int("SPECTRA_EVAL_SOFT_TIME_LIMIT", 3600),
        "task_time_limit": _int("SPECTRA_EVAL_HARD_TIME_LIMIT", 3900),
        "task_routes": {
            TASK_EVALUATE_SHARD: {"queue": EVAL_QUEUE},
            TASK_SHARD_PROGRESS: {"queue": PLATFORM_QUEUE},
            TASK_SHARD_DONE: {"queue": PLATFORM_QUEUE},
            TASK_WORKER_ALIVE: {"queue": PLATFORM_QUEUE},
            TASK_REAP_RUNS: {"queue": PLATFORM_QUEUE},
        },
        # The platform's reaper (submissions.tasks.reap_runs), run by the beat inside the platform worker.
        "beat_schedule": {"reap-runs": {"task": TASK_REAP_RUNS, "schedule": reaper_seconds()}},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
    # Redelivery: a worker that dies mid-task leaves its message unacknowledged. Redis gives it to another worker
    # after the visibility timeout, and a rejected one (the pool child died) at once; the filesystem transport
    # deletes a message when it is read, so it never redelivers. Either way the platform's reaper re-sends a
    # shard whose lease expired (a new attempt), so redelivery is a shortcut, never the only way back.
    if url.startswith(("redis://", "rediss://")):
        # A message not acknowledged within the visibility timeout is given to another worker: it must outlast
        # the longest shard (acks are late), or a long shard runs twice.
        config["broker_transport_options"] = {"queue_order_strategy": "sorted",
                                              "visibility_timeout": config["task_time_limit"] + 300}
    if url.startswith("filesystem://"):
        folder = var_dir() / "broker"
        folder.mkdir(parents=True, exist_ok=True)
        config["broker_transport"] = f"{__name__}:PeopleFirstFilesystemTransport"
        config["broker_transport_options"] = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),  # kombu's default is ./control, in whatever the cwd is
            "store_processed": False,
            "polling_interval": 0.5,
        }
        # The filesystem transport has no fan-out exchange, so remote control and events are off.
        config["worker_enable_remote_control"] = False
        config["worker_send_task_events"] = False
    return config
