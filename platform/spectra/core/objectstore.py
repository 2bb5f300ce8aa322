"""The S3-compatible object store (SPECTRA_STORAGE=s3): clients, presigned links, and copies of whole folders.

Folder copies are what the dataset commands use to put a version into the store and what the zoo uses to get a
local copy back. Both stream: one folder's listing and a bounded window of files in flight are in memory at a
time, whatever the number of files, and both resume where an interrupted run stopped.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)
Say = Callable[[str], None]
SCHEME = "s3://"
# Larger files go up in 8 MiB parts, each checksummed by the store: at most 32 files in flight, so a copy never
# holds more than 32 x 8 MiB, whatever the files.
SINGLE_PUT_BYTES = 8 << 20
COPY_THREADS = 8
PROGRESS_EVERY_SECONDS = 5.0
PARTIAL_SUFFIX = ".spectra-partial"


def is_remote() -> bool:
    return settings.SPECTRA_STORAGE == "s3"


def bucket() -> str:
    return settings.SPECTRA_S3["bucket"]


def object_url(key: str) -> str:
    return f"{SCHEME}{bucket()}/{key.strip('/')}"


def key_of(url: str) -> str | None:
    """The key of an ``s3://`` URL of this bucket, else None (a local path)."""
    prefix = f"{SCHEME}{bucket()}/" if is_remote() else None
    return url[len(prefix):].strip("/") if prefix and url.startswith(prefix) else None


def _client(endpoint: str) -> Any:
    import boto3  # the web process never needs it in local mode
    from botocore.config import Config

    s3 = settings.SPECTRA_S3
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=s3["access_key"],
                        aws_secret_access_key=s3["secret_key"], region_name=s3["region"],
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                      retries={"mode": "standard", "max_attempts": 5},
                                      max_pool_connections=4 * COPY_THREADS))


@cache
def client() -> Any:
    """A client on the endpoint this machine reaches, with the platform's key (it writes)."""
    return _client(settings.SPECTRA_S3["endpoint_url"])


@cache
def signing_client() -> Any:
    """Signs links for the endpoint that browsers and evaluation workers reach (the signature covers the host)."""
    return _client(settings.SPECTRA_S3["public_endpoint_url"])


def bucket_ensure() -> bool:
    """Make the bucket unless it exists (the stack's first start); True when it was made now."""
    from botocore.exceptions import ClientError

    try:
        client().head_bucket(Bucket=bucket())
        return False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    client().create_bucket(Bucket=bucket())
    return True


def presigned_link(key: str, *, download_name: str = "", seconds: int | None = None) -> str:
    """A GET link to ``key`` that works without credentials for SPECTRA_PRESIGN_SECONDS (Range requests too)."""
    params: dict[str, str] = {"Bucket": bucket(), "Key": key}
    if download_name:
        params["ResponseContentDisposition"] = f'attachment; filename="{download_name}"'
    return signing_client().generate_presigned_url(
        "get_object", Params=params, ExpiresIn=seconds or settings.SPECTRA_PRESIGN_SECONDS)


@dataclass
class CopyReport:
    """What a folder copy did: files copied, files already there (a resumed copy skips them), bytes copied."""

    copied: int = 0
    present: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        seconds = max(time.monotonic() - self.started, 1e-9)
        return (f"{self.copied} files copied ({self.bytes / 1e6:.1f} MB, {self.bytes / 1e6 / seconds:.1f} MB/s), "
                f"{self.present} already in place")


class _Window:
    """A thread pool with at most ``limit`` jobs in flight, so a million files never queue up in memory."""

    def __init__(self, pool: ThreadPoolExecutor, report: CopyReport, say: Say, limit: int) -> None:
        self.pool, self.report, self.say, self.limit = pool, report, say, limit
        self.running: set[Future[tuple[int, int]]] = set()
        self.last_said = time.monotonic()

    def submit(self, job: Callable[..., tuple[int, int]], *args: Any) -> None:
        while len(self.running) >= self.limit:
            self._settle(wait(self.running, return_when=FIRST_COMPLETED).done)
        self.running.add(self.pool.submit(job, *args))

    def drain(self) -> None:
        self._settle(wait(self.running).done)

    def _settle(self, done: set[Future[tuple[int, int]]]) -> None:
        for future in done:
            self.running.discard(future)
            copied, size = future.result()  # an error stops the copy; a re-run resumes it
            self.report.copied += copied
            self.report.present += 1 - copied
            self.report.bytes += size
        if time.monotonic() - self.last_said >= PROGRESS_EVERY_SECONDS:
            self.last_said = time.monotonic()
            self.say(f"    {self.report.line()}")


def upload_tree(root: Path, prefix: str, *, say: Say, last: tuple[str, ...] = ("manifest.jsonl",)) -> CopyReport:
    """Copy every file under ``root`` to ``prefix``/…, the ``last`` names of the top folder after all others (so a
    version is never seen whole before it is). A file whose object is already there with the same bytes is
    skipped (a resumed upload); the store checks each object's SHA-256 as it arrives."""
    report = CopyReport()
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        window = _Window(pool, report, say, 4 * COPY_THREADS)
        for folder, names in _folders(root):
            relative = folder.relative_to(root).as_posix()
            where = prefix.strip("/") + ("" if relative == "." else f"/{relative}")
            remote = _listing(where)
            for name in names:
                if relative == "." and name in last:
                    continue
                window.submit(_put, folder / name, f"{where}/{name}", remote.get(name))
        window.drain()
        for name in last:
            if (root / name).is_file():
                window.submit(_put, root / name, f"{prefix.strip('/')}/{name}", _listing(prefix.strip("/")).get(name))
        window.drain()
    return report


def _folders(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """Each folder under ``root`` with its files' names, in sorted order; partial downloads are left out."""
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        yield Path(folder), sorted(n for n in names if not n.endswith(PARTIAL_SUFFIX))


def _listing(prefix: str) -> dict[str, str]:
    """The objects directly under ``prefix``/: name → ETag (an object's MD5 when it went up in one piece)."""
    found: dict[str, str] = {}
    pages = client().get_paginator("list_objects_v2").paginate(Bucket=bucket(), Prefix=f"{prefix}/", Delimiter="/")
    for page in pages:
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1:]] = item["ETag"].strip('"')
    return found


def _put(path: Path, key: str, remote_etag: str | None) -> tuple[int, int]:
    size = path.stat().st_size
    if size > SINGLE_PUT_BYTES:
        return _put_parts(path, key, size)
    data = path.read_bytes()
    if remote_etag == hashlib.md5(data, usedforsecurity=False).hexdigest():
        return 0, 0
    sha = hashlib.sha256(data)
    client().put_object(Bucket=bucket(), Key=key, Body=data, ChecksumSHA256=base64.b64encode(sha.digest()).decode(),
                        Metadata={"sha256": sha.hexdigest()})
    return 1, size


def _put_parts(path: Path, key: str, size: int) -> tuple[int, int]:
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import ClientError

    sha = file_sha256(path)
    try:
        if client().head_object(Bucket=bucket(), Key=key).get("Metadata", {}).get("sha256") == sha:
            return 0, 0
    except ClientError:
        pass  # not there yet
    client().upload_file(str(path), bucket(), key, ExtraArgs={"Metadata": {"sha256": sha}, "ChecksumAlgorithm": "SHA256"},
                         Config=TransferConfig(multipart_threshold=SINGLE_PUT_BYTES, multipart_chunksize=SINGLE_PUT_BYTES,
                                               max_concurrency=1))  # the window is the parallelism
    return 1, size


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_tree(prefix: str, root: Path, *, say: Say, last: tuple[str, ...] = ("manifest.jsonl",)) -> CopyReport:
    """Copy every object under ``prefix``/ to ``root``, the ``last`` names after all others; a file already there
    with the object's size is kept (a resumed download). Each file is written beside its place and renamed in."""
    report, prefix = CopyReport(), prefix.strip("/")
    deferred: list[tuple[str, int]] = []
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        window = _Window(pool, report, say, 4 * COPY_THREADS)
        for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket(), Prefix=f"{prefix}/"):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) + 1:]
                if relative in last:
                    deferred.append((relative, item["Size"]))
                else:
                    window.submit(_get, item["Key"], root / relative, item["Size"])
        window.drain()
        for relative, size in deferred:
            window.submit(_get, f"{prefix}/{relative}", root / relative, size)
        window.drain()
    return report


def _get(key: str, target: Path, size: int) -> tuple[int, int]:
    if target.is_file() and target.stat().st_size == size:
        return 0, 0
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    client().download_file(bucket(), key, str(partial))
    partial.replace(target)
    return 1, size
