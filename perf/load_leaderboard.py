"""Load: latency (p50/p95/p99) and errors of the leaderboard pages and the read API, 32 clients on loopback.

Makes its own PostgreSQL database (dropped and made again on every run), migrates it and fills it with a realistic
population (perf/population.py: 10,000 Result rows across benchmarks, dataset versions, subsets and conditions,
plus the shortcut baselines), serves it with gunicorn (spectra.wsgi, DEBUG off, gthread workers) on a free
loopback port, then drives it with a small asyncio HTTP/1.1 client: first one connection (each page's own service
time), then ``--clients`` keep-alive connections sharing ``--requests`` requests round robin over the URLs. An
error is a non-2xx answer or a failed connection. Goal: p95 < 100 ms and 0 errors, per URL and overall.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import ROOT, report

GOAL_P95_MS = 100.0
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/spectra_load"


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    cookie: str = ""  # a session cookie, for the pages that need a login

    def request(self, host: str) -> bytes:
        cookie = f"Cookie: {self.cookie}\r\n" if self.cookie else ""
        return f"GET {self.path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n{cookie}\r\n".encode("ascii")


@dataclass
class Tally:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    def add(self, name: str, seconds: float, error: str) -> None:
        self.seconds.setdefault(name, []).append(seconds)
        self.errors[name] = self.errors.get(name, 0) + bool(error)
        self.first_error = self.first_error or error


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                        help=f"a PostgreSQL database to drop and make again (default {DEFAULT_DATABASE_URL})")
    parser.add_argument("--results", type=_positive, default=10_000, help="Result rows in the database (default 10000)")
    parser.add_argument("--requests", type=_positive, default=3000, help="requests of the loaded pass (default 3000)")
    parser.add_argument("--clients", type=_positive, default=32, help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--workers", type=_positive, default=4, help="gunicorn worker processes (default 4)")
    parser.add_argument("--threads", type=_positive, default=2, help="threads per gunicorn worker (default 2)")
    parser.add_argument("--progress-per-second", type=float, default=2.0,
                        help="progress messages a second during the loaded pass (default 2): each retires the "
                             "cached submission pages")
    parser.add_argument("--results-per-minute", type=float, default=6.0,
                        help="finished shards a minute during the loaded pass (default 6): each retires every "
                             "cached page")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (to profile it)")
    return parser.parse_args()


# --- the database --------------------------------------------------------------------------------------------


def database_recreate(url: str, *, drop_only: bool = False) -> None:
    """Drop the URL's database (closing its sessions) and, unless ``drop_only``, create it empty."""
    import psycopg
    from psycopg import sql

    from spectra.core.env import database_from_url

    settings = database_from_url(url)
    if not settings["ENGINE"].endswith("postgresql"):
        raise SystemExit(f"--database-url must be a PostgreSQL URL, not {url!r}")
    try:
        server = psycopg.connect(host=settings["HOST"] or None, port=settings["PORT"] or None,
                                 user=settings["USER"] or None, password=settings["PASSWORD"] or None,
                                 dbname="postgres", autocommit=True)
    except psycopg.OperationalError as error:
        raise SystemExit(f"Cannot reach PostgreSQL at {url}: {error}".strip()) from None
    with server:
        name = sql.Identifier(settings["NAME"])
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if not drop_only:
            server.execute(sql.SQL("CREATE DATABASE {}").format(name))


def populated(args: argparse.Namespace, folder: Path) -> tuple[list[Target], str]:
    """Migrate the new database, fill it, and return the URLs to load and a line describing the population."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from population import LOAD_PLAN, populate

    call_command("migrate", verbosity=0)
    population = populate(results=args.results, plan=LOAD_PLAN, folder=folder)
    targets = _targets(population)
    connections.close_all()
    done = population.statuses.get("done", 0)
    return targets, (f"{population.results} Result rows + {population.baseline_results} baseline rows, "
                     f"{sum(population.statuses.values())} submissions ({done} finished), {population.datasets} "
                     f"dataset versions of {len(population.benchmarks)} benchmarks; filled in "
                     f"{sum(population.seconds.values()):.1f} s")


def _targets(population) -> list[Target]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse
    from population import population_urls

    client = Client(HTTP_HOST="127.0.0.1")  # a real session row in the database, as a log-in makes
    client.force_login(get_user_model().objects.get(username=population.owner))
    client.get(reverse("my-submissions"))  # sets the CSRF cookie of the page's log-out form, as a browser keeps it
    cookie = "; ".join(f"{name}={client.cookies[name].value}"
                       for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME))
    return [Target(url.name, url.path, cookie if url.login else "") for url in population_urls(population)]


# --- the server ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen
    log: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {self.process.returncode}:\n"
                             f"{self.log.read_text(errors='replace')[-3000:]}")


@contextmanager
def gunicorn(env: dict[str, str], args: argparse.Namespace, log: Path) -> Iterator[Server]:
    """gunicorn spectra.wsgi on a loopback socket bound here (so no other process can take the port)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    command = [str(Path(sys.executable).with_name("gunicorn")), "spectra.wsgi", "--bind", f"fd://{listener.fileno()}",
               "--workers", str(args.workers), "--threads", str(args.threads), "--log-level", "warning"]
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                  pass_fds=[listener.fileno()])
    try:
        yield Server(listener.getsockname()[1], server, log)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        listener.close()
        if server.returncode not in (0, -15):
            print(f"gunicorn exited with {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}")


# --- the client ------------------------------------------------------------------------------------------------


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return await reader.read()  # the server closes the connection at the end
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size + 2))
    await reader.readuntil(b"\r\n")  # the empty trailer
    return b"".join(chunks)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """One HTTP/1.1 request on an open connection: (status, whether the connection stays open)."""
    writer.write(request)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    await _body(reader, headers)
    return status, headers.get("connection", "").lower() != "close"


async def _client(port: int, targets: list[Target], turns: Iterator[int], tally: Tally) -> None:
    """One keep-alive connection taking the next request until none is left; a broken one is reopened."""
    host = f"127.0.0.1:{port}"
    connection = None
    for turn in turns:
        target = targets[turn % len(targets)]
        started = time.perf_counter()
        error, keep = "", False
        try:
            connection = connection or await asyncio.open_connection("127.0.0.1", port)
            status, keep = await exchange(*connection, target.request(host))
            error = "" if 200 <= status < 300 else f"{target.path}: HTTP {status}"
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as failure:
            error = f"{target.path}: {type(failure).__name__}: {failure}"
        tally.add(target.name, time.perf_counter() - started, error)
        if not keep and connection:
            connection[1].close()
            connection = None
    if connection:
        connection[1].close()


async def drive(port: int, targets: list[Target], requests: int, clients: int) -> tuple[Tally, float]:
    """``requests`` requests over ``clients`` connections; the tally and the wall-clock seconds."""
    tally, turns = Tally(), iter(range(requests))  # one shared iterator: each request is taken once
    tally.seconds = {target.name: [] for target in targets[:requests]}  # the table in the URLs' order
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, targets, turns, tally) for _ in range(clients)))
    return tally, time.perf_counter() - started


async def wait_until_served(server: Server, target: Target, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        tally, _ = await drive(server.port, [target], 1, 1)
        if not tally.errors[target.name]:
            return
        server.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"The server did not answer in {seconds:.0f} s: {tally.first_error}")
        await asyncio.sleep(0.2)


# --- the figures -----------------------------------------------------------------------------------------------


def print_tally(title: str, tally: Tally, seconds: float) -> float:
    """A table of p50/p95/p99 in ms and errors per URL and overall, against the goal; returns the overall p95."""
    everything = [s for values in tally.seconds.values() for s in values]
    print(f"\n{title}: {len(everything)} requests in {seconds:.1f} s ({len(everything) / seconds:.0f}/s); load "
          f"average {os.getloadavg()[0]:.2f} after it, this run's server and client included")
    print(f"{'URL':<32} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}  goal")
    overall = 0.0
    for name, values in [*tally.seconds.items(), ("overall", everything)]:
        p50, p95, p99 = np.percentile(np.array(values) * 1000, [50, 95, 99])
        errors = sum(tally.errors.values()) if name == "overall" else tally.errors[name]
        met = "met" if p95 < GOAL_P95_MS and not errors else "missed"
        print(f"{name:<32} {len(values):>8} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {errors:>6}  {met}")
        overall = p95
    if tally.first_error:
        print(f"first error: {tally.first_error}")
    return overall


async def measure(server: Server, targets: list[Target], args: argparse.Namespace) -> tuple[float, int]:
    await wait_until_served(server, targets[-1])
    port = server.port
    await drive(port, targets, len(targets) * args.workers * args.threads, args.workers * args.threads)  # warm-up
    cold, seconds = await _cold_pass(port, targets, rounds=10)
    print_tally("1 client, every page made afresh (a write before each round retires the page cache)", cold, seconds)
    single, seconds = await drive(port, targets, 10 * len(targets), 1)
    print_tally("1 client, pages from the cache", single, seconds)
    writer = asyncio.create_task(_writes(args.progress_per_second, args.results_per_minute))
    loaded, seconds = await drive(port, targets, args.requests, args.clients)
    writer.cancel()
    p95 = print_tally(f"{args.clients} clients, while {args.progress_per_second:g} progress messages a second and "
                      f"{args.results_per_minute:g} finished shards a minute retire cached pages", loaded, seconds)
    return p95, sum(loaded.errors.values())


async def _cold_pass(port: int, targets: list[Target], rounds: int) -> tuple[Tally, float]:
    """Each URL once per round, the page cache retired before every round: each page's own service time."""
    from spectra.core import pagecache

    total, seconds = Tally(), 0.0
    total.seconds = {target.name: [] for target in targets}
    for _ in range(rounds):
        await asyncio.to_thread(pagecache.bump, *pagecache.EVERY_SCOPE)  # a database call: not on the event loop
        tally, taken = await drive(port, targets, len(targets), 1)
        seconds += taken
        for name, values in tally.seconds.items():
            total.seconds[name] += values
            total.errors[name] = total.errors.get(name, 0) + tally.errors.get(name, 0)
        total.first_error = total.first_error or tally.first_error
    return total, seconds


async def _writes(progress_per_second: float, results_per_minute: float) -> None:
    """What running evaluations do to the page cache: each progress message retires the submission pages, and
    each finished shard every cached page."""
    from spectra.core import pagecache

    async def every(seconds: float, scopes: tuple) -> None:
        while True:
            await asyncio.sleep(seconds)
            await asyncio.to_thread(pagecache.bump, *scopes)  # a database call: not on the event loop

    tasks = [every(1 / progress_per_second, (pagecache.Scope.PROGRESS,))] if progress_per_second > 0 else []
    tasks += [every(60 / results_per_minute, pagecache.EVERY_SCOPE)] if results_per_minute > 0 else []
    await asyncio.gather(*tasks)


def main() -> None:
    args = parse_args()
    print(f"Load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    with tempfile.TemporaryDirectory(prefix="spectra-load-") as folder:
        env = {**os.environ, "DATABASE_URL": args.database_url, "DJANGO_DEBUG": "0", "SPECTRA_VAR_DIR": folder,
               "DJANGO_SETTINGS_MODULE": "spectra.settings", "SPECTRA_LOG_LEVEL": "WARNING",
               "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)])}
        os.environ.update(env)
        sys.path.insert(0, str(ROOT / "platform"))
        database_recreate(args.database_url)
        try:
            targets, described = populated(args, Path(folder) / "datasets")
            print(f"Population: {described}. Server: gunicorn, {args.workers} workers x {args.threads} threads, "
                  f"on {os.cpu_count()} cores.")
            with gunicorn(env, args, Path(folder) / "gunicorn.log") as server:
                p95, errors = asyncio.run(measure(server, targets, args))
        finally:
            if not args.keep:
                database_recreate(args.database_url, drop_only=True)
    report(f"overall p95 / {GOAL_P95_MS:.0f} ms at {args.clients} clients", p95 / GOAL_P95_MS,
           "< 1 with 0 errors", f"{errors} errors")


if __name__ == "__main__":
    main()
