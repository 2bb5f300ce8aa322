"""docker-compose.yml is valid for Debian's docker-compose, runs the platform in production mode with its secrets
required, keeps files in the object store, and the evaluation worker never gets the database, a secret, a write key
or a shared volume; docker-compose.gpu.yml runs that worker alone on another machine."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from evaluation.storage import READ_KEY_VARIABLES
from spectra.core.env import S3_WRITE_VARIABLES
from spectra.core.management.commands.runstack import SECRET_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
STACK, GPU = "docker-compose.yml", "docker-compose.gpu.yml"
REQUIRED = {
    STACK: (*settings.PRODUCTION_REQUIRED, "REDIS_PASSWORD", "SPECTRA_S3_PUBLIC_ENDPOINT_URL", *S3_WRITE_VARIABLES,
            *READ_KEY_VARIABLES),
    GPU: ("CELERY_BROKER_URL", "SPECTRA_S3_ENDPOINT_URL", *READ_KEY_VARIABLES),
}


def _values(file: str) -> dict[str, str]:
    return {name: f"test-only-{name.lower()}" for name in REQUIRED[file]}


@pytest.fixture
def compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("SPECTRA_REQUIRE_TOOLS"):
            pytest.fail("docker-compose is missing and SPECTRA_REQUIRE_TOOLS is set")
        pytest.skip("docker-compose is missing: `apt-get install docker-compose` enables this test")
    return binary


def _config(compose: str, file: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED[STACK] + REQUIRED[GPU]}
    return subprocess.run([compose, "-f", file, "config", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True)


def _services(compose: str, file: str) -> dict[str, dict]:
    return yaml.safe_load(_config(compose, file, **_values(file)).stdout)["services"]


@pytest.mark.parametrize("file", [STACK, GPU])
def test_compose_file_is_valid(compose: str, file: str) -> None:
    result = _config(compose, file, "-q", **_values(file))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("file", "missing"), [(f, name) for f in (STACK, GPU) for name in REQUIRED[f]])
def test_compose_refuses_to_run_without_each_secret(compose: str, file: str, missing: str) -> None:
    result = _config(compose, file, **{k: v for k, v in _values(file).items() if k != missing})
    assert result.returncode != 0 and f"set {missing}" in result.stderr


def test_the_platform_runs_in_production_mode_on_the_object_store(compose: str) -> None:
    services = _services(compose, STACK)
    for name in ("web", "platform-worker"):
        environment = services[name]["environment"]
        assert environment["SPECTRA_ENV"] == "production" and environment["DJANGO_DEBUG"] == "0"
        assert environment["SPECTRA_STORAGE"] == "s3" and environment["SPECTRA_S3_ENDPOINT_URL"] == "http://store:8333"
        wanted = {k: v for k, v in _values(STACK).items() if k not in {*READ_KEY_VARIABLES, "REDIS_PASSWORD"}}
        assert {k: environment[k] for k in wanted} == wanted
        assert _values(STACK)["REDIS_PASSWORD"] in environment["CELERY_BROKER_URL"]
    assert "store_init" in services["web"]["command"]  # the bucket is made on first start


def test_the_store_has_its_volume_and_both_identities(compose: str) -> None:
    store = _services(compose, STACK)["store"]
    assert "storedata:/data:rw" in store["volumes"]
    assert store["entrypoint"][-1] == "/deploy/seaweedfs-start.sh"
    assert set(_values(STACK)) - set(store["environment"]) == {*settings.PRODUCTION_REQUIRED, "REDIS_PASSWORD",
                                                              "SPECTRA_S3_PUBLIC_ENDPOINT_URL"}


@pytest.mark.parametrize("file", [STACK, GPU])
def test_evaluation_worker_has_a_gpu_the_read_key_and_nothing_else(compose: str, file: str) -> None:
    services = _services(compose, file)
    assert {"web", "platform-worker", "eval-worker", "db", "redis", "store"} <= set(services) if file == STACK \
        else set(services) == {"eval-worker"}
    worker = services["eval-worker"]
    environment = worker["environment"]
    assert not set(SECRET_VARIABLES) & set(environment)
    assert {k: environment[k] for k in READ_KEY_VARIABLES} == {k: _values(file)[k] for k in READ_KEY_VARIABLES}
    assert "volumes" not in worker  # no shared disk: artifacts, manifests and images come from the store
    command = worker["command"] if isinstance(worker["command"], str) else " ".join(worker["command"])
    assert "--queues eval" in command and "--concurrency 1" in command
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
