"""The build_mini_benchmark command: three registered versions, audited, archived, quick to re-run."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from evaluation.datasets.manifest import centre_crops, read_manifest
from spectra.benchmarks.models import Dataset


@pytest.fixture
def data_root(settings, tmp_path: Path) -> Path:
    settings.SPECTRA_DATA_ROOT = str(tmp_path / "datasets")
    return tmp_path / "datasets"


def test_the_command_registers_three_versions_and_the_audit_tells_them_apart(db, data_root: Path) -> None:
    out = io.StringIO()
    call_command("build_mini_benchmark", "--smoke", stdout=out)
    datasets = {d.variant: d for d in Dataset.objects.filter(benchmark__slug="mini", is_current=True)}
    assert sorted(datasets) == ["biased", "original", "unbiased"]
    assert datasets["biased"].audit["verdict"] == "biased"
    assert datasets["unbiased"].audit["verdict"] == "clean"
    assert datasets["original"].audit["verdict"] == "clean"
    for dataset in datasets.values():
        assert Path(dataset.root).parent == data_root / "mini"
        assert dataset.archives and "SYNTHETIC" in dataset.licence and "SYNTHETIC" in dataset.description
    # The biased version really carries GenImage's shortcuts: real JPEG, generated PNG.
    biased_rows = list(read_manifest(Path(datasets["biased"].root) / "manifest.jsonl"))
    assert {(r.format, r.chroma_subsampling) for r in biased_rows if r.label == 0} == {("JPEG", "4:2:0")}
    assert {(r.format, r.width) for r in biased_rows if r.label == 1} == {("PNG", 64)}
    # ... and a 64 px detector is given them unresampled: the version asks for a 64 px centre crop.
    assert set(centre_crops(datasets["biased"].root).values()) == {64}
    unbiased_rows = list(read_manifest(Path(datasets["unbiased"].root) / "manifest.jsonl"))
    assert {(r.format, r.jpeg_quality, r.chroma_subsampling) for r in unbiased_rows} == {("JPEG", 96, "4:2:0")}
    text = out.getvalue()
    assert "bias audit: biased" in text and "bias audit: clean" in text and "Built the mini benchmark" in text

    again = io.StringIO()
    call_command("build_mini_benchmark", stdout=again)
    assert "up to date" in again.getvalue()
    assert Dataset.objects.filter(benchmark__slug="mini").count() == 3
