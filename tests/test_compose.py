"""docker-compose.yml is valid for Debian's docker-compose, runs the platform in production mode with its secrets
required, and the evaluation worker never gets the database or a secret."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from spectra.core.management.commands.runstack import SECRET_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {name: f"test-only-{name.lower()}" for name in settings.PRODUCTION_REQUIRED}


@pytest.fixture
def compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("SPECTRA_REQUIRE_TOOLS"):
            pytest.fail("docker-compose is missing and SPECTRA_REQUIRE_TOOLS is set")
        pytest.skip("docker-compose is missing: `apt-get install docker-compose` enables this test")
    return binary


def _config(compose: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run([compose, "-f", "docker-compose.yml", "config", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True)


def test_compose_file_is_valid(compose: str) -> None:
    result = _config(compose, "-q", **SECRETS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_run_without_each_secret(compose: str, missing: str) -> None:
    result = _config(compose, **{k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0 and f"set {missing}" in result.stderr


def test_the_platform_runs_in_production_mode_with_the_secrets_from_the_environment(compose: str) -> None:
    services = yaml.safe_load(_config(compose, **SECRETS).stdout)["services"]
    for name in ("web", "platform-worker"):
        environment = services[name]["environment"]
        assert environment["SPECTRA_ENV"] == "production" and environment["DJANGO_DEBUG"] == "0"
        assert {k: environment[k] for k in SECRETS} == SECRETS


def test_evaluation_worker_has_a_gpu_and_no_database(compose: str) -> None:
    services = yaml.safe_load(_config(compose, **SECRETS).stdout)["services"]
    assert {"web", "platform-worker", "eval-worker", "db", "redis"} <= set(services)
    worker = services["eval-worker"]
    assert not set(SECRET_VARIABLES) & set(worker["environment"])
    command = worker["command"] if isinstance(worker["command"], str) else " ".join(worker["command"])
    assert "--queues eval" in command and "--concurrency 1" in command
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
