"""The SYNTHETIC mini benchmark: balanced, split by photo, valid files, deterministic, real artefacts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.datasets.manifest import ManifestRow, file_sha256, read_manifest, subset_counts
from evaluation.datasets.mini import (
    MINI_DESCRIPTION,
    MINI_GENERATORS,
    MINI_LICENCE,
    MiniBuildSummary,
    build_mini_benchmark,
)
from evaluation.datasets.mini.photos import MIN_REAL_PER_SPLIT, photo_of
from evaluation.errors import DatasetError

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def full_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MiniBuildSummary, list[ManifestRow]]:
    out = tmp_path_factory.mktemp("mini_full")
    summary = build_mini_benchmark(out, seed=0)
    return out, summary, list(read_manifest(out / "manifest.jsonl"))


def test_summary_matches_the_manifest(full_build: tuple[Path, MiniBuildSummary, list[ManifestRow]]) -> None:
    out, summary, rows = full_build
    assert summary.manifest_sha256 == file_sha256(out / "manifest.jsonl")
    assert summary.manifest_path == out / "manifest.jsonl"
    assert sum(summary.counts.values()) == len(rows)
    for (generator, split), per_label in subset_counts(rows).items():
        for label, count in per_label.items():
            assert summary.counts.get((generator, split, label), 0) == count


def test_every_split_is_balanced_per_generator(full_build: tuple[Path, MiniBuildSummary, list[ManifestRow]]) -> None:
    _, _, rows = full_build
    counts = subset_counts(rows)
    assert set(MINI_GENERATORS) >= {"vae", "upsample"}
    assert set(counts) == {(g, s) for g in (None, *MINI_GENERATORS) for s in SPLITS}
    for split in SPLITS:
        real = counts[(None, split)]
        assert real[1] == 0 and real[0] >= MIN_REAL_PER_SPLIT
        for generator in MINI_GENERATORS:
            assert counts[(generator, split)] == {0: 0, 1: real[0]}
    for row in rows:
        assert (row.label == 0) == (row.generator is None)
        assert row.path.startswith(f"images/{row.split}/{row.generator or 'real'}/")


def test_splits_are_disjoint_by_source_photo(full_build: tuple[Path, MiniBuildSummary, list[ManifestRow]]) -> None:
    _, _, rows = full_build
    photos: dict[str, set[str]] = {split: set() for split in SPLITS}
    for row in rows:
        if row.generator is None:
            photos[row.split].add(photo_of(Path(row.path).stem))
    for a in SPLITS:
        for b in SPLITS:
            assert a == b or not photos[a] & photos[b], (a, b, photos[a] & photos[b])
    assert len(photos["test"]) >= 2
    # The upsample family is made from the real tiles of its own split, tile for tile.
    for split in SPLITS:
        real = sorted(Path(r.path).name for r in rows if r.split == split and r.generator is None)
        upsampled = sorted(Path(r.path).name for r in rows if r.split == split and r.generator == "upsample")
        assert real == upsampled


def test_every_image_is_a_64px_rgb_png_matching_its_hash(
    full_build: tuple[Path, MiniBuildSummary, list[ManifestRow]],
) -> None:
    out, _, rows = full_build
    for row in rows:
        assert (row.width, row.height, row.format, row.jpeg_quality) == (64, 64, "PNG", None)
        with Image.open(out / row.path) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 64))
        assert file_sha256(out / row.path) == row.sha256
    on_disk = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*") if p.is_file())
    assert on_disk == sorted(row.path for row in rows)
    assert len({row.sha256 for row in rows}) == len(rows)  # no image appears twice


def _mean_spectrum(out: Path, rows: list[ManifestRow], split: str, generator: str | None) -> np.ndarray:
    paths = [out / r.path for r in rows if r.split == split and r.generator == generator]
    gray = np.stack([np.asarray(Image.open(p), dtype=np.float64).mean(axis=2) for p in paths])
    return np.abs(np.fft.fft2(gray)).mean(axis=0)


def test_upsample_family_has_periodic_spectral_peaks(
    full_build: tuple[Path, MiniBuildSummary, list[ManifestRow]],
) -> None:
    out, _, rows = full_build
    real = _mean_spectrum(out, rows, "test", None)
    upsampled = _mean_spectrum(out, rows, "test", "upsample")
    # 4x upsampling of a 64 px tile repeats every 4 px: peaks at multiples of 16 cycles per tile.
    peaks = [(16 * k, 16 * m) for k in range(4) for m in range(4) if (k, m) != (0, 0)]
    ratio = sum(upsampled[p] for p in peaks) / sum(real[p] for p in peaks)
    assert ratio > 2.5, ratio
    assert upsampled[16, 0] > 1.5 * real[16, 0]
    # Elsewhere the family is a blurred copy of the real tiles, so it has *less* energy there.
    assert upsampled[8, 8] < real[8, 8]


def test_same_seed_gives_the_same_manifest_and_another_seed_does_not(tmp_path: Path) -> None:
    first = build_mini_benchmark(tmp_path / "a", seed=0, vae_steps=5, gan_steps=2)
    second = build_mini_benchmark(tmp_path / "b", seed=0, vae_steps=5, gan_steps=2)
    other = build_mini_benchmark(tmp_path / "c", seed=1, vae_steps=5, gan_steps=2)
    assert first.manifest_sha256 == second.manifest_sha256
    assert (tmp_path / "a" / "manifest.jsonl").read_bytes() == (tmp_path / "b" / "manifest.jsonl").read_bytes()
    assert other.manifest_sha256 != first.manifest_sha256
    assert first.counts == other.counts


def test_an_existing_build_is_not_silently_overwritten(
    full_build: tuple[Path, MiniBuildSummary, list[ManifestRow]],
) -> None:
    out, _, _ = full_build
    with pytest.raises(DatasetError, match="already holds"):
        build_mini_benchmark(out)


def test_overwrite_replaces_only_the_build(tmp_path: Path) -> None:
    build_mini_benchmark(tmp_path, vae_steps=2, gan_steps=2)
    (tmp_path / "images" / "stray.png").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("mine")
    build_mini_benchmark(tmp_path, vae_steps=2, gan_steps=2, overwrite=True)
    assert not (tmp_path / "images" / "stray.png").exists()
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_it_is_labelled_synthetic_and_credits_its_sources() -> None:
    assert "SYNTHETIC" in MINI_DESCRIPTION and "SYNTHETIC" in MINI_LICENCE
    for words in ("CC0", "CC BY 2.0", "US Navy", "scikit-image", "scikit-learn", "matplotlib"):
        assert words in MINI_LICENCE


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, evaluation.datasets.mini, evaluation.datasets.manifest; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "False"


def test_upsample_images_is_a_stride_4_transposed_convolution() -> None:
    import torch

    from evaluation.datasets.mini.generators import upsample_images, upsample_kernel
    from evaluation.datasets.mini.photos import Tile

    rng = np.random.default_rng(5)
    tiles = [Tile("p", 0, 64 * i, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for i in range(3)]
    kernel = upsample_kernel(3)
    ours = upsample_images(tiles, kernel).astype(np.int64)

    # Independent computation: area pooling, edge padding, torch's transposed convolution, crop.
    x = torch.from_numpy(np.stack([t.pixels for t in tiles]).transpose(0, 3, 1, 2).astype(np.float64))
    low = torch.nn.functional.pad(torch.nn.functional.avg_pool2d(x, 4), (1, 1, 1, 1), mode="replicate")
    weight = torch.from_numpy(kernel[:, None])  # groups=3: one 8x8 kernel per channel
    full = torch.nn.functional.conv_transpose2d(low, weight, stride=4, groups=3)
    expected = full[:, :, 6:70, 6:70].clamp(0, 255).round().numpy().transpose(0, 2, 3, 1)
    assert np.abs(ours - expected).max() <= 1  # rounding of exact halves may differ
    assert np.mean(ours == expected) > 0.999


def test_power_law_fit_recovers_a_known_exponent() -> None:
    from evaluation.datasets.mini.generators import fit_power_law
    from evaluation.datasets.mini.photos import Tile

    rng = np.random.default_rng(0)
    freqs = np.fft.fftfreq(64) * 64
    radius = np.hypot(freqs[:, None], freqs[None, :])
    radius[0, 0] = 1.0
    tiles = []
    for i in range(40):
        field = np.fft.ifft2(np.fft.fft2(rng.standard_normal((64, 64))) * radius**-1.5).real
        gray = np.clip(np.rint(128 + 40 * field / field.std()), 0, 255).astype(np.uint8)
        tiles.append(Tile("p", 0, i, np.repeat(gray[:, :, None], 3, axis=2)))
    exponents = fit_power_law(tiles)
    assert np.allclose(exponents[:, 0], 1.5, atol=0.1), exponents


def test_a_blend_of_a_tile_with_itself_is_the_tile() -> None:
    # Laplacian pyramids reconstruct exactly, so whatever the mask, blending identical tiles gives them back.
    from evaluation.datasets.mini.generators import blend_images
    from evaluation.datasets.mini.photos import Tile

    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    same = [Tile("p", 0, 0, pixels), Tile("p", 0, 64, pixels.copy())]
    out = blend_images(same, 3, np.random.default_rng(2))
    assert out.shape == (3, 64, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - pixels.astype(int)).max() <= 1


def test_a_blend_of_two_tiles_mixes_them_region_by_region() -> None:
    from evaluation.datasets.mini.generators import blend_images
    from evaluation.datasets.mini.photos import Tile

    dark, bright = np.full((64, 64, 3), 20, np.uint8), np.full((64, 64, 3), 220, np.uint8)
    [out] = blend_images([Tile("p", 0, 0, dark), Tile("p", 0, 64, bright)], 1, np.random.default_rng(3))
    values = out[..., 0].astype(int)
    assert values.min() <= 40 and values.max() >= 200  # both sources show through in their own regions
    assert 20 <= values.mean() <= 220


def test_the_gan_samples_are_deterministic_per_split_stream() -> None:
    from evaluation.datasets.mini.generators import PriorSampler
    from evaluation.datasets.mini.photos import Tile

    rng = np.random.default_rng(4)
    tiles = [Tile("p", 0, 64 * i, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for i in range(8)]
    first, second = (PriorSampler("gan", tiles, seed=0, steps=3) for _ in range(2))
    a, b = first.sample(5, 0), second.sample(5, 0)
    assert a.shape == (5, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, first.sample(5, 1))
