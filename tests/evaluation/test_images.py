"""Decoding for detectors: the centre crop a dataset version asks for, then the resize, each checked against
torchvision on structured images (a photograph, a checkerboard), where a wrong offset or filter shows."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as samples
from torchvision.transforms import CenterCrop
from torchvision.transforms import functional as tvf

from evaluation.datasets.audit import feature_value
from evaluation.datasets.images import centre_crop, decode_image
from evaluation.datasets.manifest import ManifestRow, centre_crops, cropped_size
from evaluation.errors import DatasetError


def _png(pixels: np.ndarray) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def _chw(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)


def _checkerboard(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    board = ((y // 3 + x // 5) % 2 * 200 + 30).astype(np.uint8)
    return np.stack([board, (x * 255 // max(width - 1, 1)).astype(np.uint8), (y * 7 % 256).astype(np.uint8)], -1)


@pytest.mark.parametrize("height, width, side", [
    (41, 57, 20), (40, 50, 21), (33, 33, 32), (30, 31, 29),  # odd differences: torchvision's rounding of halves
    (20, 26, 31), (17, 40, 24), (40, 17, 24), (9, 9, 10),  # smaller than the crop along one or both axes: padding
])
def test_the_centre_crop_is_torchvisions(height: int, width: int, side: int) -> None:
    pixels = _checkerboard(height, width)
    expected = CenterCrop(side)(_chw(pixels)).float() / 255.0
    tensor = decode_image(_png(pixels), side, "x.png", crop=side)  # input size == crop: no resize afterwards
    torch.testing.assert_close(tensor, expected, rtol=0, atol=0)
    assert cropped_size(width, height, side) == centre_crop(Image.fromarray(pixels), side).size == (side, side)


def test_the_audit_sees_the_size_after_the_crop() -> None:
    row = ManifestRow("a.png", 1, "g", "test", 20, 300, "PNG", None, "0" * 64)
    assert feature_value(row, "size", 64) == "64x64"  # padded across, cropped along
    assert feature_value(row, "size") == "20x300"


def test_the_resize_is_antialiased_bilinear_on_a_photograph() -> None:
    photo = samples.chelsea()[10:230, 40:340]  # 220 x 300, a cat: edges and texture
    tensor = decode_image(_png(photo), 64, "cat.png")
    # Independent computation: torch's own antialiased bilinear on the float image (Pillow rounds to bytes).
    expected = tvf.resize(_chw(photo).float() / 255.0, [64, 64], interpolation=tvf.InterpolationMode.BILINEAR,
                          antialias=True)
    assert tensor.shape == (3, 64, 64)
    torch.testing.assert_close(tensor, expected, rtol=0, atol=1.5 / 255)
    # A different filter would not pass: nearest-neighbour differs by far more than rounding.
    nearest = tvf.resize(_chw(photo).float() / 255.0, [64, 64], interpolation=tvf.InterpolationMode.NEAREST)
    assert (tensor - nearest).abs().max() > 0.1


def test_crop_then_resize_keeps_that_order() -> None:
    pixels = _checkerboard(90, 70)
    tensor = decode_image(_png(pixels), 32, "x.png", crop=60)
    cropped = CenterCrop(60)(_chw(pixels)).float() / 255.0
    expected = tvf.resize(cropped, [32, 32], interpolation=tvf.InterpolationMode.BILINEAR, antialias=True)
    torch.testing.assert_close(tensor, expected, rtol=0, atol=1.5 / 255)


def test_crops_are_read_from_dataset_json(tmp_path: Path) -> None:
    assert centre_crops(str(tmp_path)) == {}
    (tmp_path / "dataset.json").write_text(json.dumps({"centre_crop": {"ADM": 224, "wukong": 450}}))
    assert centre_crops(str(tmp_path)) == {"ADM": 224, "wukong": 450}
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="dataset.json"):
        centre_crops(str(tmp_path))
