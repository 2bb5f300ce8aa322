"""`python -m evaluation`: scores a detector file on a local dataset version and prints the site's numbers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluation.datasets.manifest import file_sha256, manifest_sha256
from tests.detector_files import reference_scores, write_onnx
from tests.reference import expected_metrics, json_rows, load_images, split_rows

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evaluation", *args], capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}, timeout=600)


def test_the_json_report_equals_a_direct_computation(mini_root: Path, tmp_path: Path) -> None:
    detector = write_onnx(tmp_path / "d.onnx", seed=6, input_size=64)
    done = _cli(str(detector), str(mini_root), "--input-size", "64", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["provenance"]["manifest_sha256"] == manifest_sha256(mini_root / "manifest.jsonl")
    assert report["provenance"]["artifact_sha256"] == file_sha256(detector)
    rows = split_rows(mini_root)
    expected = expected_metrics(rows, np.asarray(reference_scores(load_images(mini_root, rows, 64), seed=6), float))
    assert {key for key in report["results"] if "/" not in key} == set(expected)  # and the reliability bins
    for subset, metrics in expected.items():
        for name, value in metrics.items():
            assert report["results"][subset]["metrics"][name] == pytest.approx(value, abs=1e-6), (subset, name)
        low, high = report["results"][subset]["intervals"]["acc_mean"]
        assert low <= metrics["acc_mean"] <= high


def test_the_table_names_its_provenance_and_bad_input_is_a_clear_message(mini_root: Path, tmp_path: Path) -> None:
    detector = write_onnx(tmp_path / "d.onnx", seed=6, input_size=64)
    table = _cli(str(detector), str(mini_root), "--input-size", "64", "--resamples", "1000")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["subset", "acc_real", "acc_generated"]
    assert f"artifact {file_sha256(detector)}" in table.stdout

    missing = _cli(str(detector), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "holds no manifest.jsonl" in missing.stderr and "Traceback" not in missing.stderr
    pickled = tmp_path / "model.pt"
    pickled.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    refused = _cli(str(pickled), str(mini_root))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and "error:" in refused.stderr


def test_a_safetensors_file_is_scored_in_the_zoo_architecture_its_metadata_names(mini_root: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from models_zoo.spectral import fit_detector

    rows = split_rows(mini_root)
    train = [r for r in json_rows(mini_root) if r["split"] == "train"][::8]
    model = fit_detector("lr", load_images(mini_root, train, 64).double(), np.array([r["label"] for r in train]))
    weights = tmp_path / "spectral.safetensors"
    save_file(model.state_dict(), str(weights), metadata={"spectra.architecture": "spectral-lr"})
    done = _cli(str(weights), str(mini_root), "--input-size", "64", "--json", "--resamples", "10")
    assert done.returncode == 0, done.stderr
    with torch.no_grad():
        scores = model(load_images(mini_root, rows, 64)).double().numpy()  # logits
    expected = expected_metrics(rows, scores)
    report = json.loads(done.stdout)
    for name, value in expected["mean"].items():
        assert report["results"]["mean"]["metrics"][name] == pytest.approx(value, abs=1e-6), name
    wrong = _cli(str(weights), str(mini_root), "--input-size", "64", "--architecture", "spectral-svm")
    assert wrong.returncode == 2 and "metadata says it holds weights of 'spectral-lr'" in wrong.stderr
