"""The perf/ scripts run and print their ratio (no timing is asserted: the numbers are for people)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["pipeline_vs_forward.py", "pipeline_vs_naive.py", "jpeg_sweep.py", "two_workers.py"]


def test_the_spectral_script_prints_its_ratios() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "perf" / "spectral_features.py"), "--images", "8", "--size", "64"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ratio") == 3


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_prints_a_ratio(script: str, mini_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "perf" / script), "--dataset", str(mini_root), "--images", "48", "--size", "64"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ratio" in done.stdout and "goal" in done.stdout
