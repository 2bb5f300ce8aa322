"""Faces-HQ importer (Durall et al., "Unmasking DeepFakes with simple Features"; seeds.md §8.3).

Faces-HQ ships as four folders, one per source: two real (CelebA-HQ, FFHQ) and two generated (100K Faces,
thispersondoesnotexist.com), 10,000 1024-px images each. Every source becomes its own subset: a row's
``generator`` is its source, for real images too, so every result breaks down by source. The paper uses
an 80/20 split without publishing it; here an image is in ``test`` when the first 8 hex digits of the
sha256 of its relative path are divisible by 5 (20 %), so the split is fixed, needs no file read and does
not change when files are added.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from evaluation.citations import UNMASKING_DEEPFAKES
from evaluation.datasets.genimage import FLUSH_EVERY, ImageItem, ScanSummary, scan_images
from evaluation.errors import DatasetError

# folder name in the release → (source name, label)
SOURCES: dict[str, tuple[str, int]] = {
    "celebA-HQ_10K": ("celeba-hq", 0),
    "Flickr-Faces-HQ_10K": ("ffhq", 0),
    "100KFake_10K": ("100k-faces", 1),
    "thispersondoesntexists_10K": ("tpdne", 1),
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
EXPECTED_LAYOUT = (
    "Expected a Faces-HQ copy: a folder holding the four source folders "
    + ", ".join(f"{folder}/ ({name}, {'generated' if label else 'real'})" for folder, (name, label) in SOURCES.items())
    + ", each with its image files (any depth)."
)
FACESHQ_DESCRIPTION = (
    "Faces-HQ: 40,000 high-resolution faces from four sources, two real (CelebA-HQ, FFHQ) and two generated "
    "(100K Faces / generated.photos, thispersondoesnotexist.com). Each source is its own subset."
)
FACESHQ_CITATION = UNMASKING_DEEPFAKES  # the paper that introduced Faces-HQ
FACESHQ_LICENCE = (
    "Each source keeps its own terms: CelebA-HQ (non-commercial research), FFHQ (CC BY-NC-SA 4.0), "
    "100K Faces (generated.photos terms), thispersondoesnotexist.com images (no licence stated)."
)


def split_of(path: str) -> str:
    return "test" if int(hashlib.sha256(path.encode()).hexdigest()[:8], 16) % 5 == 0 else "train"


def check_layout(root: Path) -> None:
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder. {EXPECTED_LAYOUT}")
    missing = [folder for folder in SOURCES if not (root / folder).is_dir()]
    if missing:
        raise DatasetError(f"{root} lacks {', '.join(missing)}. {EXPECTED_LAYOUT}")


def _files(folder: str) -> Iterator[str]:
    """Image files below ``folder`` in sorted order, one directory listing in memory at a time."""
    with os.scandir(folder) as entries:
        ordered = sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    for entry in ordered:
        if entry.is_dir():
            yield from _files(entry.path)
        elif entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
            yield entry.path


def walk(root: str) -> Iterator[ImageItem]:
    for folder, (source, label) in sorted(SOURCES.items()):
        for path in _files(os.path.join(root, folder)):
            relative = Path(path).relative_to(root).as_posix()
            yield ImageItem(relative, source, split_of(relative), label)


def scan_faceshq(root: Path, out_dir: Path, *, workers: int = 2, progress: bool = True,
                 flush_every: int = FLUSH_EVERY) -> ScanSummary:
    """Describe every Faces-HQ image in ``root`` into ``out_dir``/manifest.jsonl (+ known_bad.jsonl)."""
    root = Path(root).resolve()
    check_layout(root)
    return scan_images(root, out_dir, walk, workers=workers, progress=progress, flush_every=flush_every)
