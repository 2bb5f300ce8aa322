"""Celery settings shared by the platform and evaluation workers; read from the environment only.

Kept free of Django and torch so both sides can import it. The default broker is kombu's filesystem
transport, which needs no server: both queues live as files in one folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

EVAL_QUEUE = "eval"
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
    if url.startswith("filesystem://"):
        folder = var_dir() / "broker"
        folder.mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "store_processed": False,
            "polling_interval": 0.5,
        }
        # The filesystem transport has no fan-out exchange, so remote control and events are off.
        config["worker_enable_remote_control"] = False
        config["worker_send_task_events"] = False
    return config
