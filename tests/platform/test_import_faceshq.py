"""`manage.py import_faceshq` on a miniature Faces-HQ tree: four sources as four subsets."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evaluation.datasets.faceshq import SOURCES, split_of
from evaluation.datasets.manifest import read_manifest
from spectra.benchmarks.models import Dataset


def test_every_source_is_a_subset_with_its_label(db, faceshq: Path) -> None:
    out = io.StringIO()
    call_command("import_faceshq", str(faceshq), "--workers", "1", stdout=out, verbosity=0)
    dataset = Dataset.objects.get(benchmark__slug="faces-hq")
    rows = list(read_manifest(faceshq / "manifest.jsonl"))
    assert len(rows) == 40
    for row in rows:
        folder = row.path.split("/")[0]
        assert (row.generator, row.label) == SOURCES[folder]
        assert row.split == split_of(row.path) and row.jpeg_quality == 90
    sources = {s.generator for s in dataset.subsets.all()}
    assert sources == {name for name, _ in SOURCES.values()}
    assert "known-bad files: 1" in out.getvalue()
    assert {row.split for row in rows} == {"train", "test"}


def test_a_wrong_folder_names_the_expected_layout(db, tmp_path: Path) -> None:
    (tmp_path / "celebA-HQ_10K").mkdir()
    with pytest.raises(CommandError, match="lacks Flickr-Faces-HQ_10K.*Expected a Faces-HQ copy"):
        call_command("import_faceshq", str(tmp_path))
