"""Shared fixtures: the mini benchmark (built once per session), users, and real worker processes."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Short leases for the real workers of the suite (the test process, its workers and their reaper all read these):
# a stopped worker's shard is noticed in seconds, while a busy shard's heartbeat (every 2 s) keeps its lease.
# A probe budget of 20 s lets a hanging model fail quickly while a good one's first batch has time to spare.
LEASES = {"SPECTRA_HEARTBEAT_SECONDS": "2", "SPECTRA_LEASE_SECONDS": "12", "SPECTRA_REAPER_SECONDS": "1",
          "SPECTRA_SCORER_PROBE_SECONDS": "20"}
# The platform worker's media folder: a shard it sends again names its artifact there, so the tests that make it
# do so keep their uploads in it too (the others use a folder per test).
WORKER_MEDIA_ROOT = ROOT / "var" / "test-worker-media"
for _name, _value in LEASES.items():
    os.environ.setdefault(_name, _value)


def _builder_fingerprint() -> str:
    """A hash of every source file that shapes the mini benchmark's bytes: a change to any of them rebuilds it."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "evaluation").rglob("*.py")):
        if "datasets" in path.parts or path.name == "perturbations.py":
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _cached_build(name: str, build: Callable[[Path], None]) -> Path:
    """Build once into ``<SPECTRA_VAR_DIR>/test-cache/<name>-<fingerprint>`` and reuse it in later sessions.

    Both CI passes (and a developer's reruns) share it, so the mini benchmark is built once per CI run; the
    fingerprint keys it to the builder's code, and the build lands under its final name only when complete.
    """
    var_dir = Path(os.environ.get("SPECTRA_VAR_DIR", ROOT / "var" / "test"))
    target = var_dir / "test-cache" / f"{name}-{_builder_fingerprint()}"
    if not (target / ".complete").is_file():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        build(partial)
        (partial / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


@pytest.fixture(autouse=True)
def _no_cached_pages() -> None:
    """Every test starts with an empty page cache: the database rolls back between tests, the cache would not."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def mini_root() -> Path:
    """The real mini benchmark, built by the same code as the command, once per builder version (see above)."""
    from evaluation.datasets.mini import build_mini_benchmark

    cached = os.environ.get("SPECTRA_TEST_MINI_ROOT")  # lets a developer point at a build of their own
    if cached and Path(cached, "manifest.jsonl").is_file():
        return Path(cached)
    return _cached_build("mini", lambda folder: build_mini_benchmark(folder / "dataset", seed=0)) / "dataset"


@pytest.fixture(scope="session")
def mini_variant_roots(mini_root: Path) -> dict[str, Path]:
    """The biased and unbiased versions of the session's mini build, made by the command's own builder."""
    from evaluation.datasets.mini.variants import build_mini_variants

    def build(folder: Path) -> None:
        build_mini_variants(mini_root, folder / "biased", folder / "unbiased", seed=0)

    from evaluation.datasets.manifest import manifest_sha256

    base = _cached_build(f"mini-variants-{manifest_sha256(mini_root / 'manifest.jsonl')[:12]}", build)
    return {"biased": base / "biased", "unbiased": base / "unbiased"}


@pytest.fixture
def mini_dataset(db, mini_root: Path):
    from spectra.benchmarks.services import benchmark_upsert, dataset_register

    benchmark = benchmark_upsert(slug="mini", name="Mini (synthetic)", description="test", is_synthetic=True)
    return dataset_register(benchmark=benchmark, root=mini_root)


@pytest.fixture
def alice(db, django_user_model):
    return django_user_model.objects.create_user(username="alice", password="correct horse battery")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def _test_database_url() -> str:
    from django.db import connection

    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    credentials = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    return f"postgres://{credentials}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"


def _purge_queues() -> None:
    from evalworker.broker import EVAL_QUEUES, PLATFORM_QUEUE
    from spectra.celery import app

    with app.connection_for_write() as connection:
        for queue in (*EVAL_QUEUES, PLATFORM_QUEUE):
            try:
                connection.default_channel.queue_purge(queue)
            except Exception:  # a queue that was never declared has nothing to purge
                pass


class Workers:
    """The real worker processes; ``wait_for`` fails fast, with the log's tail, if one of them died. Each worker
    leads a process group of its own, so a test can kill one with everything it started, and start it again."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        if command is not None:
            self.commands[name] = (command, env or {})
        command, env = self.commands[name]
        log = (self.logs / f"{name.replace(' ', '-')}.log").open("ab")
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes = [(n, p) for n, p in self.processes if n != name] + [(name, process)]

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return dict(self.processes)[name]

    def kill(self, *names: str) -> None:
        """SIGKILL each worker's whole process group (its pool processes and their scorer children too), with
        no warning: nothing of theirs gets to run, as when a machine is lost."""
        for name in names:
            os.killpg(self.process(name).pid, signal.SIGKILL)
            self.process(name).wait()
        self.processes = [(n, p) for n, p in self.processes if n not in names]

    def evaluation_workers(self) -> list[str]:
        return [name for name in self.commands if name.startswith("evaluation")]

    def assert_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                log = (self.logs / f"{name.replace(' ', '-')}.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"the {name} exited with {process.returncode}:\n{log}")

    def wait_for(self, pk: int, timeout: float = 300.0):
        """Poll the database until the submission finishes."""
        from spectra.submissions.models import Submission

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            submission = Submission.objects.get(pk=pk)
            if submission.status in ("done", "failed"):
                return submission
            self.assert_alive()
            time.sleep(0.5)
        pytest.fail(f"submission #{pk} still {submission.status} after {timeout:.0f} s; see {self.logs}")


@pytest.fixture(scope="session")
def workers(django_db_setup, django_db_blocker) -> Iterator[Workers]:
    """Real Celery workers as child processes: platform (test database, with the reaper's beat) and two
    evaluation workers (no database)."""
    from spectra.core.management.commands.runstack import (
        evaluation_worker_env,
        platform_env,
        stop_process_groups,
        worker_commands,
    )

    with django_db_blocker.unblock():
        database_url = _test_database_url()
    _purge_queues()
    pair = Workers(ROOT / "var" / "test-worker-logs")  # kept after the run: the first place to look
    pair.logs.mkdir(parents=True, exist_ok=True)
    celery = str(Path(sys.executable).with_name("celery"))
    for name, command, env in worker_commands(celery, evaluation_workers=2):  # two share each submission
        if name == "platform worker":
            # No persistent connections, so the test database can be dropped as soon as the worker stops.
            env = {**platform_env(), "DATABASE_URL": database_url, "DATABASE_CONN_MAX_AGE": "0",
                   "SPECTRA_MEDIA_ROOT": str(WORKER_MEDIA_ROOT)}
        else:
            assert env == evaluation_worker_env() and "DATABASE_URL" not in env
        pair.start(name, command, env)
    yield pair
    stop_process_groups([process for _, process in pair.processes], grace=20)
