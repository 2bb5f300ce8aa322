"""Streaming a dataset's images into detector-ready batches.

Rows come from the manifest one at a time and images are decoded one batch at a time, so memory stays
flat in the number of images. Locations are fsspec URLs (a local path, file://, s3://…): the
evaluation worker needs neither the database nor a shared disk.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import fsspec
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from evaluation.datasets.manifest import ManifestRow, read_manifest_stream
from evaluation.errors import DatasetError

CHUNK = 1 << 20


@dataclass(frozen=True)
class IndexedRow:
    """A manifest row with its 0-based line number, the id scores are stored under."""

    row_id: int
    row: ManifestRow


def url_sha256(url: str) -> str:
    """Streamed sha256 of the object at ``url``."""
    digest = hashlib.sha256()
    try:
        with fsspec.open(url, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise DatasetError(f"{url} does not exist") from None
    return digest.hexdigest()


def rows_of_split(manifest_url: str, split: str, first: int, last: int) -> Iterator[IndexedRow]:
    """Rows ``first``..``last`` (exclusive) among the manifest's rows of ``split``."""
    with fsspec.open(manifest_url, "rb") as handle:
        seen = 0
        for row_id, row in enumerate(read_manifest_stream(handle)):
            if row.split != split:
                continue
            if first <= seen < last:
                yield IndexedRow(row_id, row)
            seen += 1
            if seen >= last:
                return


def count_split(manifest_url: str, split: str) -> int:
    with fsspec.open(manifest_url, "rb") as handle:
        return sum(1 for row in read_manifest_stream(handle) if row.split == split)


def centre_crop(image: Image.Image, side: int) -> Image.Image:
    """The central side×side square (or the whole image along an axis shorter than ``side``)."""
    width, height = image.size
    left, top = max((width - side) // 2, 0), max((height - side) // 2, 0)
    return image.crop((left, top, left + min(side, width), top + min(side, height)))


def decode_image(handle: BinaryIO, size: int, where: str, crop: int | None = None) -> torch.Tensor:
    """RGB float32 3×size×size in [0, 1]: optional centre crop, then bilinear resize when the size differs."""
    try:
        with Image.open(handle) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"cannot decode {where}: {error}") from None
    if crop:
        rgb = centre_crop(rgb, crop)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def image_batches(
    root_url: str, rows: Iterator[IndexedRow], *, size: int, batch_size: int, crops: dict[str, int] | None = None
) -> Iterator[tuple[list[IndexedRow], torch.Tensor]]:
    """Decoded batches of at most ``batch_size`` images with the rows they came from."""
    crops = crops or {}
    root = root_url.rstrip("/")
    batch_rows: list[IndexedRow] = []
    tensors: list[torch.Tensor] = []
    for indexed in rows:
        url = f"{root}/{indexed.row.path}"
        try:
            with fsspec.open(url, "rb") as handle:
                crop = crops.get(indexed.row.generator or "")
                tensors.append(decode_image(handle, size, indexed.row.path, crop))
        except FileNotFoundError:
            raise DatasetError(f"image {indexed.row.path} is missing from the dataset") from None
        batch_rows.append(indexed)
        if len(batch_rows) == batch_size:
            yield batch_rows, torch.stack(tensors)
            batch_rows, tensors = [], []
    if batch_rows:
        yield batch_rows, torch.stack(tensors)
