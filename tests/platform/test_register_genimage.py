"""`manage.py register_genimage` on a miniature GenImage tree."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from evaluation.datasets.manifest import manifest_sha256
from spectra.benchmarks.models import Benchmark, Dataset


def _write(path: Path, fmt: str, seed: int, quality: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **({"quality": quality} if quality else {}))
    path.write_bytes(buffer.getvalue())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "GenImage"
    seed = 0
    for base in ("ADM", "BigGAN/imagenet_ai_0419_biggan"):
        for split in ("train", "val"):
            for n in range(2):
                seed += 1
                _write(root / base / split / "ai" / f"{n}.PNG", "PNG", seed)
                _write(root / base / split / "nature" / f"{n}.JPEG", "JPEG", seed + 100, quality=96 - 21 * n)
    (root / "ADM/train/nature/empty.JPEG").write_bytes(b"")
    return root


def test_scans_registers_and_summarises(db, tree: Path) -> None:
    out = io.StringIO()
    call_command("register_genimage", str(tree), "--workers", "2", stdout=out)
    text = out.getvalue()
    dataset = Dataset.objects.get(benchmark__slug="genimage")
    assert Path(dataset.root) == tree.resolve() and dataset.variant == "original" and dataset.is_current
    assert dataset.manifest_sha256 == manifest_sha256(tree / "manifest.jsonl")
    assert "zhu2023genimage" in dataset.citation and "ImageNet" in dataset.licence
    benchmark = Benchmark.objects.get(slug="genimage")
    assert benchmark.name == "GenImage" and not benchmark.is_synthetic
    subsets = {(s.generator, s.split): (s.n_real, s.n_generated) for s in dataset.subsets.all()}
    assert subsets == {(g, s): (2, 2) for g in ("ADM", "BigGAN") for s in ("train", "test")}
    assert "known bad files: 1" in text and dataset.manifest_sha256 in text
    assert "BigGAN" in text and "real       2  generated       2" in text
    assert (tree / "known_bad.jsonl").read_text().count("\n") == 1


def test_running_again_keeps_the_same_version(db, tree: Path) -> None:
    call_command("register_genimage", str(tree), "--workers", "1", stdout=io.StringIO())
    call_command("register_genimage", str(tree), "--workers", "1", stdout=io.StringIO())
    assert Dataset.objects.filter(benchmark__slug="genimage").count() == 1


def test_out_elsewhere_scans_without_registering(db, tree: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("register_genimage", str(tree), "--out", str(tmp_path / "elsewhere"), stdout=out)
    assert (tmp_path / "elsewhere/manifest.jsonl").is_file()
    assert "Not registered" in out.getvalue()
    assert not Dataset.objects.filter(benchmark__slug="genimage").exists()


def test_wrong_folder_explains_the_layout(db, tmp_path: Path) -> None:
    (tmp_path / "holiday/photos").mkdir(parents=True)
    with pytest.raises(CommandError, match=r"<root>/<Generator>/\{train,val\}/\{ai,nature\}/<image>"):
        call_command("register_genimage", str(tmp_path), stdout=io.StringIO())
    assert not Dataset.objects.exists()
