"""Manifest reading and writing: canonical bytes, streamed round trip, clear errors on bad lines."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation.datasets.manifest import (
    ManifestRow,
    file_sha256,
    manifest_sha256,
    read_manifest,
    subset_counts,
    write_manifest,
)
from evaluation.errors import DatasetError


def make_row(i: int, **changes: object) -> ManifestRow:
    values: dict[str, object] = dict(
        path=f"images/test/{'real' if i % 2 == 0 else 'sdv4'}/{i:04d}.png",
        label=i % 2,
        generator=None if i % 2 == 0 else "sdv4",
        split="test",
        width=64 + i,
        height=64,
        format="PNG" if i % 3 else "JPEG",
        jpeg_quality=None if i % 3 else 75,
        sha256=hashlib.sha256(str(i).encode()).hexdigest(),
    )
    values.update(changes)
    return ManifestRow(**values)  # type: ignore[arg-type]


def good_line(i: int = 0) -> str:
    return json.dumps(dataclasses.asdict(make_row(i)))


def test_round_trip_keeps_rows_order_and_hash(tmp_path: Path) -> None:
    rows = [make_row(i) for i in range(7)]
    path = tmp_path / "manifest.jsonl"

    digest = write_manifest(iter(rows), path)

    assert list(read_manifest(path)) == rows
    assert digest == manifest_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_written_bytes_are_canonical(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    write_manifest([make_row(3)], path)

    data = path.read_bytes()
    # Written out by hand: sorted keys, no spaces, and the chroma keys left out because they are None.
    expected = (
        '{"format":"JPEG","generator":"sdv4","height":64,"jpeg_quality":75,"label":1,'
        f'"path":"images/test/sdv4/0003.png","sha256":"{make_row(3).sha256}","split":"test","width":67}}\n'
    )
    assert data == expected.encode("ascii")
    assert b"\r" not in data and b", " not in data


def test_write_consumes_a_generator_lazily(tmp_path: Path) -> None:
    produced: list[int] = []

    def rows() -> Iterator[ManifestRow]:
        for i in range(5):
            produced.append(i)
            yield make_row(i)

    write_manifest(rows(), tmp_path / "m.jsonl")
    assert produced == [0, 1, 2, 3, 4]
    assert len((tmp_path / "m.jsonl").read_bytes().splitlines()) == 5


def test_hash_changes_when_any_row_changes(tmp_path: Path) -> None:
    rows = [make_row(i) for i in range(4)]
    base = write_manifest(rows, tmp_path / "a.jsonl")
    changed = rows[:2] + [dataclasses.replace(rows[2], jpeg_quality=90)] + rows[3:]
    assert write_manifest(changed, tmp_path / "b.jsonl") != base
    assert write_manifest(list(reversed(rows)), tmp_path / "c.jsonl") != base
    assert write_manifest(rows, tmp_path / "d.jsonl") == base


BAD_LINES = {
    "not json": "{not json",
    "not an object": "[1, 2]",
    "missing key": json.dumps({k: v for k, v in json.loads(good_line()).items() if k != "sha256"}),
    "extra key": json.dumps({**json.loads(good_line()), "source": "x"}),
    "label is a string": json.dumps({**json.loads(good_line()), "label": "1"}),
    "label is a bool": json.dumps({**json.loads(good_line()), "label": True}),
    "label out of range": json.dumps({**json.loads(good_line()), "label": 2}),
    "unknown split": json.dumps({**json.loads(good_line()), "split": "dev"}),
    "zero width": json.dumps({**json.loads(good_line()), "width": 0}),
    "float height": json.dumps({**json.loads(good_line()), "height": 64.0}),
    "bad quality": json.dumps({**json.loads(good_line()), "jpeg_quality": 101}),
    "short sha": json.dumps({**json.loads(good_line()), "sha256": "abc"}),
    "absolute path": json.dumps({**json.loads(good_line()), "path": "/etc/passwd"}),
    "parent path": json.dumps({**json.loads(good_line()), "path": "images/../../x.png"}),
    "empty generator": json.dumps({**json.loads(good_line()), "generator": ""}),
    "empty line": "",
}


@pytest.mark.parametrize("bad", sorted(BAD_LINES))
def test_a_malformed_line_raises_dataset_error_naming_the_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join([good_line(0), good_line(1), BAD_LINES[bad], good_line(2)]) + "\n")

    rows = read_manifest(path)
    assert next(rows) == make_row(0)  # streamed: good lines come out before the bad one is reached
    with pytest.raises(DatasetError, match="line 3"):
        list(rows)


def test_missing_manifest_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        list(read_manifest(tmp_path / "nope.jsonl"))
    with pytest.raises(DatasetError, match="does not exist"):
        manifest_sha256(tmp_path / "nope.jsonl")


def test_rows_are_checked_when_built() -> None:
    with pytest.raises(DatasetError, match="relative"):
        make_row(0, path="C:/data/x.png")
    with pytest.raises(DatasetError, match="label"):
        make_row(0, label=-1)


def test_a_failed_write_leaves_no_manifest(tmp_path: Path) -> None:
    def rows() -> Iterator[ManifestRow]:
        yield make_row(0)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_manifest(rows(), tmp_path / "m.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_file_sha256_streams_large_files(tmp_path: Path) -> None:
    data = bytes(range(256)) * (5 * 4096 + 17)  # > 5 MiB, not a multiple of the chunk size
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_subset_counts_per_generator_and_split() -> None:
    rows = [make_row(i) for i in range(5)] + [make_row(9, split="train")]
    assert subset_counts(rows) == {
        (None, "test"): {0: 3, 1: 0},
        ("sdv4", "test"): {0: 0, 1: 2},
        ("sdv4", "train"): {0: 0, 1: 1},
    }


def test_a_schema_v1_manifest_reads_as_none_and_keeps_its_bytes(tmp_path: Path) -> None:
    # v1 lines, as written before the chroma keys existed (every field, sorted, compact).
    v1_fields = ("format", "generator", "height", "jpeg_quality", "label", "path", "sha256", "split", "width")
    lines = [json.dumps({k: dataclasses.asdict(make_row(i))[k] for k in v1_fields}, sort_keys=True,
                        separators=(",", ":")) + "\n" for i in range(6)]
    old = tmp_path / "v1.jsonl"
    old.write_text("".join(lines), encoding="ascii")
    rows = list(read_manifest(old))
    assert all(row.chroma_subsampling is None and row.chroma_quality is None for row in rows)
    digest = write_manifest(rows, tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == old.read_bytes()
    assert digest == file_sha256(old)


def test_chroma_traits_are_written_and_read_back(tmp_path: Path) -> None:
    rows = [make_row(0, format="JPEG", jpeg_quality=96, chroma_subsampling="4:2:0", chroma_quality=96),
            make_row(3, chroma_subsampling="1x1")]  # a greyscale JPEG: a layout but no chroma table
    write_manifest(rows, tmp_path / "manifest.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert (lines[0]["chroma_subsampling"], lines[0]["chroma_quality"]) == ("4:2:0", 96)
    assert lines[1]["chroma_subsampling"] == "1x1" and "chroma_quality" not in lines[1]
    assert list(read_manifest(tmp_path / "manifest.jsonl")) == rows
    # Positional construction (the mini variants build rows so) still works without the two new fields.
    assert ManifestRow(*dataclasses.astuple(make_row(1))[:9]) == make_row(1)


@pytest.mark.parametrize("changes, message", [
    ({"chroma_quality": 0}, "chroma quality"), ({"chroma_quality": True}, "chroma quality"),
    ({"chroma_subsampling": ""}, "chroma subsampling"), ({"chroma_subsampling": 420}, "chroma subsampling"),
])
def test_bad_chroma_traits_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        make_row(0, **changes)
