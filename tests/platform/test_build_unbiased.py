"""`manage.py build_unbiased` on a miniature GenImage tree: registered as a variant, and the audit sees the fix."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from spectra.benchmarks.models import Dataset


def _write(path: Path, fmt: str, seed: int, quality: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, fmt, **({"quality": quality} if quality else {}))


@pytest.fixture
def genimage(tmp_path: Path) -> Path:
    root = tmp_path / "GenImage"
    seed = 0
    for generator in ("ADM", "glide"):
        for split in ("train", "val"):
            for n in range(4):
                seed += 1
                _write(root / generator / split / "ai" / f"{n:03d}_{generator}_{n}.png", "PNG", seed)
                quality = 75 if n == 3 else 96  # one natural image per folder has the wrong quality
                _write(root / generator / split / "nature" / f"n0144076{n}_{seed}.JPEG", "JPEG", seed + 500, quality)
    call_command("register_genimage", str(root), "--workers", "1", stdout=io.StringIO())
    return root


def test_the_unbiased_variant_is_registered_and_audited_clean(db, genimage: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("build_unbiased", "genimage", "--out", str(tmp_path / "unbiased"), stdout=out)
    original = Dataset.objects.get(benchmark__slug="genimage", variant="original")
    unbiased = Dataset.objects.get(benchmark__slug="genimage", variant="unbiased")
    assert original.audit["verdict"] == "biased"  # natural JPEG vs generated PNG
    assert unbiased.audit["verdict"] == "clean"  # all JPEG at quality 96, same size
    counts = {(s.generator, s.split): (s.n_real, s.n_generated) for s in unbiased.subsets.all()}
    assert counts == {(g, split): (3, 3) for g in ("ADM", "glide") for split in ("train", "test")}
    assert "dropped" in out.getvalue() and "bias audit: clean" in out.getvalue()


def test_an_unknown_benchmark_is_a_clear_command_error(db) -> None:
    with pytest.raises(CommandError, match="There is no benchmark 'genimage'"):
        call_command("build_unbiased", "genimage")
