"""Streaming a dataset's images into detector-ready batches.

Rows come from the manifest one at a time and images are decoded one batch at a time, so memory stays
flat in the number of images. Locations are fsspec URLs (a local path, file://, s3://…): the
evaluation worker needs neither the database nor a shared disk.
"""
from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import fsspec
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from evaluation.datasets.manifest import ManifestRow, centre_crop_box, read_manifest_stream
from evaluation.datasets.pixels import check_pixel_count, to_rgb
from evaluation.errors import DatasetError
from evaluation.perturbations import perturb
from evaluation.storage import is_local, open_url, read_objects

PREFETCH_BATCHES = 2  # batches decoded ahead of the model


@dataclass(frozen=True)
class IndexedRow:
    """A manifest row with its 0-based line number, the id scores are stored under."""

    row_id: int
    row: ManifestRow


def rows_of_split(manifest_url: str, split: str, first: int, last: int) -> Iterator[IndexedRow]:
    """Rows ``first``..``last`` (exclusive) among the manifest's rows of ``split``."""
    with open_url(manifest_url) as handle:
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
    with open_url(manifest_url) as handle:
        return sum(1 for row in read_manifest_stream(handle) if row.split == split)


def centre_crop(image: Image.Image, side: int) -> Image.Image:
    """The central side×side square as torchvision's CenterCrop cuts it, zero-padded where the image is
    smaller (geometry: ``evaluation.datasets.manifest.centre_crop_box``; Pillow fills outside with zeros)."""
    return image.crop(centre_crop_box(image.width, image.height, side))


def open_rgb(handle: BinaryIO, where: str, crop: int | None = None) -> Image.Image:
    """The image as 8-bit RGB (``evaluation.datasets.pixels``), centre-cropped when the dataset version asks for it."""
    try:
        with Image.open(handle) as image:
            check_pixel_count(image)
            rgb = to_rgb(image)
    except DatasetError as error:
        raise DatasetError(f"cannot decode {where}: {error.message}") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise DatasetError(f"cannot decode {where}: {error}") from None
    return centre_crop(rgb, crop) if crop else rgb


def to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """RGB float32 3×size×size in [0, 1], bilinear resize (antialiased) when the size differs."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def decode_image(handle: BinaryIO, size: int, where: str, crop: int | None = None) -> torch.Tensor:
    """RGB float32 3×size×size in [0, 1]: optional centre crop, then bilinear resize when the size differs."""
    return to_tensor(open_rgb(handle, where, crop), size)


def _load(root: str, indexed: IndexedRow, size: int, crop: int | None, conditions: Sequence[str],
          fetched: Future[list[bytes]] | None = None, position: int = 0) -> torch.Tensor:
    """One image, decoded once, under every condition: K×3×S×S. A remote image's bytes come from its batch's
    ``fetched`` future; a local one is opened here."""
    if fetched is not None:
        image = open_rgb(io.BytesIO(fetched.result()[position]), indexed.row.path, crop)
    else:
        try:
            with open(_local_path(root, indexed.row.path), "rb") as handle:
                image = open_rgb(handle, indexed.row.path, crop)
        except FileNotFoundError:
            raise DatasetError(f"image {indexed.row.path} is missing from the dataset") from None
    return torch.stack([to_tensor(perturb(image, condition, indexed.row.sha256), size)
                        for condition in conditions])


def _local_path(root: str, path: str) -> str:
    return f"{fsspec.core.split_protocol(root)[1]}/{path}"


def loader_threads() -> int:
    """Decoding threads: Pillow releases the GIL while it decodes, encodes and resamples, so threads overlap
    decoding with the model. (Celery's prefork children are daemonic and may not fork DataLoader workers.)"""
    return max(1, min(8, (os.cpu_count() or 2)))


def condition_batches(
    root_url: str, rows: Iterable[IndexedRow], *, size: int, batch_size: int, crops: dict[str, int] | None = None,
    conditions: Sequence[str] = ("",), threads: int | None = None, pin_memory: bool = False,
) -> Iterator[tuple[list[IndexedRow], torch.Tensor]]:
    """Batches of K×B×3×S×S (K conditions, each image decoded once), decoded by a thread pool a few batches
    ahead of the consumer; memory is bounded by that look-ahead, never by the number of images."""
    crops, root, remote = crops or {}, root_url.rstrip("/"), not is_local(root_url)
    # A remote store's latency is hidden by fetching whole batches ahead, concurrently, apart from decoding.
    with ThreadPoolExecutor(max_workers=threads or loader_threads()) as pool, \
            ThreadPoolExecutor(max_workers=PREFETCH_BATCHES) as fetcher:
        pending: deque[tuple[list[IndexedRow], list[Future[torch.Tensor]]]] = deque()
        for chunk in _chunks(rows, batch_size):
            fetched = fetcher.submit(read_objects, root, [r.row.path for r in chunk]) if remote else None
            futures = [pool.submit(_load, root, r, size, crops.get(r.row.generator or ""), conditions, fetched, i)
                       for i, r in enumerate(chunk)]
            pending.append((chunk, futures))
            if len(pending) > PREFETCH_BATCHES:
                yield _collect(*pending.popleft(), pin_memory)
        while pending:
            yield _collect(*pending.popleft(), pin_memory)


def _chunks(rows: Iterable[IndexedRow], size: int) -> Iterator[list[IndexedRow]]:
    chunk: list[IndexedRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _collect(chunk: list[IndexedRow], futures: list[Future[torch.Tensor]], pin_memory: bool) -> tuple[list[IndexedRow], torch.Tensor]:
    batch = torch.stack([future.result() for future in futures], dim=1)  # K×B×3×S×S
    return chunk, batch.pin_memory() if pin_memory else batch


def image_batches(
    root_url: str, rows: Iterable[IndexedRow], *, size: int, batch_size: int, crops: dict[str, int] | None = None,
    threads: int | None = None, pin_memory: bool = False,
) -> Iterator[tuple[list[IndexedRow], torch.Tensor]]:
    """Decoded clean batches of at most ``batch_size`` images (B×3×S×S) with the rows they came from."""
    for chunk, batch in condition_batches(root_url, rows, size=size, batch_size=batch_size, crops=crops,
                                          threads=threads, pin_memory=pin_memory):
        yield chunk, batch[0]
