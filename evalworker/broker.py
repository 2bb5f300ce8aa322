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
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.transport import filesystem
from kombu.utils.scheduling import FairCycle

EVAL_QUEUE = "eval"  # people's uploads
ZOO_EVAL_QUEUE = "eval-zoo"  # the zoo's baseline rows: read only when EVAL_QUEUE is empty
EVAL_QUEUES = (EVAL_QUEUE, ZOO_EVAL_QUEUE)  # in the order an evaluation worker reads them (also sorted by name)
PLATFORM_QUEUE = "platform"

TASK_EVALUATE_SHARD = "spectra.evaluate_shard"
TASK_SHARD_PROGRESS = "spectra.shard_progress"
TASK_SHARD_DONE = "spectra.shard_done"

DEFAULT_VAR_DIR = Path(__file__).resolve().parent.parent / "var"


def var_dir() -> Path:
    raw = os.environ.get("SPECTRA_VAR_DIR")
    return Path(raw).expanduser().resolve() if raw else DEFAULT_VAR_DIR


def broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL", "filesystem://")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


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


class PeopleFirstFilesystemTransport(filesystem.Transport):
    """kombu's filesystem transport, reading a worker's queues people first (each queue stays FIFO)."""

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
        },
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
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
