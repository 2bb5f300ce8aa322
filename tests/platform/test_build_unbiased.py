"""`manage.py build_unbiased` on a miniature GenImage tree: registered as a variant, and the audit sees the fix."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image

from spectra.benchmarks.models import Dataset


def _write(path: Path, fmt: str, seed: int, quality: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, fmt, **({"quality": quality} if quality else {}))


def _register(root: Path, *, class_names: bool) -> Path:
    seed = 0
    for generator in ("ADM", "glide"):
        for split in ("train", "val"):
            for n in range(4):
                seed += 1
                fake = f"{n:03d}_{generator}_{n}.png" if class_names else f"{generator}_{n}.png"
                _write(root / generator / split / "ai" / fake, "PNG", seed)
                quality = 75 if n == 3 else 96  # one natural image per folder has the wrong quality
                real = f"n0144076{n}_{seed}.JPEG" if class_names else f"photo_{seed}.JPEG"
                _write(root / generator / split / "nature" / real, "JPEG", seed + 500, quality)
    call_command("register_genimage", str(root), "--workers", "1", stdout=io.StringIO())
    return root


@pytest.fixture
def genimage(tmp_path: Path) -> Path:
    # File names without ImageNet classes, so the builder balances per generator and split.
    return _register(tmp_path / "GenImage", class_names=False)


def test_the_unbiased_variant_is_registered_and_audited_clean(db, client, genimage: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("build_unbiased", "genimage", "--out", str(tmp_path / "unbiased"), stdout=out)
    original = Dataset.objects.get(benchmark__slug="genimage", variant="original")
    unbiased = Dataset.objects.get(benchmark__slug="genimage", variant="unbiased")
    assert original.audit["verdict"] == "biased"  # natural JPEG vs generated PNG
    assert unbiased.audit["verdict"] == "clean"  # all JPEG at quality 96, same size
    counts = {(s.generator, s.split): (s.n_real, s.n_generated) for s in unbiased.subsets.all()}
    # Each generator draws its reals from both folders (3 + 3 at quality 96) to match its 4 generated images.
    assert counts == {(g, split): (4, 4) for g in ("ADM", "glide") for split in ("train", "test")}
    assert "dropped" in out.getvalue() and "bias audit: clean" in out.getvalue()
    assert unbiased.audit["recipe"]["name"] == "unbiased-genimage v2" and original.audit["recipe"] is None
    page = client.get(reverse("benchmark-detail", args=["genimage"])).content.decode()
    assert "Recipe: unbiased-genimage v2" in page and "from every generator folder" in page
    assert "4:2:0: 8" in page  # the chroma table: the 8 real and 8 generated images of a generator


def test_a_partial_imagenet_class_list_is_a_clear_command_error(db, tmp_path: Path) -> None:
    _register(tmp_path / "GenImage", class_names=True)  # 4 WordNet ids against class indices
    with pytest.raises(CommandError, match="only 4 distinct ids are present"):
        call_command("build_unbiased", "genimage", "--out", str(tmp_path / "unbiased"), stdout=io.StringIO())


def test_an_unknown_benchmark_is_a_clear_command_error(db) -> None:
    with pytest.raises(CommandError, match="There is no benchmark 'genimage'"):
        call_command("build_unbiased", "genimage")
