"""Decoding for detectors: the centre crop a dataset version asks for, then the resize."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.datasets.images import decode_image
from evaluation.datasets.manifest import centre_crops
from evaluation.errors import DatasetError


def _png(pixels: np.ndarray) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def test_the_centre_crop_keeps_the_middle_pixels_exactly() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    tensor = decode_image(_png(pixels), 20, "x.png", crop=20)
    expected = pixels[10:30, 15:35].astype(np.float32) / 255.0  # (40-20)//2 = 10 rows, (50-20)//2 = 15 columns
    np.testing.assert_array_equal(tensor.permute(1, 2, 0).numpy(), expected)


def test_without_a_crop_the_image_is_resized_to_the_input_size() -> None:
    pixels = np.full((40, 50, 3), 200, dtype=np.uint8)
    tensor = decode_image(_png(pixels), 16, "x.png")
    assert tensor.shape == (3, 16, 16) and tensor.max().item() == pytest.approx(200 / 255)


def test_crops_are_read_from_dataset_json(tmp_path: Path) -> None:
    assert centre_crops(str(tmp_path)) == {}
    (tmp_path / "dataset.json").write_text(json.dumps({"centre_crop": {"ADM": 224, "wukong": 450}}))
    assert centre_crops(str(tmp_path)) == {"ADM": 224, "wukong": 450}
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="dataset.json"):
        centre_crops(str(tmp_path))
