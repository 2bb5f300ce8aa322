"""JPEG traits (luma quality, chroma subsampling, chroma quality) of files Pillow saved at known settings."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from evaluation.datasets.jpeg import (
    estimate_chroma_quality,
    estimate_jpeg_quality,
    ijg_chroma_table,
    ijg_luma_table,
    jpeg_traits,
)

QUALITIES = (10, 20, 30, 45, 50, 51, 60, 75, 85, 90, 95, 96, 99, 100)


def _jpeg(quality: int, size: tuple[int, int] = (40, 24), mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(quality)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


def test_ijg_table_matches_annex_k_at_50_and_libjpeg_scaling() -> None:
    table = ijg_luma_table(50)
    assert table.shape == (8, 8)
    assert table[0].tolist() == [16, 11, 10, 16, 24, 40, 51, 61]
    assert table[7].tolist() == [72, 92, 95, 98, 112, 100, 103, 99]
    assert (ijg_luma_table(100) == 1).all()
    assert (ijg_luma_table(1) == 255).all()  # scale 5000, clipped to the baseline maximum
    assert ijg_luma_table(75)[0, 0] == 8  # (16 * 50 + 50) // 100
    assert ijg_luma_table(10)[0, 0] == 80  # scale 500


def test_pillow_reports_the_table_in_natural_order() -> None:
    # The estimator relies on this convention; a Pillow that handed back zigzag order would fail here.
    assert np.asarray(_jpeg(50).quantization[0]).reshape(8, 8).tolist() == ijg_luma_table(50).tolist()


@pytest.mark.parametrize("quality", QUALITIES)
def test_known_qualities_are_estimated_exactly(quality: int) -> None:
    assert estimate_jpeg_quality(_jpeg(quality)) == quality


def test_greyscale_and_other_sizes() -> None:
    assert estimate_jpeg_quality(_jpeg(75, size=(9, 300), mode="L")) == 75
    assert estimate_jpeg_quality(_jpeg(96, size=(257, 129))) == 96


def test_png_and_a_new_image_give_none() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    buffer.seek(0)
    assert estimate_jpeg_quality(Image.open(buffer)) is None
    assert estimate_jpeg_quality(Image.new("RGB", (8, 8))) is None


@pytest.mark.parametrize("quality", QUALITIES)
def test_early_stop_agrees_with_brute_force_argmin(quality: int) -> None:
    image = _jpeg(quality)
    table = np.asarray(image.quantization[0], dtype=np.int64).reshape(8, 8)
    candidates = list(range(100, 0, -1))
    errors = [float(np.mean((table - ijg_luma_table(q)) ** 2)) for q in candidates]
    assert estimate_jpeg_quality(image) == candidates[int(np.argmin(errors))]


def test_a_non_ijg_table_gets_the_nearest_quality() -> None:
    # A custom table halfway between q=75 and q=50 must land between them, not at an end of the range.
    custom = ((ijg_luma_table(75) + ijg_luma_table(50)) // 2).flatten().tolist()
    buffer = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buffer, "JPEG", qtables=[custom])
    buffer.seek(0)
    estimate = estimate_jpeg_quality(Image.open(buffer))
    assert estimate is not None and 50 < estimate < 75


def _saved(pixels: np.ndarray, **options: object) -> Image.Image:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", **options)
    buffer.seek(0)
    return Image.open(buffer)


def test_ijg_chroma_table_matches_annex_k_table_k2() -> None:
    assert ijg_chroma_table(50)[0].tolist() == [17, 18, 24, 47, 99, 99, 99, 99]
    assert ijg_chroma_table(50)[3].tolist() == [47, 66, 99, 99, 99, 99, 99, 99]
    assert (ijg_chroma_table(50)[4:] == 99).all() and (ijg_chroma_table(100) == 1).all()
    assert ijg_chroma_table(75)[0, 0] == 9  # (17 * 50 + 50) // 100
    # What libjpeg writes for the chroma table is exactly this (Pillow reports it as table 1).
    pixels = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    for quality in (30, 75, 96):
        written = np.asarray(_saved(pixels, quality=quality).quantization[1]).reshape(8, 8)
        assert written.tolist() == ijg_chroma_table(quality).tolist()


@pytest.mark.parametrize("subsampling, name", [(0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")])
@pytest.mark.parametrize("quality", (40, 75, 96))
def test_jpeg_traits_read_what_pillow_wrote(subsampling: int, name: str, quality: int) -> None:
    pixels = np.random.default_rng(quality).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    image = _saved(pixels, quality=quality, subsampling=subsampling)
    assert JpegImagePlugin.get_sampling(image) == subsampling  # Pillow agrees the file has that layout
    assert jpeg_traits(image) == (quality, name, quality)


def test_luma_and_chroma_qualities_are_estimated_separately() -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    tables = [ijg_luma_table(90).flatten().tolist(), ijg_chroma_table(60).flatten().tolist()]
    assert jpeg_traits(_saved(pixels, qtables=tables, subsampling=2)) == (90, "4:2:0", 60)


@pytest.mark.parametrize("quality", QUALITIES)
def test_chroma_estimate_agrees_with_brute_force_argmin(quality: int) -> None:
    image = _jpeg(quality)
    table = np.asarray(image.quantization[1], dtype=np.int64).reshape(8, 8)
    candidates = list(range(100, 0, -1))
    errors = [float(np.mean((table - ijg_chroma_table(q)) ** 2)) for q in candidates]
    assert estimate_chroma_quality(image) == candidates[int(np.argmin(errors))]


def test_greyscale_and_png_traits() -> None:
    assert jpeg_traits(_jpeg(80, mode="L")) == (80, "1x1", None)  # one component: no chroma table
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    buffer.seek(0)
    assert jpeg_traits(Image.open(buffer)) == (None, None, None)
