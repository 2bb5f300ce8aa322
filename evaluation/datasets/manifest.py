"""Dataset manifests: one JSON object per image, one image per line.

A dataset version is a folder of images plus ``manifest.jsonl``. The manifest's own sha256 names the
version, and every Result records it, so the bytes of the file must be canonical: keys sorted, compact
separators, ASCII only, ``\\n`` line endings, rows in the order the builder gave them. Reading and
writing stream line by line because a GenImage manifest holds over a million rows.

Schema v2 adds two optional keys, ``chroma_subsampling`` and ``chroma_quality`` (evaluation.datasets.jpeg).
A key whose value is None is left out of the line, so a v1 manifest (rows without them) reads as None and
writes back byte for byte: its sha256, which names the version, never changes. A row is one line, always.

This module is pure Python (no numpy, no torch) so the web process can read manifests too; so is the centre
crop geometry (``centre_crop_box``), shared by the image loader and the bias audit.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

from evaluation.errors import DatasetError
from evaluation.storage import local_copy, open_url, read_if_present, shown

SPLITS: tuple[str, ...] = ("train", "val", "test")
LABEL_REAL = 0
LABEL_GENERATED = 1
MANIFEST_NAME = "manifest.jsonl"  # in the top folder of every dataset version
MANIFEST_SCHEMA_VERSION = 2  # v2: optional chroma_subsampling and chroma_quality, omitted when None
_CHUNK = 1 << 20  # 1 MiB: large enough to be fast, small enough to never matter for memory
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _is_int(value: object) -> bool:
    # bool is a subclass of int; a manifest saying ``"label": true`` is malformed, not label 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_path(path: object) -> None:
    if not isinstance(path, str) or not path:
        raise DatasetError("the image path must be a non-empty string")
    if path.startswith("/") or "\\" in path or re.match(r"[A-Za-z]:", path):
        raise DatasetError(f"the image path {path!r} must be relative to the dataset folder, with '/' separators")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise DatasetError(f"the image path {path!r} must not contain empty, '.' or '..' parts")


@dataclass(frozen=True)
class ManifestRow:
    """One image of a dataset version.

    ``generator`` is the generator subset the row belongs to. It is None only for a real image in a
    pool shared by every generator subset of its split (the mini benchmark); GenImage rows carry their
    generator's name even for real images, because each generator there has its own real images.
    """

    path: str
    label: int
    generator: str | None
    split: str
    width: int
    height: int
    format: str
    jpeg_quality: int | None
    sha256: str
    chroma_subsampling: str | None = None  # "4:2:0"... (evaluation.datasets.jpeg.chroma_subsampling); None: no JPEG
    chroma_quality: int | None = None  # quality of the chroma table; None without one

    def __post_init__(self) -> None:
        # Validate on construction so a bad row can neither be written nor read back.
        _check_path(self.path)
        if not _is_int(self.label) or self.label not in (LABEL_REAL, LABEL_GENERATED):
            raise DatasetError(f"the label must be 0 (real) or 1 (generated), not {self.label!r}")
        if self.generator is not None and (not isinstance(self.generator, str) or not self.generator):
            raise DatasetError(f"the generator must be a non-empty string or null, not {self.generator!r}")
        if self.split not in SPLITS:
            raise DatasetError(f"the split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise DatasetError(f"the {name} must be a positive whole number, not {value!r}")
        if not isinstance(self.format, str) or not self.format:
            raise DatasetError(f"the file format must be a non-empty string such as PNG, not {self.format!r}")
        for name, what in (("jpeg_quality", "JPEG quality"), ("chroma_quality", "chroma quality")):
            quality = getattr(self, name)
            if quality is not None and (not _is_int(quality) or not 1 <= quality <= 100):
                raise DatasetError(f"the {what} must be null or a whole number from 1 to 100, not {quality!r}")
        subsampling = self.chroma_subsampling
        if subsampling is not None and (not isinstance(subsampling, str) or not subsampling):
            raise DatasetError(f"the chroma subsampling must be null or a name such as 4:2:0, not {subsampling!r}")
        if not isinstance(self.sha256, str) or not _SHA256_HEX.fullmatch(self.sha256):
            raise DatasetError(f"the sha256 must be 64 lowercase hexadecimal characters, not {self.sha256!r}")

    def to_line(self) -> bytes:
        """The canonical manifest line for this row, ending in ``\\n``."""
        values = {k: v for k, v in asdict(self).items() if not (k in _OPTIONAL and v is None)}
        text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return (text + "\n").encode("ascii")


_FIELDS: frozenset[str] = frozenset(f.name for f in fields(ManifestRow))
_OPTIONAL: frozenset[str] = frozenset({"chroma_subsampling", "chroma_quality"})  # schema v2, omitted when None


def file_inside(root: Path, relative: str) -> Path:
    """The file at ``relative`` under ``root``, refused (DatasetError) when it is a symbolic link to a file outside
    ``root``: followed, it would put another file (``/etc/passwd``, a private photo) into a manifest or a public
    download archive. Linked folders are followed: they are how an operator keeps a dataset's images on another
    disk, and every file under them is still a file of the dataset's own folders."""
    _check_path(relative)
    path = Path(root, relative)
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(os.path.realpath(root)):
            raise DatasetError(f"{relative} leads outside the dataset folder (a symbolic link to {target})")
    return path


def write_manifest(rows: Iterable[ManifestRow], path: Path) -> str:
    """Write ``rows`` as JSON lines to ``path`` and return the sha256 hex of the file's bytes.

    Rows are consumed one at a time. The file is written beside its destination and renamed into
    place at the end, so an interrupted build never leaves a half manifest that looks complete.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for row in rows:
                if not isinstance(row, ManifestRow):
                    raise DatasetError(f"a manifest row must be a ManifestRow, not {type(row).__name__}")
                line = row.to_line()
                digest.update(line)
                out.write(line)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 hex of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise DatasetError(f"the file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise DatasetError(f"{str(path)!r} is a folder, not a file") from None
    return digest.hexdigest()


@contextmanager
def verified_copy(url: str, expected: str, what: str) -> Iterator[Path]:
    """A local copy of the object at ``url`` (``storage.local_copy``) whose sha256 is ``expected``; DatasetError
    naming ``what`` otherwise. Each object is fetched once: a presigned link may be used only until it expires."""
    with local_copy(url) as path:
        actual = file_sha256(path)
        if actual != expected:
            raise DatasetError(f"the {what} at {shown(url)} has sha256 {actual}, expected {expected}")
        yield path


def manifest_sha256(path: Path) -> str:
    """The sha256 that names a dataset version: the hash of its manifest file's bytes."""
    return file_sha256(path)


def _parse_line(raw: bytes, number: int) -> ManifestRow:
    where = f"manifest line {number}"
    try:
        obj: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{where} must be a JSON object, not {type(obj).__name__}")
    missing, extra = sorted(_FIELDS - _OPTIONAL - obj.keys()), sorted(obj.keys() - _FIELDS)
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        raise DatasetError(f"{where} has the wrong keys: {'; '.join(parts)}")
    try:
        return ManifestRow(**obj)
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc.message}") from None


def read_manifest(path: Path) -> Iterator[ManifestRow]:
    """Yield the rows of a manifest one by one, checking each; a bad line raises DatasetError naming it."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise DatasetError(f"the manifest {str(path)!r} does not exist") from None
    with handle:
        yield from read_manifest_stream(handle)


def read_manifest_stream(handle: BinaryIO) -> Iterator[ManifestRow]:
    """The rows of an open binary manifest (a local file or an fsspec object), checked line by line.

    Blank lines are errors too: the writer never produces one, so one means the file was edited or cut.
    """
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            raise DatasetError(f"manifest line {number} is empty")
        yield _parse_line(raw, number)


def subset_counts(rows: Iterable[ManifestRow]) -> dict[tuple[str | None, str], dict[int, int]]:
    """Count labels per (generator, split); both labels 0 and 1 are always present in each count."""
    counts: dict[tuple[str | None, str], dict[int, int]] = {}
    for row in rows:
        per_label = counts.setdefault((row.generator, row.split), {LABEL_REAL: 0, LABEL_GENERATED: 0})
        per_label[row.label] += 1
    return counts


def dataset_info(root_url: str) -> dict[str, Any]:
    """A dataset version's dataset.json (what made it, the centre crops it asks for); {} when it has none."""
    blob = read_if_present(f"{root_url.rstrip('/')}/dataset.json")
    if blob is None:
        return {}
    try:
        spec = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"dataset.json of {root_url} is not valid JSON: {error}") from None
    if not isinstance(spec, dict):
        raise DatasetError(f"dataset.json of {root_url} must hold a JSON object")
    return spec


def centre_crops(root_url: str) -> dict[str, int]:
    """Per-generator centre crops a dataset version asks for in its dataset.json (the unbiased recipe)."""
    return {str(k): int(v) for k, v in dataset_info(root_url).get("centre_crop", {}).items()}


def centre_crop_box(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of a side x side centre crop, exactly as torchvision's CenterCrop.

    An axis longer than ``side`` is cut at offset ``int(round((length - side) / 2))`` (Python's round: halves
    go to the even number). An axis shorter than ``side`` is zero-padded first, ``(side - length) // 2`` before
    and the rest after, so the box starts that far before the image; Pillow's ``Image.crop`` fills the part
    outside the image with zeros, which is the same padding. The crop is always side x side.
    """
    def start(length: int) -> int:
        return int(round((length - side) / 2)) if length >= side else -((side - length) // 2)

    left, top = start(width), start(height)
    return left, top, left + side, top + side


def cropped_size(width: int, height: int, side: int | None) -> tuple[int, int]:
    """The size an image has after the version's centre crop (``side`` None: no crop)."""
    if not side:
        return width, height
    left, top, right, bottom = centre_crop_box(width, height, side)
    return right - left, bottom - top


def rows_by_line(manifest_url: str, line_ids: Iterable[int]) -> dict[int, ManifestRow]:
    """The rows at the given 0-based line numbers, streamed: memory grows with the ids asked for only."""
    wanted = set(line_ids)
    found: dict[int, ManifestRow] = {}
    with open_url(manifest_url) as handle:
        for line_id, row in enumerate(read_manifest_stream(handle)):
            if line_id in wanted:
                found[line_id] = row
    missing = wanted - found.keys()
    if missing:
        raise DatasetError(f"{manifest_url} has no line {min(missing)} ({len(missing)} line ids missing)")
    return found
