"""The GenImage reader on a miniature GenImage tree written here: rows, known-bad files, workers, resume."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.datasets.genimage import STATE, _SimulatedCrash, scan_genimage
from evaluation.datasets.manifest import ManifestRow, manifest_sha256, read_manifest
from evaluation.errors import DatasetError

SUB = "imagenet_ai_0419_biggan"  # BigGAN uses the archives' extra level; ADM the documented layout


def _image_bytes(size: tuple[int, int], fmt: str, quality: int | None, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **({"quality": quality} if quality else {}))
    return buffer.getvalue()


# relative path -> (label, generator, split, (width, height), format, jpeg quality)
GOOD: dict[str, tuple[int, str, str, tuple[int, int], str, int | None]] = {
    "ADM/train/ai/a1.png": (1, "ADM", "train", (32, 32), "PNG", None),
    "ADM/train/ai/a2.png": (1, "ADM", "train", (32, 32), "PNG", None),
    "ADM/train/nature/n1.JPEG": (0, "ADM", "train", (40, 30), "JPEG", 96),
    "ADM/train/nature/n2.JPEG": (0, "ADM", "train", (50, 20), "JPEG", 75),
    "ADM/val/ai/v1.png": (1, "ADM", "test", (32, 32), "PNG", None),
    "ADM/val/nature/vn1.JPEG": (0, "ADM", "test", (24, 36), "JPEG", 50),
    f"BigGAN/{SUB}/train/ai/b1.png": (1, "BigGAN", "train", (16, 16), "PNG", None),
    f"BigGAN/{SUB}/train/ai/b2.png": (1, "BigGAN", "train", (16, 16), "PNG", None),
    f"BigGAN/{SUB}/train/nature/bn1.JPEG": (0, "BigGAN", "train", (64, 48), "JPEG", 30),
    f"BigGAN/{SUB}/train/nature/bn2.JPEG": (0, "BigGAN", "train", (33, 17), "JPEG", 90),
    f"BigGAN/{SUB}/val/ai/bv1.png": (1, "BigGAN", "test", (16, 16), "PNG", None),
    f"BigGAN/{SUB}/val/nature/bvn1.JPEG": (0, "BigGAN", "test", (20, 20), "JPEG", 96),
}
BAD = {
    "ADM/val/nature/empty.JPEG": "empty",
    f"BigGAN/{SUB}/train/nature/broken.JPEG": "cannot be decoded",
    f"BigGAN/{SUB}/val/ai/garbage.png": "cannot be decoded",
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("genimage")
    for seed, (rel, (_, _, _, size, fmt, quality)) in enumerate(GOOD.items()):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_image_bytes(size, fmt, quality, seed))
    (root / "ADM/val/nature/empty.JPEG").write_bytes(b"")
    whole = _image_bytes((64, 64), "JPEG", 90, 99)
    (root / f"BigGAN/{SUB}/train/nature/broken.JPEG").write_bytes(whole[: len(whole) // 2])
    (root / f"BigGAN/{SUB}/val/ai/garbage.png").write_bytes(b"this is not an image at all")
    # Files outside the layout are ignored, as are hidden files.
    (root / "README.txt").write_text("GenImage copy")
    (root / "ADM/notes.txt").write_text("notes")
    (root / "ADM/train/ai/.DS_Store").write_bytes(b"x")
    return root


def _scan(root: Path, out: Path, **kwargs: object):
    return scan_genimage(root, out, progress=False, **kwargs)


def test_rows_and_known_bad(tree: Path, tmp_path: Path) -> None:
    summary = _scan(tree, tmp_path, workers=1)
    rows = list(read_manifest(tmp_path / "manifest.jsonl"))
    assert [r.path for r in rows] == sorted(GOOD)  # sorted walk order
    for row in rows:
        label, generator, split, (width, height), fmt, quality = GOOD[row.path]
        assert (row.label, row.generator, row.split) == (label, generator, split)
        assert (row.width, row.height, row.format, row.jpeg_quality) == (width, height, fmt, quality)
        # Pillow's default encoding is 4:2:0 with both tables from one quality; a PNG has no JPEG traits.
        assert (row.chroma_subsampling, row.chroma_quality) == (("4:2:0", quality) if quality else (None, None))
        assert row.sha256 == hashlib.sha256((tree / row.path).read_bytes()).hexdigest()
    bad = [json.loads(line) for line in (tmp_path / "known_bad.jsonl").read_text().splitlines()]
    assert sorted(b["path"] for b in bad) == sorted(BAD)
    for entry in bad:
        assert BAD[entry["path"]] in entry["reason"]
    assert summary.n_rows == len(GOOD) and summary.n_known_bad == len(BAD)
    assert summary.manifest_sha256 == manifest_sha256(tmp_path / "manifest.jsonl")
    assert summary.counts[("ADM", "train")] == {0: 2, 1: 2}
    assert summary.counts[("BigGAN", "test")] == {0: 1, 1: 1}
    assert summary.resumed_from == 0
    assert not (tmp_path / STATE).exists() and not (tmp_path / "manifest.jsonl.partial").exists()


def test_workers_do_not_change_the_manifest(tree: Path, tmp_path: Path) -> None:
    one = _scan(tree, tmp_path / "one", workers=1)
    two = _scan(tree, tmp_path / "two", workers=2)
    assert one.manifest_sha256 == two.manifest_sha256
    assert (tmp_path / "one/known_bad.jsonl").read_bytes() == (tmp_path / "two/known_bad.jsonl").read_bytes()


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_crashes_gives_the_same_manifest(tree: Path, tmp_path: Path, workers: int) -> None:
    reference = _scan(tree, tmp_path / "ref", workers=1)
    out = tmp_path / "resumed"
    # Crash after 5 images with a record every 3: rows 4-5 are on disk but not counted, so the resume
    # must cut them off; then crash again mid-way before finishing.
    with pytest.raises(_SimulatedCrash):
        _scan(tree, out, workers=workers, flush_every=3, _crash_after=5)
    assert json.loads((out / STATE).read_text())["processed"] == 3
    assert not (out / "manifest.jsonl").exists()
    with pytest.raises(_SimulatedCrash):
        _scan(tree, out, workers=workers, flush_every=3, _crash_after=7)
    final = _scan(tree, out, workers=workers, flush_every=3)
    assert final.resumed_from == 9
    assert final.manifest_sha256 == reference.manifest_sha256
    assert (out / "known_bad.jsonl").read_bytes() == (tmp_path / "ref/known_bad.jsonl").read_bytes()


def test_unfinished_scan_of_another_folder_is_refused(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(_SimulatedCrash):
        _scan(tree, tmp_path, workers=1, flush_every=2, _crash_after=2)
    other = tmp_path / "other"
    (other / "X/train/ai").mkdir(parents=True)
    with pytest.raises(DatasetError, match="unfinished scan"):
        _scan(other, tmp_path, workers=1)


def test_rescan_into_the_images_folder_ignores_its_own_outputs(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    for rel in GOOD:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes((tree / rel).read_bytes())
    first = _scan(copy, copy, workers=1)
    again = _scan(copy, copy, workers=1)
    assert first.manifest_sha256 == again.manifest_sha256 and again.n_rows == len(GOOD)


def test_wrong_folder_shows_the_expected_layout(tmp_path: Path) -> None:
    (tmp_path / "photos/cats").mkdir(parents=True)
    (tmp_path / "photos/cats/1.png").write_bytes(b"")
    expected = r"does not look like a GenImage copy.*<Generator>/\{train,val\}/\{ai,nature\}"
    with pytest.raises(DatasetError, match=expected):
        _scan(tmp_path, tmp_path / "out")
    with pytest.raises(DatasetError, match="is not a folder"):
        _scan(tmp_path / "missing", tmp_path / "out")


def test_rows_are_valid_manifest_rows(tree: Path, tmp_path: Path) -> None:
    _scan(tree, tmp_path, workers=1)
    for line in (tmp_path / "manifest.jsonl").read_bytes().splitlines(keepends=True):
        assert ManifestRow(**json.loads(line)).to_line() == line  # canonical bytes


def test_resume_refuses_a_folder_that_changed(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    for rel in GOOD:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes((tree / rel).read_bytes())
    out = tmp_path / "out"
    with pytest.raises(_SimulatedCrash):
        _scan(copy, out, workers=1, flush_every=2, _crash_after=3)
    (copy / "ADM/train/ai/a0.png").write_bytes((tree / "ADM/train/ai/a1.png").read_bytes())  # sorts first
    with pytest.raises(DatasetError, match="changed since the unfinished scan"):
        _scan(copy, out, workers=1)
