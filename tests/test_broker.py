"""The Celery settings both workers share: late acks, prefetch 1, time limits, the queues and their order."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from evalworker.broker import (
    EVAL_QUEUE,
    EVAL_QUEUES,
    PLATFORM_QUEUE,
    TASK_EVALUATE_SHARD,
    TASK_SHARD_DONE,
    TASK_SHARD_PROGRESS,
    ZOO_EVAL_QUEUE,
    celery_config,
    evaluation_queue,
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
    assert config["broker_transport_options"]["control_folder"] == str(tmp_path / "broker" / "control")
    assert (tmp_path / "broker").is_dir()


def test_the_evaluation_worker_environment_holds_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from spectra.core.management.commands.runstack import evaluation_worker_env

    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "s")
    monkeypatch.setenv("PGPASSWORD", "p")
    env = evaluation_worker_env()
    assert not {"DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE", "PGPASSWORD"} & set(env)


def test_people_and_the_zoo_have_their_own_queues_read_people_first() -> None:
    assert (evaluation_queue(zoo=False), evaluation_queue(zoo=True)) == (EVAL_QUEUE, ZOO_EVAL_QUEUE)
    assert EVAL_QUEUES == (EVAL_QUEUE, ZOO_EVAL_QUEUE)
    assert sorted(EVAL_QUEUES) == list(EVAL_QUEUES)  # Redis reads them in sorted order


def test_redis_reads_queues_in_sorted_order_and_outwaits_the_longest_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    config = celery_config()
    assert config["broker_transport_options"]["queue_order_strategy"] == "sorted"
    assert config["broker_transport_options"]["visibility_timeout"] > config["task_time_limit"]
    assert "broker_transport" not in config


def test_the_filesystem_transport_hands_out_every_persons_message_before_the_zoos(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """kombu itself, no Celery: zoo messages first, then people's, read by one consumer of both queues."""
    from kombu import Connection, Consumer, Queue

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("SPECTRA_VAR_DIR", str(tmp_path))
    config = celery_config()
    queues = [Queue(name, routing_key=name) for name in (ZOO_EVAL_QUEUE, EVAL_QUEUE)]  # consumed zoo first, even
    with Connection(config["broker_url"], transport=config["broker_transport"],
                    transport_options=config["broker_transport_options"]) as connection:
        producer = connection.Producer()
        for i in range(3):
            producer.publish({"n": f"zoo{i}"}, routing_key=ZOO_EVAL_QUEUE, declare=queues)
        for i in range(2):
            producer.publish({"n": f"person{i}"}, routing_key=EVAL_QUEUE, declare=queues)
        got: list[str] = []

        def take(body: dict, message) -> None:  # noqa: ANN001 - kombu's callback
            got.append(body["n"])
            message.ack()

        with Consumer(connection, queues, callbacks=[take]):
            while len(got) < 5:
                connection.drain_events(timeout=5)
    # Within a queue the order is the file names' (millisecond, uuid): messages of one millisecond may swap.
    assert sorted(got[:2]) == ["person0", "person1"] and sorted(got[2:]) == ["zoo0", "zoo1", "zoo2"]


def test_runstack_starts_the_zoo_only_once_the_site_answers() -> None:
    import socket
    import subprocess
    import sys

    from spectra.core.management.commands.runstack import wait_until_serving

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            port = server.getsockname()[1]
            assert not wait_until_serving(f"127.0.0.1:{port}", sleeper, timeout=1.0)  # bound, not listening yet
            server.listen()
            assert wait_until_serving(f"127.0.0.1:{port}", sleeper, timeout=5.0)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not wait_until_serving(f"127.0.0.1:{port}", sleeper, timeout=30.0)  # a dead server: no waiting


def test_the_evaluation_workers_read_both_queues() -> None:
    from spectra.core.management.commands.runstack import worker_commands

    for name, command, _ in worker_commands("celery", evaluation_workers=2):
        queues = command[command.index("--queues") + 1]
        assert queues == ("platform" if name == "platform worker" else f"{EVAL_QUEUE},{ZOO_EVAL_QUEUE}")


def test_a_filesystem_message_is_never_visible_before_it_is_whole(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """kombu's own writer creates ``<name>.<queue>.msg`` empty and fills it afterwards, so a reader taking it in
    between read an empty message and crashed the platform worker. Ours renames a finished file into the queue."""
    from kombu import Connection
    from kombu.transport import filesystem

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("SPECTRA_VAR_DIR", str(tmp_path))
    config = celery_config()
    folder = Path(config["broker_transport_options"]["data_folder_in"])
    seen_while_writing: list[list[int]] = []

    def snapshot(*_: object) -> None:  # what a reader would find at this moment: the sizes of the queue's files
        seen_while_writing.append([path.stat().st_size for path in folder.glob("*.platform.msg")])

    monkeypatch.setattr(filesystem, "lock", snapshot)  # kombu calls it after creating the file, before writing
    with Connection("filesystem://", transport_options=config["broker_transport_options"]) as connection:
        connection.default_channel._put("platform", {"n": 1})  # kombu's own Channel: the control
    assert seen_while_writing == [[0]]  # an empty message file in the queue, for any reader to take
    for path in folder.glob("*.msg"):
        path.unlink()

    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (snapshot(), real_replace(src, dst)))
    with Connection(config["broker_url"], transport=config["broker_transport"],
                    transport_options=config["broker_transport_options"]) as connection:
        connection.default_channel._put("platform", {"n": 2})
        assert seen_while_writing[-1] == []  # nothing in the queue until the whole message is renamed in
        assert connection.default_channel._get("platform") == {"n": 2}
