"""The unbiased GenImage builder, rule by rule, on a miniature GenImage tree in the real archive layout
(``<gen>/<subfolder>/{train,val}/{ai,nature}/<file>``), scanned by the GenImage reader like a real copy."""
from __future__ import annotations

import errno
import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.datasets import unbiased
from evaluation.datasets.genimage import scan_genimage
from evaluation.datasets.manifest import ManifestRow, file_sha256, read_manifest
from evaluation.datasets.unbiased import (
    DROP_BALANCING,
    DROP_NOT_QF,
    DROP_WINDOW,
    RECIPE,
    build_unbiased,
    image_class,
)
from evaluation.errors import DatasetError

# 1000 made-up WordNet ids, not contiguous, so that a class index is a position in the sorted list, not a number.
WNIDS = sorted(f"n{13 * i + 5:08d}" for i in range(1000))
SUB = {"genA": "imagenet_ai_a", "genB": "imagenet_ai_b", "genC": "imagenet_ai_c"}
# genA and genC: 64-px fakes, window round(64*450/512)..round(64*550/512) = 56..69; genB: 32 px, window 28..34.


def _noise(size: tuple[int, int], salt: int) -> Image.Image:
    # Noise, not flat colour, so that JPEG encoding has real work to do and files differ.
    pixels = np.random.default_rng(salt).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


class Tree:
    """Writes a GenImage copy file by file."""

    def __init__(self, root: Path) -> None:
        self.root, self.salt = root, 0

    def add(self, gen: str, split: str, kind: str, name: str, size: tuple[int, int], quality: int | None) -> str:
        relative = f"{gen}/{SUB[gen]}/{split}/{kind}/{name}"
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        self.salt += 1
        if quality is None:
            _noise(size, self.salt).save(path, "PNG")
        else:
            _noise(size, self.salt).save(path, "JPEG", quality=quality)
        return relative

    def real(self, gen: str, split: str, cls: int, n: int, size: tuple[int, int], quality: int = 96) -> str:
        return self.add(gen, split, "nature", f"{WNIDS[cls]}_{n}.JPEG", size, quality)

    def fake(self, gen: str, split: str, cls: int, n: int, size: int | None = None) -> str:
        side = size or (32 if gen == "genB" else 64)
        return self.add(gen, split, "ai", f"{cls:03d}_{gen}_{n:05d}.png", (side, side), None)

    def class_list(self, count: int = 1000) -> None:
        """One small QF-75 real per class (never kept): the copy's file names then hold ``count`` WordNet ids."""
        for cls in range(count):
            self.add("genB", "train", "nature", f"{WNIDS[cls]}_list.JPEG", (8, 8), 75)

    def scan(self) -> Path:
        out = self.root.parent / f"{self.root.name}-version"
        scan_genimage(self.root, out, workers=1, progress=False)
        for entry in self.root.iterdir():  # the version folder holds the images beside its manifest
            os.symlink(entry, out / entry.name)
        return out


def genimage(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    tree, named = Tree(tmp_path / "copy"), {}
    tree.class_list()
    # genA train, class 0: two own reals, one in genB's folder (inside genA's window), 2 fakes -> 2 + 2.
    named["a0"] = tree.real("genA", "train", 0, 1, (60, 64))
    named["a0b"] = tree.real("genA", "train", 0, 2, (64, 68))
    named["b0"] = tree.real("genB", "train", 0, 3, (58, 66))
    tree.fake("genA", "train", 0, 1)
    tree.fake("genA", "train", 0, 2)
    # class 1: one real, three fakes -> 1 + 1; class 2: two reals, no fakes -> 0.
    named["a1"] = tree.real("genA", "train", 1, 4, (64, 64))
    for n in range(3):
        tree.fake("genA", "train", 1, 10 + n)
    tree.real("genA", "train", 2, 5, (64, 64))
    tree.real("genA", "train", 2, 6, (64, 64))
    # class 999 (the last id): a real in genC's folder only; a fake of class 999 in genA and one in genC,
    # so that one real is chosen by both generators.
    named["c999"] = tree.real("genC", "train", 999, 7, (62, 62))
    tree.fake("genA", "train", 999, 20)
    tree.fake("genC", "train", 999, 21)
    # Left out by the quality and window rules.
    named["q75"] = tree.real("genA", "train", 0, 8, (64, 64), quality=75)
    named["big"] = tree.real("genA", "train", 1, 9, (80, 80))
    # genB val (test): reals of class 3 pooled from genA's folder; fakes smaller than the crop are kept.
    named["vb"] = tree.real("genA", "val", 3, 10, (30, 30))
    tree.real("genB", "val", 3, 11, (28, 34))
    tree.real("genB", "val", 3, 12, (34, 28))
    tree.fake("genB", "val", 3, 30)
    tree.fake("genB", "val", 3, 31)
    tree.fake("genB", "val", 3, 32, size=20)
    return tree.scan(), named


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    return genimage(tmp_path_factory.mktemp("genimage"))


def rows_of(root: Path) -> list[ManifestRow]:
    return list(read_manifest(root / "manifest.jsonl"))


def test_image_class_reads_wnids_and_indices() -> None:
    assert image_class("a/b/n01440764_10026.JPEG") == "n01440764"
    assert image_class("000_sdv4_00001.png") == "000"
    assert image_class("x/7_biggan_00094.png") == "007"
    assert image_class("ILSVRC2012_val_00000001.JPEG") is None
    assert image_class("1234_too_big.png") is None
    assert image_class("sdv4_00001.png") is None


def test_reals_are_pooled_from_every_folder_and_balanced_per_class(source, tmp_path: Path) -> None:
    root, named = source
    summary = build_unbiased(root, tmp_path / "out")
    kept = rows_of(tmp_path / "out")
    per_class: Counter[tuple[str, str, int, str]] = Counter()
    for row in kept:
        key = image_class(row.path) or ""
        per_class[row.generator or "", row.split, row.label, WNIDS[int(key)] if key.isdigit() else key] += 1
    assert per_class == {
        ("genA", "train", 0, WNIDS[0]): 2, ("genA", "train", 1, WNIDS[0]): 2,
        ("genA", "train", 0, WNIDS[1]): 1, ("genA", "train", 1, WNIDS[1]): 1,
        ("genA", "train", 0, WNIDS[999]): 1, ("genA", "train", 1, WNIDS[999]): 1,
        ("genC", "train", 0, WNIDS[999]): 1, ("genC", "train", 1, WNIDS[999]): 1,
        ("genB", "test", 0, WNIDS[3]): 3, ("genB", "test", 1, WNIDS[3]): 3,
    }
    assert dict(summary.counts) == {("genA", "train", 0): 4, ("genA", "train", 1): 4, ("genB", "test", 0): 3,
                                    ("genB", "test", 1): 3, ("genC", "train", 0): 1, ("genC", "train", 1): 1}
    real_paths = {row.path for row in kept if row.label == 0}
    # genA's class-1 real is the only one, so it is kept; genB's val real from genA's folder is kept for genB.
    assert f"nature/genA/{named['a1']}" in real_paths and f"nature/genB/{named['vb']}" in real_paths
    # The real of class 999 in genC's folder serves both 64-px generators, as two rows and two links.
    assert {f"nature/genA/{named['c999']}", f"nature/genC/{named['c999']}"} <= real_paths
    # Class 0 of genA has three candidate reals (two own, one from genB's folder) for two places.
    assert len({f"nature/genA/{named[k]}" for k in ("a0", "a0b", "b0")} & real_paths) == 2
    assert not any(named[k] in path for k in ("q75", "big") for path in real_paths)


def test_drop_reasons_account_for_every_source_image(source, tmp_path: Path) -> None:
    root, _ = source
    summary = build_unbiased(root, tmp_path / "out")
    kept = rows_of(tmp_path / "out")
    used = {row.path.split("/", 2)[2] if row.label == 0 else row.path.removesuffix(".jpg") for row in kept}
    assert summary.dropped[DROP_NOT_QF] == 1000 + 1  # the class list and the quality-75 real
    assert summary.dropped[DROP_WINDOW] == 1  # 80x80 is outside every 64-px and 32-px window
    # Class 0: one of three reals; class 1: two fakes; class 2: two reals; the class-999 real is used twice.
    assert summary.dropped[DROP_BALANCING] == 1 + 2 + 2
    assert sum(summary.dropped.values()) + len(used) == len(rows_of(root))


def test_the_class_map_needs_all_1000_ids(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "copy")
    tree.class_list(999)
    tree.real("genA", "train", 0, 1, (64, 64))
    tree.fake("genA", "train", 0, 1)
    with pytest.raises(DatasetError) as refused:
        build_unbiased(tree.scan(), tmp_path / "out")
    assert "only 999 distinct ids are present (1 missing)" in refused.value.message
    assert "needs all 1000" in refused.value.message
    assert not (tmp_path / "out").exists()


def test_a_group_mixing_named_and_unnamed_classes_is_refused(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "copy")
    tree.class_list()
    tree.real("genA", "train", 0, 1, (64, 64))
    tree.add("genA", "train", "ai", "genA_00001.png", (64, 64), None)
    tree.add("genA", "train", "ai", "000_genA_00002.png", (64, 64), None)
    with pytest.raises(DatasetError, match="needs a class in every file name"):
        build_unbiased(tree.scan(), tmp_path / "out")


def test_without_class_keys_balancing_is_per_generator_and_split(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "copy")
    for n in range(3):
        tree.add("genA", "train", "nature", f"photo_{n}.jpg", (64, 64), 96)
        tree.add("genB", "train", "nature", f"photo_{n}.jpg", (30, 30), 96)
    for n in range(4):
        tree.add("genA", "train", "ai", f"genA_{n}.png", (64, 64), None)
    tree.add("genB", "train", "ai", "genB_0.png", (32, 32), None)
    summary = build_unbiased(tree.scan(), tmp_path / "out")
    assert dict(summary.counts) == {("genA", "train", 0): 3, ("genA", "train", 1): 3,
                                    ("genB", "train", 0): 1, ("genB", "train", 1): 1}


def test_the_selection_is_fixed_by_the_seed(source, tmp_path: Path) -> None:
    root, _ = source
    first = build_unbiased(root, tmp_path / "a", seed=42)
    again = build_unbiased(root, tmp_path / "b", seed=42)
    assert (tmp_path / "a/manifest.jsonl").read_bytes() == (tmp_path / "b/manifest.jsonl").read_bytes()
    assert first.manifest_sha256 == again.manifest_sha256
    selections = set()
    for seed in range(6):
        build_unbiased(root, tmp_path / f"s{seed}", seed=seed)
        selections.add(tuple(row.path for row in rows_of(tmp_path / f"s{seed}")))
    assert len(selections) > 1  # class 0 of genA picks 2 of 3 reals and class 1 one of 3 fakes


def test_generated_images_become_jpeg_at_qf_and_small_ones_are_kept(source, tmp_path: Path) -> None:
    root, _ = source
    build_unbiased(root, tmp_path / "out", qf=96)
    fakes = [row for row in rows_of(tmp_path / "out") if row.label == 1]
    reference = io.BytesIO()
    _noise((64, 64), 0).save(reference, "JPEG", quality=96)
    with Image.open(reference) as fresh:
        expected_tables = fresh.quantization
    for row in fakes:
        path = tmp_path / "out" / row.path
        assert row.path.endswith(".jpg") and row.sha256 == file_sha256(path)
        assert (row.format, row.jpeg_quality, row.chroma_subsampling, row.chroma_quality) == ("JPEG", 96, "4:2:0", 96)
        with Image.open(path) as image:
            assert image.size == (row.width, row.height) and image.quantization == expected_tables
    assert sorted(row.width for row in fakes if row.generator == "genB") == [20, 32, 32]  # 20 px < crop 28: kept


def test_reals_are_hard_links_one_per_generator(source, tmp_path: Path) -> None:
    root, named = source
    summary = build_unbiased(root, tmp_path / "out")
    reals = [row for row in rows_of(tmp_path / "out") if row.label == 0]
    for row in reals:
        prefix, generator, original = row.path.split("/", 2)
        assert (prefix, generator) == ("nature", row.generator)
        assert os.stat(root / original).st_ino == os.stat(tmp_path / "out" / row.path).st_ino
        assert file_sha256(tmp_path / "out" / row.path) == row.sha256
    assert os.stat(root / named["c999"]).st_nlink >= 3  # the source and its two links
    assert (summary.linked, summary.copied, summary.notes) == (len(reals), 0, ())


def test_reals_are_copied_only_across_filesystems(source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = source

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(unbiased.os, "link", cross_device)
    summary = build_unbiased(root, tmp_path / "out")
    assert summary.linked == 0 and summary.copied == 8 and "copied" in summary.notes[0]

    def forbidden(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(unbiased.os, "link", forbidden)
    with pytest.raises(DatasetError, match="could not link"):
        build_unbiased(root, tmp_path / "out2")


def test_size_window_override_and_dataset_json(source, tmp_path: Path) -> None:
    root, _ = source
    messages: list[str] = []
    summary = build_unbiased(root, tmp_path / "out", seed=3, windows={"genA": (64, 64)}, progress=messages.append)
    for row in rows_of(tmp_path / "out"):
        if row.label == 0 and row.generator == "genA":
            assert (row.width, row.height) == (64, 64)
    assert messages and summary.manifest_sha256 in messages[-1]
    info = json.loads((tmp_path / "out/dataset.json").read_text())
    assert info == {
        "centre_crop": {"genA": 64, "genB": 28, "genC": 56}, "jpeg_quality": 96, "manifest_schema": 2,
        "recipe": RECIPE, "seed": 3, "source_manifest_sha256": file_sha256(root / "manifest.jsonl"),
    }
    assert dict(summary.centre_crop) == info["centre_crop"]
    assert unbiased.recipe_rules(RECIPE)["rules"] == list(unbiased.RECIPE_RULES)
    assert unbiased.recipe_rules("unbiased-genimage v1") is None


def test_bad_input_is_a_clear_error(source, tmp_path: Path) -> None:
    root, _ = source
    with pytest.raises(DatasetError, match="does not exist or is not a folder"):
        build_unbiased(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="there is no manifest.jsonl"):
        build_unbiased(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(DatasetError, match="different folder"):
        build_unbiased(root, root)
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("x")
    with pytest.raises(DatasetError, match="must be empty"):
        build_unbiased(root, tmp_path / "full")
    with pytest.raises(DatasetError, match="no such generator"):
        build_unbiased(root, tmp_path / "out", windows={"sdv9": (1, 2)})
    with pytest.raises(DatasetError, match="low <= high"):
        build_unbiased(root, tmp_path / "out", windows={"genA": (70, 60)})
    with pytest.raises(DatasetError, match="from 1 to 100"):
        build_unbiased(root, tmp_path / "out", qf=0)
    with pytest.raises(DatasetError, match="no image survived"):
        build_unbiased(root, tmp_path / "out", qf=50)
    assert not (tmp_path / "out").exists()


def test_a_changed_generated_image_is_refused(tmp_path: Path) -> None:
    root, _ = genimage(tmp_path / "fresh")
    target = next((root / "genB/imagenet_ai_b/val/ai").iterdir())
    _noise((32, 32), 999).save(target, "PNG")
    with pytest.raises(DatasetError, match="does not match the sha256"):
        build_unbiased(root, tmp_path / "out")
    assert not (tmp_path / "out/manifest.jsonl").exists()
