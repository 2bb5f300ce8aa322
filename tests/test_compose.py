"""docker-compose.yml is valid for Debian's docker-compose, and the evaluation worker never gets the database."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("SPECTRA_REQUIRE_TOOLS"):
            pytest.fail("docker-compose is missing and SPECTRA_REQUIRE_TOOLS is set")
        pytest.skip("docker-compose is missing: `apt-get install docker-compose` enables this test")
    return binary


def _config(compose: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    return subprocess.run([compose, "config"], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True)


def test_compose_file_is_valid(compose: str) -> None:
    result = subprocess.run([compose, "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "DJANGO_SECRET_KEY": "test-only"})
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_run_without_a_secret_key(compose: str) -> None:
    result = _config(compose)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_evaluation_worker_has_a_gpu_and_no_database(compose: str) -> None:
    services = yaml.safe_load(_config(compose, DJANGO_SECRET_KEY="test-only").stdout)["services"]
    assert {"web", "platform-worker", "eval-worker", "db", "redis"} <= set(services)
    worker = services["eval-worker"]
    assert not {"DATABASE_URL", "DJANGO_SECRET_KEY"} & set(worker["environment"])
    command = worker["command"] if isinstance(worker["command"], str) else " ".join(worker["command"])
    assert "--queues eval" in command and "--concurrency 1" in command
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
