"""Download archives of a dataset version: one uncompressed tar per split, with SHA-256 sums.

Images are already compressed, so tar without compression costs nothing and keeps byte ranges stable,
which is what resumable downloads need.

A hidden split's archive must not give its labels away, so nothing in it depends on the manifest's order or
paths: each image is named ``<split>/<id><suffix>`` with ``id`` = HMAC-SHA256(server key, "<manifest sha256>:<line>")
(without the key, which never leaves the server, the ids cannot be mapped back to manifest lines; the platform,
holding it, can), ``suffix`` comes from the image's own format (``PNG`` → ``.png``, visible in the bytes anyway)
instead of the original file name, the images come in id order (a secret pseudo-random permutation), and every
tar header has the same mtime, mode, owner and group. ``ids.csv`` (id, width, height, format, in the same order)
describes only what the bytes show. The order is produced by an external sort of (id, row) records in runs of
``SORT_RUN_ROWS``, so memory stays flat in the number of images.
"""
from __future__ import annotations

import csv
import hashlib
import heapq
import hmac
import json
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from evaluation.datasets.manifest import ManifestRow, file_inside, file_sha256, read_manifest
from evaluation.errors import DatasetError

ARCHIVE_DIR = "archives"
SUMS_NAME = "SHA256SUMS"
# 2: hidden ids keyed with a server secret, hidden images in id order, member suffixes from the image format.
ARCHIVE_VERSION = 2
PUBLIC_FIELDS = ("path", "label", "generator", "split", "width", "height", "format", "jpeg_quality", "sha256")
HIDDEN_FIELDS = ("id", "width", "height", "format")
HIDDEN_ID_HEX = 32  # 128 bits: no collision in any realistic split, no brute force of the key
SORT_RUN_ROWS = 50_000  # records sorted in memory at once (a few MB); a million rows make 20 runs to merge
_NO_KEY = "a hidden split's ids need the server's secret key (SPECTRA_HIDDEN_ID_KEY); none was given"
_SUFFIXES = {"JPEG": ".jpg", "JPG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}


@dataclass(frozen=True)
class SplitArchive:
    split: str
    name: str
    sha256: str
    size: int
    images: int
    hidden: bool
    version: int = ARCHIVE_VERSION


def hidden_id(key: bytes, manifest_sha256: str, row_id: int) -> str:
    """The opaque id of manifest line ``row_id`` (0-based) in a hidden split's archive."""
    if not key:
        raise DatasetError(_NO_KEY)
    return hmac.new(key, f"{manifest_sha256}:{row_id}".encode(), hashlib.sha256).hexdigest()[:HIDDEN_ID_HEX]


def format_suffix(image_format: str) -> str:
    """The file suffix of an image format as the manifest names it (Pillow's names)."""
    return _SUFFIXES.get(image_format.upper(), "." + image_format.lower())


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)  # uid, gid 0 and empty owner names by default
    info.size, info.mtime, info.mode = size, 0, 0o644  # fixed mtime: the same data gives the same archive
    return info


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    with path.open("rb") as handle:  # tarfile copies in blocks: the image is never held whole
        tar.addfile(_info(name, path.stat().st_size), handle)


def _sorted_run(records: list[str], scratch: Path, number: int) -> Path:
    records.sort()
    path = scratch / f"run-{number:05d}.txt"
    path.write_text("".join(records), encoding="utf-8")
    return path


def hidden_rows_in_id_order(root: Path, split: str, key: bytes, manifest_sha: str, *,
                            run_rows: int = SORT_RUN_ROWS) -> Iterator[tuple[str, ManifestRow]]:
    """(id, row) of every ``split`` row, sorted by id: sorted runs of ``run_rows`` records in a scratch folder
    beside the archives, then merged. Memory holds one run, whatever the number of images."""
    with tempfile.TemporaryDirectory(dir=root / ARCHIVE_DIR, prefix="sort-") as folder, ExitStack() as files:
        scratch, runs, records = Path(folder), [], []
        for row_id, row in enumerate(read_manifest(root / "manifest.jsonl")):
            if row.split == split:
                records.append(f"{hidden_id(key, manifest_sha, row_id)}\t{row.to_line().decode('ascii')}")
            if len(records) >= run_rows:
                runs.append(_sorted_run(records, scratch, len(runs)))
                records = []
        if records:
            runs.append(_sorted_run(records, scratch, len(runs)))
        previous = ""
        for record in heapq.merge(*(files.enter_context(path.open(encoding="utf-8")) for path in runs)):
            ident, _, line = record.partition("\t")
            if ident == previous:
                raise DatasetError(f"two rows of split {split!r} got the same hidden id {ident}; rebuild with another key")
            previous = ident
            yield ident, ManifestRow(**json.loads(line))


Member = tuple[str, Path, list[object]]  # name inside the tar, the image file, its row of the table


def _hidden_members(root: Path, split: str, key: bytes, manifest_sha: str) -> Iterator[Member]:
    for ident, row in hidden_rows_in_id_order(root, split, key, manifest_sha):
        yield (f"{split}/{ident}{format_suffix(row.format)}", file_inside(root, row.path),
               [ident, row.width, row.height, row.format])


def _public_members(root: Path, split: str) -> Iterator[Member]:
    for row in read_manifest(root / "manifest.jsonl"):
        if row.split == split:
            table_row = [getattr(row, f) if getattr(row, f) is not None else "" for f in PUBLIC_FIELDS]
            yield f"{split}/{row.path}", file_inside(root, row.path), table_row


def _write_split(root: Path, split: str, hidden_key: bytes | None, manifest_sha: str, target: Path) -> int:
    """``hidden_key`` None: a public split. The table is spooled to disk beside the archive, not held in memory."""
    hidden = hidden_key is not None
    if hidden_key is not None:
        members = _hidden_members(root, split, hidden_key, manifest_sha)
    else:
        members = _public_members(root, split)
    table_path, count = target.with_suffix(".csv.partial"), 0
    try:
        with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
            with table_path.open("w", encoding="utf-8", newline="") as table:
                writer = csv.writer(table, lineterminator="\n")
                writer.writerow(HIDDEN_FIELDS if hidden else PUBLIC_FIELDS)
                for name, path, table_row in members:
                    _add_file(tar, name, path)
                    writer.writerow(table_row)
                    count += 1
            _add_file(tar, f"{split}/{'ids' if hidden else 'manifest'}.csv", table_path)
    finally:
        table_path.unlink(missing_ok=True)
    return count


def build_archives(root: Path, manifest_sha: str, *, hidden_splits: frozenset[str],
                   hidden_id_key: bytes) -> list[SplitArchive]:
    """Write ``root/archives/<split>.tar`` for every split and ``SHA256SUMS``; returns what was written.
    ``hidden_id_key`` is the server's secret behind the hidden splits' ids and order."""
    splits = sorted({row.split for row in read_manifest(root / "manifest.jsonl")})
    if not splits:
        raise DatasetError(f"{root}/manifest.jsonl has no rows")
    if hidden_splits & set(splits) and not hidden_id_key:
        raise DatasetError(_NO_KEY)
    folder = root / ARCHIVE_DIR
    folder.mkdir(exist_ok=True)
    archives = []
    for split in splits:
        target = folder / f"{split}.tar"
        partial = target.with_suffix(".tar.partial")
        key = hidden_id_key if split in hidden_splits else None
        try:
            images = _write_split(root, split, key, manifest_sha, partial)
        except BaseException:
            partial.unlink(missing_ok=True)  # a refused or interrupted split leaves no half archive behind
            raise
        partial.replace(target)
        archives.append(SplitArchive(split, target.name, file_sha256(target), target.stat().st_size, images,
                                     split in hidden_splits))
    sums = "".join(f"{a.sha256}  {a.name}\n" for a in archives)
    (folder / SUMS_NAME).write_text(sums, encoding="ascii")
    (folder / "archives.json").write_text(json.dumps([a.__dict__ for a in archives], indent=1), encoding="utf-8")
    return archives


def archive_is_current(entry: dict) -> bool:
    """Whether a stored archive entry was written by this version (older hidden archives leak their labels)."""
    return entry.get("version", 1) == ARCHIVE_VERSION

