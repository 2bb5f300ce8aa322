"""`manage.py import_faceshq` on a miniature Faces-HQ tree: four sources as four subsets."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from evaluation.datasets.faceshq import SOURCES, split_of
from evaluation.datasets.manifest import read_manifest
from spectra.benchmarks.models import Dataset


@pytest.fixture
def faceshq(tmp_path: Path) -> Path:
    root = tmp_path / "Faces-HQ"
    for k, folder in enumerate(SOURCES):
        for n in range(10):
            path = root / folder / "images" / f"{n:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(10 * k + n).integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, "JPEG", quality=90)
    (root / "100KFake_10K" / "images" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    return root


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
