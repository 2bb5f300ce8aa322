"""The perf/ scripts run and print their ratio (no timing is asserted: the numbers are for people)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["pipeline_vs_forward.py", "pipeline_vs_naive.py", "jpeg_sweep.py", "two_workers.py", "store_throughput.py"]


def test_the_spectral_script_prints_its_ratios() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "perf" / "spectral_features.py"), "--images", "8", "--size", "64"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ratio") == 3


def test_the_landscape_script_prints_its_ratios() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "perf" / "landscape_grid.py"), "--images", "4", "--size", "32",
                           "--grid", "3"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ratio") == 4


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_prints_a_ratio(script: str, mini_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "perf" / script), "--dataset", str(mini_root), "--images", "48", "--size", "64"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ratio" in done.stdout and "goal" in done.stdout


def _load_database_url() -> str:
    """The suite's PostgreSQL server (CI's DATABASE_URL, else the load test's default) and a database of this run's
    own, which the script makes and drops."""
    suite = os.environ.get("DATABASE_URL", "")
    server = suite.rsplit("/", 1)[0] if suite.startswith(("postgres://", "postgresql://")) else "postgres://postgres@127.0.0.1:5432"
    return f"{server}/spectra_load_test_{os.getpid()}"


def test_the_load_script_prints_its_figures_and_no_errors() -> None:
    import psycopg

    url = _load_database_url()
    try:
        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=10).close()
    except psycopg.OperationalError as error:
        pytest.skip(f"the load test needs PostgreSQL ({error})".strip())
    done = subprocess.run(
        [sys.executable, str(ROOT / "perf" / "load_leaderboard.py"), "--database-url", url, "--results", "300",
         "--requests", "90", "--clients", "4", "--workers", "2", "--threads", "2"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Population: 300 Result rows" in done.stdout
    assert "ratio" in done.stdout and "goal" in done.stdout
    for url_name in ("leaderboard page mini-load", "API leaderboard genimage-load", "my submissions page"):
        assert url_name in done.stdout
    assert done.stdout.rstrip().endswith("— 0 errors"), done.stdout[-3000:]  # every answer a 2xx, with a login too
