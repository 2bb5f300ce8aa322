"""Faults on real processes: workers killed in the middle of a shard, for a moment or for good, a shard that
takes its worker down at every delivery, the broker and the database restarted under a run, the platform
worker killed in its aggregate step, and `make run` stopped while a model is busy.

Each ends with the submission done with the numbers of an undisturbed run and no duplicate rows, or failed
with its reason, never "running" for ever. Leases are short in the suite (tests/conftest.py: LEASES).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from evalworker.broker import lease_seconds, reaper_seconds, shard_attempts
from spectra.submissions.models import EvaluationRun, ImageScores, Result, Submission, SubmissionStatus
from spectra.submissions.services.submissions import submission_create
from tests.conftest import ROOT, WORKER_MEDIA_ROOT, _purge_queues
from tests.detector_files import TinyDetector, _script

pytestmark = [pytest.mark.workers, pytest.mark.faults, pytest.mark.django_db(transaction=True)]
SIZE = 32
SHARD_IMAGES = 300  # the mini test split's 1,104 images in four shards


class _SlowDetector(torch.nn.Module):
    """TinyDetector's scores, after some work that takes time (so a shard lasts long enough to be hit)."""

    def __init__(self, seed: int, work: int) -> None:
        super().__init__()
        self.inner, self.work = TinyDetector(seed), work
        self.register_buffer("kernel", torch.full((3, 3, 3, 3), 1.0 / 27))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        busy = x
        for _ in range(self.work):
            busy = torch.nn.functional.conv2d(busy, self.kernel, padding=1).tanh()
        return self.inner(x) + 0.0 * busy.mean((1, 2, 3)).clamp(-1.0, 1.0)


@pytest.fixture(scope="module")
def slow_detector(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("slow") / "slow.pt"
    torch.jit.save(_script(_SlowDetector(seed=5, work=150)), str(path))
    return path.read_bytes()


@pytest.fixture(autouse=True)
def shards(settings) -> None:
    settings.SPECTRA_SHARD_IMAGES = SHARD_IMAGES


@pytest.fixture
def media_root(settings) -> Path:
    """The platform worker's own media folder: the reaper's re-sent shards name their artifact there."""
    WORKER_MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    settings.MEDIA_ROOT = str(WORKER_MEDIA_ROOT)
    return WORKER_MEDIA_ROOT


def _submit(alice, dataset, data: bytes, name: str) -> Submission:
    return submission_create(owner=alice, name=name, benchmark=dataset.benchmark, input_size=SIZE,
                             upload=SimpleUploadedFile(f"{name}.pt", data), declared_format="torchscript")


def _numbers(submission: Submission) -> dict[tuple[str, str], dict]:
    return {(r.subset, r.condition): r.metrics for r in Result.objects.filter(submission=submission)}


def _wait_until(condition, what: str, timeout: float = 300.0, workers=None, submission=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if workers is not None:
            workers.assert_alive()
        if time.monotonic() > deadline:
            runs = [] if submission is None else list(EvaluationRun.objects.filter(submission=submission).values_list(
                "pk", "status", "stage", "done", "total", "attempt"))
            pytest.fail(f"still waiting for {what} after {timeout:.0f} s; the runs: {runs}")
        time.sleep(0.05)


def _scoring(submission: Submission) -> bool:
    """A shard is past its probe and not through its images (so a fault now hits it before its result is sent).
    The whole shard is the window: a narrower one was missed when the platform worker recorded a burst of
    progress messages at once."""
    return any(0 < run.done < run.total for run in EvaluationRun.objects.filter(submission=submission,
                                                                                status="running"))


def _finished(submission: Submission) -> bool:
    submission.refresh_from_db(fields=["status"])
    return submission.status in (SubmissionStatus.DONE, SubmissionStatus.FAILED)


def _submit_while_scoring(alice, dataset, data: bytes, name: str, workers) -> Submission:
    """A submission with a shard seen mid-way. One whose progress the platform worker recorded in one burst shows
    none (it is done before the window was seen): then another is submitted, up to three."""
    for attempt in range(3):
        submission = _submit(alice, dataset, data, f"{name}-{attempt}")
        _wait_until(lambda s=submission: _scoring(s) or _finished(s), "a shard to be scoring",
                    workers=workers, submission=submission)
        if not _finished(submission):
            return submission
    pytest.fail("three submissions finished before a shard of theirs was seen mid-way")


def _assert_no_duplicates(submission: Submission) -> None:
    runs = EvaluationRun.objects.filter(submission=submission)
    assert ImageScores.objects.filter(run__in=runs).count() == runs.count()
    keys = list(Result.objects.filter(submission=submission).values_list("dataset", "protocol", "condition", "subset"))
    assert len(keys) == len(set(keys))


@pytest.fixture
def undisturbed(alice, mini_dataset, workers, slow_detector: bytes) -> dict:
    submission = workers.wait_for(_submit(alice, mini_dataset, slow_detector, "undisturbed").pk)
    assert submission.status == "done", submission.error
    return _numbers(submission)


def _restart_evaluation_workers(workers) -> None:
    for name in workers.evaluation_workers():
        if name not in dict(workers.processes):
            workers.start(name)


def test_a_worker_killed_mid_shard_and_restarted_changes_no_number(alice, mini_dataset, workers, slow_detector,
                                                                   undisturbed: dict) -> None:
    submission = _submit_while_scoring(alice, mini_dataset, slow_detector, "disturbed", workers)
    hit = [(r.pk, r.done, r.total) for r in EvaluationRun.objects.filter(submission=submission, status="running")]
    workers.kill(*workers.evaluation_workers())
    print("killed the workers during", hit)
    _restart_evaluation_workers(workers)
    submission = workers.wait_for(submission.pk)
    assert submission.status == "done", submission.error
    assert _numbers(submission) == undisturbed
    _assert_no_duplicates(submission)
    runs = list(EvaluationRun.objects.filter(submission=submission).values_list("pk", "attempt", "deliveries", "worker"))
    assert any(attempt > 1 for _, attempt, _, _ in runs), runs  # the reaper sent the killed shard again


def test_a_worker_killed_for_good_fails_the_submission_within_two_leases(alice, mini_dataset, workers,
                                                                         slow_detector) -> None:
    submission = _submit_while_scoring(alice, mini_dataset, slow_detector, "orphaned", workers)
    workers.kill(*workers.evaluation_workers())
    killed = time.monotonic()
    try:
        submission = workers.wait_for(submission.pk, timeout=10 * lease_seconds())
        waited = time.monotonic() - killed
    finally:
        _purge_queues()  # the cancelled shards' messages must not keep the restarted workers busy
        _restart_evaluation_workers(workers)
    assert submission.status == "failed"
    assert "No evaluation worker has been heard from" in submission.error
    assert waited <= 2 * lease_seconds() + 3 * reaper_seconds() + 5, waited
    assert not EvaluationRun.objects.filter(submission=submission, status__in=["queued", "running"]).exists()


def _children(pid: int) -> set[int]:
    """The direct children of a process, whichever of its threads started them."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(child) for child in (task / "children").read_text().split()}
        except OSError:
            continue  # the thread ended meanwhile
    return found


def _pool_processes(worker: subprocess.Popen[bytes]) -> set[int]:
    return _children(worker.pid)


def test_a_shard_that_takes_its_worker_down_every_time_is_given_up(alice, mini_dataset, workers, slow_detector,
                                                                   settings) -> None:
    """Each time a worker starts the shard (its delivery count on disk goes up) its pool process is killed, as
    a shard that crashes its worker would; the broker delivers it again, until the count gives it up."""
    from evalworker.broker import var_dir

    settings.SPECTRA_SHARD_IMAGES = 2000  # one shard
    deliveries = var_dir() / "evalworker" / "deliveries"
    earlier = {path.name for path in deliveries.glob("*")} if deliveries.is_dir() else set()  # killed workers' files
    submission = _submit(alice, mini_dataset, slow_detector, "poison")
    run = submission.runs.get()
    killed: set[tuple[str, str]] = set()

    def poisoned() -> bool:
        started = {(path.name, path.read_text()) for path in deliveries.glob("*") if path.name not in earlier}
        if started - killed:  # kill the pool process that runs it: the one whose scorer child is up
            busy = [pid for name in workers.evaluation_workers() for pid in _pool_processes(workers.process(name))
                    if _children(pid)]
            for pid in busy:
                os.kill(pid, signal.SIGKILL)
            if busy:
                killed.update(started)
        run.refresh_from_db()
        return run.status == "failed"

    _wait_until(poisoned, "the poison shard to be given up", workers=workers)
    submission.refresh_from_db()
    assert submission.status == "failed" and submission.error_kind == "platform"
    assert "stopped each time" in submission.error or "stopped its evaluation worker" in submission.error
    run.refresh_from_db()
    assert run.deliveries <= shard_attempts() + 1
    assert not ImageScores.objects.filter(run=run).exists()


def _run_psql(sql: str) -> None:
    settings = connection.settings_dict
    subprocess.run(["psql", "-h", settings["HOST"], "-U", settings["USER"], "-d", "postgres", "-c", sql],
                   check=True, capture_output=True)


def test_the_platform_worker_killed_in_its_aggregate_step_redoes_it(alice, mini_dataset, workers, slow_detector,
                                                                    undisturbed: dict) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("holds a PostgreSQL table lock to catch the aggregate step in the act")
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], user=settings["USER"], dbname=settings["NAME"]) as blocker:
        blocker.execute(f"LOCK TABLE {Result._meta.db_table} IN ACCESS EXCLUSIVE MODE")  # held until commit
        submission = _submit(alice, mini_dataset, slow_detector, "interrupted aggregate")

        def waiting_on_the_lock() -> bool:
            return blocker.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0] > 0

        _wait_until(waiting_on_the_lock, "the aggregate step to wait for the results table", workers=workers)
        workers.kill("platform worker")
        blocker.rollback()
    workers.start("platform worker")
    submission = workers.wait_for(submission.pk)
    assert submission.status == "done", submission.error
    assert _numbers(submission) == undisturbed
    _assert_no_duplicates(submission)


def _postgres_cluster() -> tuple[str, str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return version, "main"


def test_postgres_stopped_while_a_result_is_recorded_loses_nothing(alice, mini_dataset, workers, slow_detector,
                                                                   undisturbed: dict) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("stops the PostgreSQL server")
    submission = _submit_while_scoring(alice, mini_dataset, slow_detector, "database away", workers)
    connection.close()
    version, cluster = _postgres_cluster()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "stop", "-m", "fast"], check=True)
    try:
        time.sleep(8)  # shards finish meanwhile: their results meet a database that is away
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"], check=True)
    _wait_until(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0, "PostgreSQL")
    submission = workers.wait_for(submission.pk)
    assert submission.status == "done", submission.error
    assert _numbers(submission) == undisturbed
    _assert_no_duplicates(submission)


def test_redis_restarted_under_a_run_loses_nothing(alice, mini_dataset, workers, slow_detector,
                                                   undisturbed: dict) -> None:
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("restarts the Redis broker")
    submission = _submit_while_scoring(alice, mini_dataset, slow_detector, "broker away", workers)
    port = settings.CELERY_BROKER_URL.split(":")[2].split("/")[0]
    subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True)
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", port,
                    "--save", "", "--appendonly", "no", "--dir", "/tmp"], check=True, capture_output=True)
    submission, restarted = _wait_supervised(workers, submission.pk)
    print("restarted after the broker came back:", restarted)
    assert submission.status == "done", submission.error
    assert _numbers(submission) == undisturbed
    _assert_no_duplicates(submission)


def _wait_supervised(workers, pk: int, timeout: float = 300.0) -> tuple[Submission, list[str]]:
    """Wait for the submission as compose's restart policy runs the stack: a worker that exits is started again.
    A Celery worker can exit when its broker goes away with acknowledgements pending (kombu's Redis transport
    raises AttributeError while the consumer reconnects); its unacknowledged messages are delivered again."""
    deadline, restarted = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        submission = Submission.objects.get(pk=pk)
        if submission.status in ("done", "failed"):
            return submission, restarted
        for name, process in list(workers.processes):
            if process.poll() is not None:
                workers.processes = [(n, p) for n, p in workers.processes if n != name]
                workers.start(name)
                restarted.append(name)
        time.sleep(0.5)
    pytest.fail(f"submission #{pk} still {submission.status} after {timeout:.0f} s (restarted: {restarted})")


def _descendants(pid: int) -> set[int]:
    found, stack = set(), [pid]
    while stack:
        children = _children(stack.pop()) - found
        stack.extend(children)
        found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_stopping_make_run_stops_every_child_even_a_busy_one(mini_root: Path, tmp_path: Path, monkeypatch) -> None:
    """`make run` (runstack) on its own embedded set-up; an evaluation worker is busy with a model that never
    answers; SIGTERM to runstack alone ends every process it started, the scorer child included."""
    from celery import Celery

    from evaluation.runner import local_shard_request
    from evalworker.broker import EVAL_QUEUE, TASK_EVALUATE_SHARD, celery_config
    from tests.detector_files import write_hostile_torchscript

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(SPECTRA_VAR_DIR=str(tmp_path / "var"), SPECTRA_SCORER_PROBE_SECONDS="600", PYTHONPATH=f"{ROOT}/platform:{ROOT}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    with socket_port() as port:
        stack = subprocess.Popen([sys.executable, "manage.py", "runstack", "--no-zoo", "--addr", f"127.0.0.1:{port}"],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        model = write_hostile_torchscript(tmp_path / "hang.pt", "loop")
        request = local_shard_request(model, mini_root, input_size=SIZE, limit=8)
        for name in ("SPECTRA_VAR_DIR",):
            monkeypatch.setenv(name, env[name])
        monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
        sender = Celery("sender", fixups=[], set_as_current=False)  # the session's app stays current
        sender.conf.update(celery_config())
        sender.send_task(TASK_EVALUATE_SHARD, args=[request.to_dict()], queue=EVAL_QUEUE)

        def scorer_running() -> bool:
            return any("evaluation.sandbox.child" in _cmdline(pid) for pid in _descendants(stack.pid))

        _wait_until(scorer_running, "the evaluation worker to be busy with the model")
        started = _descendants(stack.pid)
        stack.send_signal(signal.SIGTERM)
        stack.wait(60)
    finally:
        if stack.poll() is None:
            stack.kill()
    left = sorted(pid for pid in started if _alive(pid))
    assert not left, [_cmdline(pid) for pid in left]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class socket_port:
    """A free loopback port (closed again before the server binds it)."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        return self._socket.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._socket.close()
