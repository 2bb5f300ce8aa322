"""The Celery settings both workers share: late acks, prefetch 1, time limits, and the two queues."""
from __future__ import annotations

import pytest

from evalworker.broker import (
    EVAL_QUEUE,
    PLATFORM_QUEUE,
    TASK_EVALUATE_SHARD,
    TASK_SHARD_DONE,
    TASK_SHARD_PROGRESS,
    celery_config,
)


def test_a_lost_worker_leaves_its_message_for_another() -> None:
    config = celery_config()
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1


def test_time_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECTRA_EVAL_SOFT_TIME_LIMIT", "120")
    monkeypatch.setenv("SPECTRA_EVAL_HARD_TIME_LIMIT", "150")
    config = celery_config()
    assert (config["task_soft_time_limit"], config["task_time_limit"]) == (120, 150)
    monkeypatch.setenv("SPECTRA_EVAL_SOFT_TIME_LIMIT", "soon")
    with pytest.raises(ValueError, match="SPECTRA_EVAL_SOFT_TIME_LIMIT"):
        celery_config()


def test_tasks_are_routed_to_their_queues() -> None:
    routes = celery_config()["task_routes"]
    assert routes[TASK_EVALUATE_SHARD]["queue"] == EVAL_QUEUE
    assert routes[TASK_SHARD_PROGRESS]["queue"] == routes[TASK_SHARD_DONE]["queue"] == PLATFORM_QUEUE


def test_the_default_broker_needs_no_server(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("SPECTRA_VAR_DIR", str(tmp_path))
    config = celery_config()
    assert config["broker_url"] == "filesystem://"
    assert config["broker_transport_options"]["data_folder_in"] == str(tmp_path / "broker")
    assert (tmp_path / "broker").is_dir()


def test_the_evaluation_worker_environment_holds_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from spectra.core.management.commands.runstack import evaluation_worker_env

    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "s")
    monkeypatch.setenv("PGPASSWORD", "p")
    env = evaluation_worker_env()
    assert not {"DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE", "PGPASSWORD"} & set(env)
