"""A dataset version's split as a stream of detector-ready batches, for the zoo's training recipes.

The same decoding as evaluation (evaluation.datasets.images: centre crops, bilinear resize, a thread pool a
few batches ahead), so a zoo model is trained on exactly the pixels it is later scored on; memory is bounded by
one look-ahead, never by the number of images.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from evaluation.datasets.images import IndexedRow, image_batches, rows_of_split
from evaluation.datasets.manifest import centre_crops


def split_rows(root: Path, split: str) -> Iterator[IndexedRow]:
    """The manifest rows of ``split``, in manifest order, with their line numbers."""
    return rows_of_split(str(Path(root) / "manifest.jsonl"), split, 0, sys.maxsize)


def split_batches(root: Path, split: str, *, input_size: int, batch_size: int = 64) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """(B×3×S×S float images in [0, 1], B labels with 1 = generated) over ``split``, in manifest order."""
    root_url = str(root)
    for rows, batch in image_batches(root_url, split_rows(root, split), size=input_size, batch_size=batch_size,
                                     crops=centre_crops(root_url)):
        yield batch, np.array([indexed.row.label for indexed in rows], dtype=np.int64)
