"""The SYNTHETIC mini benchmark: balanced, split by photo, valid files, deterministic, real artefacts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.datasets.jpeg import chroma_subsampling, estimate_jpeg_quality
from evaluation.datasets.manifest import ManifestRow, centre_crop_box, file_sha256, read_manifest, subset_counts
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


SMALL = {"vae_steps": 5, "gan_steps": 2, "tiles_per_split": 12}  # a quick, still real build for the tests that build


@pytest.fixture(scope="module")
def rows(mini_root: Path) -> list[ManifestRow]:
    """The session's mini build (tests/conftest.py builds it once), read back from its manifest."""
    return list(read_manifest(mini_root / "manifest.jsonl"))


@pytest.fixture(scope="module")
def small_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MiniBuildSummary]:
    out = tmp_path_factory.mktemp("mini_small") / "a"
    return out, build_mini_benchmark(out, seed=0, **SMALL)


def test_summary_matches_the_manifest(small_build: tuple[Path, MiniBuildSummary]) -> None:
    out, summary = small_build
    rows = list(read_manifest(out / "manifest.jsonl"))
    assert summary.manifest_sha256 == file_sha256(out / "manifest.jsonl")
    assert summary.manifest_path == out / "manifest.jsonl"
    assert sum(summary.counts.values()) == len(rows) == 12 * 3 * (1 + len(MINI_GENERATORS))
    for (generator, split), per_label in subset_counts(rows).items():
        for label, count in per_label.items():
            assert summary.counts.get((generator, split, label), 0) == count


def test_every_split_is_balanced_per_generator(rows: list[ManifestRow]) -> None:
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


def test_splits_are_disjoint_by_source_photo(rows: list[ManifestRow]) -> None:
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


def test_every_image_is_a_64px_rgb_png_matching_its_hash(mini_root: Path, rows: list[ManifestRow]) -> None:
    out = mini_root
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


def test_upsample_family_has_periodic_spectral_peaks(mini_root: Path, rows: list[ManifestRow]) -> None:
    out = mini_root
    real = _mean_spectrum(out, rows, "test", None)
    upsampled = _mean_spectrum(out, rows, "test", "upsample")
    # 4x upsampling of a 64 px tile repeats every 4 px: peaks at multiples of 16 cycles per tile.
    peaks = [(16 * k, 16 * m) for k in range(4) for m in range(4) if (k, m) != (0, 0)]
    ratio = sum(upsampled[p] for p in peaks) / sum(real[p] for p in peaks)
    assert ratio > 2.5, ratio
    assert upsampled[16, 0] > 1.5 * real[16, 0]
    # Elsewhere the family is a blurred copy of the real tiles, so it has *less* energy there.
    assert upsampled[8, 8] < real[8, 8]


def test_same_seed_gives_the_same_manifest_and_another_seed_does_not(
    small_build: tuple[Path, MiniBuildSummary], tmp_path: Path,
) -> None:
    out, first = small_build
    second = build_mini_benchmark(tmp_path / "b", seed=0, **SMALL)
    other = build_mini_benchmark(tmp_path / "c", seed=1, **SMALL)
    assert first.manifest_sha256 == second.manifest_sha256
    assert (out / "manifest.jsonl").read_bytes() == (tmp_path / "b" / "manifest.jsonl").read_bytes()
    assert other.manifest_sha256 != first.manifest_sha256
    assert first.counts == other.counts


def test_an_existing_build_is_not_silently_overwritten(small_build: tuple[Path, MiniBuildSummary]) -> None:
    out, summary = small_build
    with pytest.raises(DatasetError, match="already holds"):
        build_mini_benchmark(out)
    assert file_sha256(out / "manifest.jsonl") == summary.manifest_sha256


def test_overwrite_replaces_only_the_build(tmp_path: Path) -> None:
    build_mini_benchmark(tmp_path, **SMALL)
    (tmp_path / "images" / "stray.png").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("mine")
    build_mini_benchmark(tmp_path, **SMALL, overwrite=True)
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


# ---------------------------------------------------------------- the biased and unbiased versions


def test_biased_reals_are_4_2_0_jpegs_at_varied_sizes_and_generated_are_the_base_pngs(
    mini_root: Path, mini_variant_roots: dict[str, Path],
) -> None:
    from evaluation.datasets.manifest import centre_crops
    from evaluation.datasets.mini.variants import BIASED_CROP, REAL_QUALITY_OTHER, REAL_SIZE_RANGE

    root = mini_variant_roots["biased"]
    base = {(r.split, r.generator, Path(r.path).name): r.sha256 for r in read_manifest(mini_root / "manifest.jsonl")}
    sizes, qualities = set(), set()
    for row in read_manifest(root / "manifest.jsonl"):
        with Image.open(root / row.path) as image:
            assert image.size == (row.width, row.height) and row.width == row.height
            if row.label == 0:
                assert (image.format, chroma_subsampling(image), row.format) == ("JPEG", "4:2:0", "JPEG")
                assert (row.chroma_subsampling, row.jpeg_quality) == ("4:2:0", estimate_jpeg_quality(image))
                assert REAL_SIZE_RANGE[0] <= row.width <= REAL_SIZE_RANGE[1]
                sizes.add(row.width)
                qualities.add(row.jpeg_quality)
            else:
                assert (image.format, row.width, row.jpeg_quality) == ("PNG", 64, None)
                assert row.sha256 == base[(row.split, row.generator, Path(row.path).name)]
        assert file_sha256(root / row.path) == row.sha256
    assert sizes == set(range(REAL_SIZE_RANGE[0], REAL_SIZE_RANGE[1] + 1))
    assert qualities == {96, *range(REAL_QUALITY_OTHER[0], REAL_QUALITY_OTHER[1] + 1)}
    assert centre_crops(str(root)) == {g: BIASED_CROP for g in MINI_GENERATORS}


def test_a_64px_detector_is_given_the_real_jpegs_pixels_as_decoded(
    mini_root: Path, mini_variant_roots: dict[str, Path],
) -> None:
    # The pipeline's centre crop of a biased real image is its decoded JPEG pixels, unresampled; where the square
    # did not have to be shifted inward at the photo's edges, that crop is the base tile up to JPEG error.
    from evaluation.datasets.images import decode_image
    from evaluation.datasets.manifest import centre_crops
    from evaluation.datasets.mini.photos import load_photo, source_named, tile_position

    root = mini_variant_roots["biased"]
    crops = centre_crops(str(root))
    photos: dict[str, np.ndarray] = {}
    compared = 0
    for row in [r for r in read_manifest(root / "manifest.jsonl") if r.label == 0 and r.split == "test"][::7]:
        with (root / row.path).open("rb") as handle:
            seen = decode_image(handle, 64, row.path, crops[row.generator]).numpy()
        left, top, right, bottom = centre_crop_box(row.width, row.height, 64)
        decoded = np.asarray(Image.open(root / row.path).convert("RGB"), dtype=np.float32)
        expected = decoded[top:bottom, left:right].transpose(2, 0, 1) / 255.0
        assert np.array_equal(seen, expected), row.path
        photo, y, x = tile_position(Path(row.path).stem)
        pixels = photos.setdefault(photo, load_photo(source_named(photo)).astype(np.float32))
        height, width = pixels.shape[:2]
        if min(y, x) >= top + 1 and y - top + row.height < height and x - left + row.width < width:
            # The crop is the tile (JPEG error only), not a neighbouring region one pixel off.
            errors = {(dy, dx): np.abs(expected * 255.0 - pixels[y + dy:y + dy + 64, x + dx:x + dx + 64]
                                       .transpose(2, 0, 1)).mean() for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
            here = errors.pop((0, 0))
            assert here < min(errors.values()), (row.path, here, errors)
            compared += 1
    assert compared >= 20


def test_unbiased_is_jpeg_4_2_0_at_96_for_both_classes_with_enough_images_per_generator(
    mini_variant_roots: dict[str, Path],
) -> None:
    from evaluation.datasets.manifest import centre_crops
    from evaluation.datasets.mini.variants import unbiased_windows

    root = mini_variant_roots["unbiased"]
    rows = list(read_manifest(root / "manifest.jsonl"))
    for row in rows[::5]:
        with Image.open(root / row.path) as image:
            assert (image.format, chroma_subsampling(image), row.jpeg_quality) == ("JPEG", "4:2:0", 96), row.path
    counts = subset_counts(rows)
    least = {"train": 100, "val": 20, "test": 40}
    for generator in MINI_GENERATORS:
        for split in SPLITS:
            real, generated = counts[(generator, split)][0], counts[(generator, split)][1]
            assert real == generated >= least[split], (generator, split, real, generated)
    assert centre_crops(str(root)) == {g: low for g, (low, _) in unbiased_windows().items()}


def test_the_variants_are_deterministic(small_build: tuple[Path, MiniBuildSummary], tmp_path: Path) -> None:
    from evaluation.datasets.mini.variants import build_mini_variants

    base, _ = small_build
    first = build_mini_variants(base, tmp_path / "b1", tmp_path / "u1", seed=0)
    second = build_mini_variants(base, tmp_path / "b2", tmp_path / "u2", seed=0)
    assert [s.manifest_sha256 for s in first] == [s.manifest_sha256 for s in second]
    assert (tmp_path / "b1" / "dataset.json").read_bytes() == (tmp_path / "b2" / "dataset.json").read_bytes()
    with pytest.raises(DatasetError, match="already holds"):
        build_mini_variants(base, tmp_path / "b1", tmp_path / "u3", seed=0)
