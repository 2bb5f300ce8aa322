"""The unbiased GenImage builder: one test per rule of the recipe, on a miniature GenImage-like dataset."""
from __future__ import annotations

import errno
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from evaluation.datasets import unbiased
from evaluation.datasets.manifest import ManifestRow, file_sha256, read_manifest, write_manifest
from evaluation.datasets.unbiased import (
    DROP_BALANCING,
    DROP_NOT_QF,
    DROP_TOO_SMALL,
    DROP_WINDOW,
    build_unbiased,
    image_class,
)
from evaluation.errors import DatasetError

# (relative path, label, generator, split, (width, height), JPEG quality or None for PNG)
Spec = tuple[str, int, str, str, tuple[int, int], "int | None"]


def _noise(size: tuple[int, int], salt: int) -> Image.Image:
    # Noise, not flat colour, so that JPEG encoding has real work to do and files differ.
    pixels = np.random.default_rng(salt).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def make_dataset(root: Path, specs: Sequence[Spec]) -> Path:
    """Write the images and a manifest whose fields are measured from the files."""
    rows = []
    for salt, (rel, label, gen, split, size, quality) in enumerate(specs):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        image = _noise(size, salt)
        if quality is None:
            image.save(path, "PNG")
        else:
            image.save(path, "JPEG", quality=quality)
        with Image.open(path) as opened:
            width, height, fmt = opened.width, opened.height, opened.format
        rows.append(ManifestRow(rel, label, gen, split, width, height, fmt, quality, file_sha256(path)))
    write_manifest(rows, root / "manifest.jsonl")
    return root


def genimage_specs() -> list[Spec]:
    """gen64 (64-px fakes, window 56-69) in train and test, gen32 (32-px fakes, window 28-34) in test."""
    nat = "gen64/sub/train/nature"
    specs: list[Spec] = [
        (f"{nat}/n00000001_1.JPEG", 0, "gen64", "train", (60, 64), 96),  # kept
        (f"{nat}/n00000001_2.JPEG", 0, "gen64", "train", (64, 68), 96),  # kept
        (f"{nat}/n00000002_3.JPEG", 0, "gen64", "train", (64, 64), 96),  # kept
        (f"{nat}/n00000002_4.JPEG", 0, "gen64", "train", (40, 64), 96),  # width below the window
        (f"{nat}/n00000003_5.JPEG", 0, "gen64", "train", (80, 80), 96),  # both sides above
        (f"{nat}/n00000003_6.JPEG", 0, "gen64", "train", (64, 90), 96),  # height above
        (f"{nat}/n00000003_7.JPEG", 0, "gen64", "train", (64, 64), 75),  # wrong quality
    ]
    specs += [(f"gen64/sub/train/ai/{i:03d}_gen64_{i:05d}.png", 1, "gen64", "train", (64, 64), None) for i in range(5)]
    specs += [
        ("gen64/sub/val/nature/n00000001_8.JPEG", 0, "gen64", "test", (64, 64), 96),
        ("gen64/sub/val/nature/n00000001_9.JPEG", 0, "gen64", "test", (58, 66), 96),
        ("gen64/sub/val/nature/n00000001_10.JPEG", 0, "gen64", "test", (64, 64), 75),
        ("gen64/sub/val/ai/001_gen64_00001.png", 1, "gen64", "test", (64, 64), None),
        ("gen64/sub/val/ai/001_gen64_00002.png", 1, "gen64", "test", (64, 64), None),
        ("gen32/sub/val/nature/n00000004_1.JPEG", 0, "gen32", "test", (30, 30), 96),
        ("gen32/sub/val/nature/n00000004_2.JPEG", 0, "gen32", "test", (28, 34), 96),
        ("gen32/sub/val/nature/n00000004_3.JPEG", 0, "gen32", "test", (64, 64), 96),  # outside gen32's window
    ]
    specs += [(f"gen32/sub/val/ai/{i:03d}_gen32_{i:05d}.png", 1, "gen32", "test", (32, 32), None) for i in range(3)]
    return specs


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "genimage", genimage_specs())


def rows_of(root: Path) -> list[ManifestRow]:
    return list(read_manifest(root / "manifest.jsonl"))


def test_image_class_reads_wnids_and_indices() -> None:
    assert image_class("a/b/n01440764_10026.JPEG") == "n01440764"
    assert image_class("000_sdv4_00001.png") == "000"
    assert image_class("x/7_biggan_00094.png") == "007"
    assert image_class("ILSVRC2012_val_00000001.JPEG") is None
    assert image_class("1234_too_big.png") is None
    assert image_class("sdv4_00001.png") is None


def test_only_qf96_naturals_survive(source: Path, tmp_path: Path) -> None:
    summary = build_unbiased(source, tmp_path / "out")
    reals = [row for row in rows_of(tmp_path / "out") if row.label == 0]
    assert reals and all(row.format == "JPEG" and row.jpeg_quality == 96 for row in reals)
    assert summary.dropped[DROP_NOT_QF] == 2
    # With qf=75 only the two quality-75 naturals qualify (one per gen64 split).
    summary75 = build_unbiased(source, tmp_path / "out75", qf=75)
    real_counts = {key: n for key, n in summary75.counts.items() if key[2] == 0}
    assert real_counts == {("gen64", "test", 0): 1, ("gen64", "train", 0): 1}


def test_size_window_on_both_sides(source: Path, tmp_path: Path) -> None:
    summary = build_unbiased(source, tmp_path / "out")
    windows = {"gen64": (56, 69), "gen32": (28, 34)}  # round(s*450/512), round(s*550/512)
    for row in rows_of(tmp_path / "out"):
        low, high = windows[row.generator or ""]
        assert low <= row.width <= high and low <= row.height <= high
    assert summary.dropped[DROP_WINDOW] == 4
    # An override narrows gen64's window to exactly 64 px: the 60x64, 64x68 and 58x66 naturals go too.
    narrow = build_unbiased(source, tmp_path / "narrow", windows={"gen64": (64, 64)})
    assert narrow.dropped[DROP_WINDOW] == 4 + 3
    assert narrow.centre_crop["gen64"] == 64


def test_generated_images_become_jpeg_at_qf(source: Path, tmp_path: Path) -> None:
    build_unbiased(source, tmp_path / "out", qf=96)
    fakes = [row for row in rows_of(tmp_path / "out") if row.label == 1]
    reference = io.BytesIO()
    _noise((64, 64), 0).save(reference, "JPEG", quality=96)
    reference.seek(0)
    with Image.open(reference) as fresh:
        expected_tables = fresh.quantization
    for row in fakes:
        path = tmp_path / "out" / row.path
        assert row.path.endswith(".jpg") and (row.format, row.jpeg_quality) == ("JPEG", 96)
        assert row.sha256 == file_sha256(path)
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (row.width, row.height)
            assert image.quantization == expected_tables
            assert JpegImagePlugin.get_sampling(image) == 2  # 4:2:0


def test_naturals_are_hard_links_and_byte_identical(source: Path, tmp_path: Path) -> None:
    summary = build_unbiased(source, tmp_path / "out")
    reals = [row for row in rows_of(tmp_path / "out") if row.label == 0]
    for row in reals:
        original, linked = source / row.path, tmp_path / "out" / row.path
        assert os.stat(original).st_ino == os.stat(linked).st_ino
        assert original.read_bytes() == linked.read_bytes()
        assert file_sha256(linked) == row.sha256
    assert (summary.linked, summary.copied, summary.notes) == (len(reals), 0, ())


def test_naturals_are_copied_only_across_filesystems(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(unbiased.os, "link", cross_device)
    summary = build_unbiased(source, tmp_path / "out")
    assert summary.linked == 0 and summary.copied == 7
    assert "copied" in summary.notes[0]
    for row in rows_of(tmp_path / "out"):
        if row.label == 0:
            assert (tmp_path / "out" / row.path).read_bytes() == (source / row.path).read_bytes()

    def forbidden(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(unbiased.os, "link", forbidden)
    with pytest.raises(DatasetError, match="could not link"):
        build_unbiased(source, tmp_path / "out2")


def test_balancing_keeps_equal_counts(source: Path, tmp_path: Path) -> None:
    summary = build_unbiased(source, tmp_path / "out")
    assert dict(summary.counts) == {
        ("gen32", "test", 0): 2,
        ("gen32", "test", 1): 2,
        ("gen64", "test", 0): 2,
        ("gen64", "test", 1): 2,
        ("gen64", "train", 0): 3,
        ("gen64", "train", 1): 3,
    }
    # gen64/train: 3 naturals against 5 fakes; gen32/test: 2 against 3.
    assert summary.dropped[DROP_BALANCING] == 2 + 1
    assert sum(summary.dropped.values()) + sum(summary.counts.values()) == len(genimage_specs())


def test_balancing_is_deterministic_per_seed(source: Path, tmp_path: Path) -> None:
    first = build_unbiased(source, tmp_path / "a", seed=42)
    again = build_unbiased(source, tmp_path / "b", seed=42)
    assert first.manifest_sha256 == again.manifest_sha256
    assert (tmp_path / "a/manifest.jsonl").read_bytes() == (tmp_path / "b/manifest.jsonl").read_bytes()
    selections = {
        tuple(row.path for row in rows_of(tmp_path / f"s{seed}"))
        for seed in range(8)
        if build_unbiased(source, tmp_path / f"s{seed}", seed=seed)
    }
    assert len(selections) > 1  # there are 10 ways to pick 3 of 5 fakes, so seeds must not all agree


def test_balancing_per_class_when_both_labels_name_wnids(tmp_path: Path) -> None:
    specs: list[Spec] = [
        ("g/train/nature/n00000001_1.JPEG", 0, "g", "train", (64, 64), 96),
        ("g/train/nature/n00000001_2.JPEG", 0, "g", "train", (64, 64), 96),
        ("g/train/nature/n00000002_3.JPEG", 0, "g", "train", (64, 64), 96),
        ("g/train/ai/n00000001_g_1.png", 1, "g", "train", (64, 64), None),
        ("g/train/ai/n00000002_g_2.png", 1, "g", "train", (64, 64), None),
        ("g/train/ai/n00000002_g_3.png", 1, "g", "train", (64, 64), None),
        ("g/train/ai/n00000002_g_4.png", 1, "g", "train", (64, 64), None),
    ]
    summary = build_unbiased(make_dataset(tmp_path / "src", specs), tmp_path / "out")
    # Per class: one of each label in each class; per group it would have been 3 and 3.
    assert dict(summary.counts) == {("g", "train", 0): 2, ("g", "train", 1): 2}
    kept = rows_of(tmp_path / "out")
    for label in (0, 1):
        assert sorted(image_class(row.path) for row in kept if row.label == label) == ["n00000001", "n00000002"]


def test_dataset_json_records_crop_quality_and_source(source: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    summary = build_unbiased(source, tmp_path / "out", seed=3, progress=messages.append)
    assert messages and summary.manifest_sha256 in messages[-1]
    info = json.loads((tmp_path / "out/dataset.json").read_text())
    assert info == {
        "centre_crop": {"gen32": 28, "gen64": 56},
        "jpeg_quality": 96,
        "recipe": "unbiased-genimage v1",
        "seed": 3,
        "source_manifest_sha256": file_sha256(source / "manifest.jsonl"),
    }
    assert dict(summary.centre_crop) == info["centre_crop"]
    assert summary.manifest_sha256 == file_sha256(tmp_path / "out/manifest.jsonl")


def test_generated_images_smaller_than_the_crop_are_dropped(source: Path, tmp_path: Path) -> None:
    summary = build_unbiased(source, tmp_path / "out", windows={"gen32": (33, 40)})
    assert summary.dropped[DROP_TOO_SMALL] == 3
    assert "gen32" not in summary.centre_crop


def test_missing_manifest_or_wrong_root_is_a_clear_error(source: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist or is not a folder"):
        build_unbiased(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="there is no manifest.jsonl"):
        build_unbiased(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(DatasetError, match="different folder"):
        build_unbiased(source, source)
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("x")
    with pytest.raises(DatasetError, match="must be empty"):
        build_unbiased(source, tmp_path / "full")
    with pytest.raises(DatasetError, match="no such generator"):
        build_unbiased(source, tmp_path / "out", windows={"sdv9": (1, 2)})
    with pytest.raises(DatasetError, match="low <= high"):
        build_unbiased(source, tmp_path / "out", windows={"gen64": (70, 60)})
    with pytest.raises(DatasetError, match="from 1 to 100"):
        build_unbiased(source, tmp_path / "out", qf=0)
    with pytest.raises(DatasetError, match="no image survived"):
        build_unbiased(source, tmp_path / "out", qf=50)
    assert not (tmp_path / "out").exists()


def test_a_changed_generated_image_is_refused(source: Path, tmp_path: Path) -> None:
    _noise((64, 64), 999).save(source / "gen64/sub/val/ai/001_gen64_00001.png", "PNG")
    with pytest.raises(DatasetError, match="does not match the sha256"):
        build_unbiased(source, tmp_path / "out")
    assert not (tmp_path / "out/manifest.jsonl").exists()
