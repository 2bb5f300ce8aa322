"""Download archives of a dataset version: one uncompressed tar per split, with SHA-256 sums.

Images are already compressed, so tar without compression costs nothing and keeps byte ranges stable,
which is what resumable downloads need. A hidden split's archive carries images under opaque ids plus an
``ids.csv`` (id, width, height, format); never a label, a generator or an original path, since file names
like ``images/test/real/…`` would give the answer away.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from evaluation.datasets.manifest import file_sha256, read_manifest
from evaluation.errors import DatasetError

ARCHIVE_DIR = "archives"
SUMS_NAME = "SHA256SUMS"
PUBLIC_FIELDS = ("path", "label", "generator", "split", "width", "height", "format", "jpeg_quality", "sha256")


@dataclass(frozen=True)
class SplitArchive:
    split: str
    name: str
    sha256: str
    size: int
    images: int
    hidden: bool


def hidden_id(manifest_sha256: str, row_id: int) -> str:
    """A stable id that reveals nothing about the row but lets the platform map it back."""
    return hashlib.sha256(f"{manifest_sha256}:{row_id}".encode()).hexdigest()[:20]


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # fixed mtime: the same data gives the same archive
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
    with path.open("rb") as handle:  # tarfile copies in blocks: the image is never held whole
        tar.addfile(info, handle)


def _write_split(root: Path, split: str, hidden: bool, manifest_sha: str, target: Path) -> int:
    count = 0
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["id", "width", "height", "format"] if hidden else PUBLIC_FIELDS)
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for row_id, row in enumerate(read_manifest(root / "manifest.jsonl")):
            if row.split != split:
                continue
            count += 1
            if hidden:
                ident = hidden_id(manifest_sha, row_id)
                _add_file(tar, f"{split}/{ident}{PurePosixPath(row.path).suffix}", root / row.path)
                writer.writerow([ident, row.width, row.height, row.format])
            else:
                _add_file(tar, f"{split}/{row.path}", root / row.path)
                writer.writerow([getattr(row, f) if getattr(row, f) is not None else "" for f in PUBLIC_FIELDS])
        _add_bytes(tar, f"{split}/{'ids' if hidden else 'manifest'}.csv", table.getvalue().encode())
    return count


def build_archives(root: Path, manifest_sha: str, *, hidden_splits: frozenset[str]) -> list[SplitArchive]:
    """Write ``root/archives/<split>.tar`` for every split and ``SHA256SUMS``; returns what was written."""
    splits = sorted({row.split for row in read_manifest(root / "manifest.jsonl")})
    if not splits:
        raise DatasetError(f"{root}/manifest.jsonl has no rows")
    folder = root / ARCHIVE_DIR
    folder.mkdir(exist_ok=True)
    archives = []
    for split in splits:
        target = folder / f"{split}.tar"
        partial = target.with_suffix(".tar.partial")
        images = _write_split(root, split, split in hidden_splits, manifest_sha, partial)
        partial.replace(target)
        archives.append(SplitArchive(split, target.name, file_sha256(target), target.stat().st_size, images,
                                     split in hidden_splits))
    sums = "".join(f"{a.sha256}  {a.name}\n" for a in archives)
    (folder / SUMS_NAME).write_text(sums, encoding="ascii")
    (folder / "archives.json").write_text(json.dumps([a.__dict__ for a in archives], indent=1), encoding="utf-8")
    return archives

