"""Serve the platform with its two real workers beside it: `python manage.py runstack`.

The web server, the platform worker (queue ``platform``, with database settings) and the evaluation
worker (queues ``eval`` then ``eval-zoo``, started with no database settings at all) run as child processes and
stop together. Once the site answers, the zoo is prepared in the background (``zoo_prepare``, at low CPU
priority): its progress is on the home page, and people's uploads are evaluated before its rows.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from evalworker.broker import EVAL_QUEUES
from spectra.core.env import S3_WRITE_VARIABLES

# Variables the evaluation worker must never see: it runs uploaded models. It reads the store with the read-only
# key (SPECTRA_S3_READ_*) and the links in its messages.
SECRET_VARIABLES = ("DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE", "SPECTRA_HIDDEN_ID_KEY",
                    *S3_WRITE_VARIABLES)
SECRET_PREFIXES = ("PG", "AWS_")


def evaluation_worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES and not k.startswith(SECRET_PREFIXES)}
    env["PYTHONPATH"] = str(settings.BASE_DIR)  # the repo root only: `spectra` is not importable there
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def platform_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(settings.BASE_DIR / "platform"), str(settings.BASE_DIR)])}


PLATFORM_PREFETCH = 32


def worker_commands(celery: str, evaluation_workers: int = 1) -> list[tuple[str, list[str], dict[str, str]]]:
    """The platform worker (with the beat that runs the reaper) and ``evaluation_workers`` evaluation workers
    (named eval@, eval2@, … on one host)."""
    common = ["worker", "--loglevel", "INFO", "--concurrency", "1", "--pool", "prefork"]
    beat = ["--beat", "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")]
    # Its tasks take milliseconds: with one message in hand at a time, the filesystem broker's polling would cap
    # it at a few messages a second, below what heartbeats from busy workers add up to.
    prefetch = ["--prefetch-multiplier", str(PLATFORM_PREFETCH)]
    commands = [
        ("platform worker", [celery, "-A", "spectra", *common, *prefetch, *beat, "--queues", "platform",
                             "-n", "platform@%h"], platform_env()),
    ]
    for index in range(1, evaluation_workers + 1):
        suffix = "" if index == 1 else str(index)
        commands.append((f"evaluation worker{suffix and ' ' + suffix}",
                         [celery, "-A", "evalworker.app", *common, "--queues", ",".join(EVAL_QUEUES), "-n", f"eval{suffix}@%h"],
                         evaluation_worker_env()))
    return commands


ZOO_NICENESS = 10  # the zoo's training yields the CPU to the web server and to people's evaluations


def zoo_preparation_command() -> list[str]:
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), "zoo_prepare"]


def wait_until_serving(addr: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> bool:
    """True once something accepts connections at ``addr`` (host:port), False if the server died or timed out."""
    host, _, port = addr.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False


class Command(BaseCommand):
    help = "Run the web server and both workers until interrupted (Ctrl-C stops all three); prepare the zoo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-zoo", action="store_true", help="do not train and submit the zoo's rows")

    def handle(self, *args: Any, addr: str, no_zoo: bool, **options: Any) -> None:
        celery = str(Path(sys.executable).with_name("celery"))
        web = [sys.executable, str(settings.BASE_DIR / "manage.py"), "runserver", addr, "--noreload"]
        # Each child leads a process group of its own, so stopping it reaches its pool processes and their
        # scorer children too, whatever they are busy with.
        children = [(name, subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR, start_new_session=True))
                    for name, cmd, env in worker_commands(celery)]
        children.append(("web server", subprocess.Popen(web, env=platform_env(), cwd=settings.BASE_DIR,
                                                        start_new_session=True)))
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        zoo: subprocess.Popen[bytes] | None = None
        try:
            if wait_until_serving(addr, children[-1][1]):
                self.stdout.write(self.style.SUCCESS(f"Spectra is at http://{addr}/ (Ctrl-C stops it and its workers)"))
                if not no_zoo:
                    zoo = subprocess.Popen(zoo_preparation_command(), env=platform_env(), cwd=settings.BASE_DIR,
                                           preexec_fn=lambda: os.nice(ZOO_NICENESS), start_new_session=True)
            self._supervise(children, zoo)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(children + ([("zoo preparation", zoo)] if zoo else []))

    def _supervise(self, children: list[tuple[str, subprocess.Popen[bytes]]], zoo: subprocess.Popen[bytes] | None) -> None:
        """Until a child stops; the zoo's preparation may end (done or failed: it says so on the site) meanwhile."""
        while all(process.poll() is None for _, process in children):
            if zoo is not None and zoo.poll() is not None:
                outcome = "finished" if zoo.returncode == 0 else f"stopped with exit code {zoo.returncode}"
                self.stdout.write(f"The zoo's preparation {outcome} (its rows are evaluated as workers are free).")
                zoo = None
            time.sleep(0.5)
        stopped = [name for name, process in children if process.poll() is not None]
        self.stderr.write(f"{', '.join(stopped)} stopped; stopping the rest.")

    def _stop(self, children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        stop_process_groups([process for _, process in children])


STOP_GRACE_SECONDS = 10.0


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def stop_process_groups(processes: list[subprocess.Popen[bytes]], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to each child's process group; whatever is left after ``grace`` seconds (a worker finishing a
    shard, its scorer child) gets SIGKILL. A shard cut short this way is sent again by the reaper."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes:
        _signal_group(process, signal.SIGKILL)  # also the group's stragglers once its leader has exited
        process.wait()
