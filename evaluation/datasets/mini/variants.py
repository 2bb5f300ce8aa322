"""The "biased" and "unbiased" versions of the SYNTHETIC mini benchmark, derived from a base build.

* **biased** reproduces GenImage's shortcuts on the mini images so that they survive a detector's input
  pipeline at 64 px, as a 224 px crop of a ~400 px ImageNet JPEG keeps its JPEG traces. Like GenImage, each
  generator has its own real images: every real tile of a split is written once per generator as a square of
  a random side in ``REAL_SIZE_RANGE`` cut from its source photo around the tile (the tile's own pixels, no
  resampling), JPEG-encoded at that size with 4:2:0 chroma subsampling at a quality near 96
  (``REAL_QUALITY_MAIN`` for 90 % of them, else uniform in ``REAL_QUALITY_OTHER``). Generated images are
  the base build's lossless PNGs (full chroma), unchanged: all at one size, ``BIASED_GENERATED_SIZE``, as
  GenImage's three 512 px generators share one. The version's ``dataset.json`` asks for a ``BIASED_CROP`` px
  centre crop of every image at load time, so a 64 px detector is given the real JPEGs' pixels as decoded
  (8x8 blocks and subsampled chroma intact, at a block phase that depends on the image's size) and never
  resamples either class. Format and JPEG quality alone, or the file's size alone, separate the classes;
  after the crop the size no longer does, so what a detector can learn besides the generators' own traces
  is the JPEG shortcut.
* **unbiased** is made from the biased one by the same builder as Unbiased GenImage
  (``evaluation.datasets.unbiased.build_unbiased``) at quality 96, with the size window
  ``BIASED_GENERATED_SIZE`` +- ``UNBIASED_WINDOW_HALF`` px for every generator. Both classes are then JPEG
  4:2:0 at quality 96, centre-cropped to the window's lower bound and resized alike to the input size, so
  neither the format, nor the chroma, nor the size tells them apart.

Layout of the biased version::

    biased/manifest.jsonl
    biased/dataset.json                                                 centre crop per generator, recipe
    biased/images/<split>/<generator>/real/<photo>_y<row>_x<col>.jpg   label 0, generator named
    biased/images/<split>/<generator>/fake/<stem>.png                  label 1
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np

from evaluation.datasets.manifest import (
    LABEL_REAL,
    SPLITS,
    ManifestRow,
    centre_crop_box,
    file_sha256,
    read_manifest,
    write_manifest,
)
from evaluation.datasets.mini import MANIFEST_NAME, MINI_DESCRIPTION, MINI_GENERATORS, MiniBuildSummary
from evaluation.datasets.mini.photos import TILE, load_photo, source_named, tile_position
from evaluation.errors import DatasetError

# v1: real tiles resized to 48-96 px, then JPEG-encoded; generated PNG at 56-88 px; no centre crop.
# v2: real squares cut from the photo at 64-88 px and JPEG-encoded there (4:2:0); generated PNG unchanged at
#     64 px; a 64 px centre crop at load time, so the JPEG traces reach a 64 px detector unresampled.
MINI_VARIANTS_VERSION = 2
BIASED_RECIPE = f"mini-biased v{MINI_VARIANTS_VERSION}"
REAL_SIZE_RANGE = (64, 88)  # inclusive, square sides
REAL_SUBSAMPLING = "4:2:0"  # as most ImageNet JPEGs; Pillow's name for it
REAL_QUALITY_MAIN = 96
REAL_QUALITY_MAIN_SHARE = 0.9
REAL_QUALITY_OTHER = (90, 95)  # inclusive
BIASED_GENERATED_SIZE = TILE  # every generator's, square
BIASED_CROP = TILE
UNBIASED_QF = 96
UNBIASED_WINDOW_HALF = 8
_STREAM = 77  # keeps these draws apart from the base build's random streams

_WINDOW = (BIASED_GENERATED_SIZE - UNBIASED_WINDOW_HALF, BIASED_GENERATED_SIZE + UNBIASED_WINDOW_HALF)

MINI_BIASED_DESCRIPTION = (
    f"SYNTHETIC mini benchmark, BIASED version ({BIASED_RECIPE}): reproduces GenImage's shortcuts on purpose. "
    "Each generator has its own copy of the real tiles of a split: a square of random side "
    f"{REAL_SIZE_RANGE[0]}-{REAL_SIZE_RANGE[1]} px cut from the source photo around the tile (no resampling) "
    f"and JPEG-encoded at that size with {REAL_SUBSAMPLING} chroma subsampling (quality {REAL_QUALITY_MAIN} for "
    f"{REAL_QUALITY_MAIN_SHARE:.0%}, else {REAL_QUALITY_OTHER[0]}-{REAL_QUALITY_OTHER[1]}); generated images are "
    f"the base version's lossless PNGs, all {BIASED_GENERATED_SIZE} px. Every image is centre-cropped to "
    f"{BIASED_CROP} px at load time (dataset.json), so a {BIASED_CROP} px detector sees the real JPEGs' 8x8 blocks "
    "and subsampled chroma as decoded, never resampled. Base version: " + MINI_DESCRIPTION
)
MINI_UNBIASED_DESCRIPTION = (
    f"SYNTHETIC mini benchmark, UNBIASED version: made from the biased version ({BIASED_RECIPE}) by the "
    f"Unbiased GenImage builder (real JPEGs of quality exactly {UNBIASED_QF} whose sides lie in "
    f"{_WINDOW[0]}-{_WINDOW[1]} px, hard-linked; generated images JPEG-compressed once at quality {UNBIASED_QF} "
    f"with 4:2:0 chroma subsampling; balanced; every image centre-cropped to {_WINDOW[0]} px at load time, as "
    "dataset.json says). Base version: " + MINI_DESCRIPTION
)


def unbiased_windows(generators: Iterable[str] = MINI_GENERATORS) -> dict[str, tuple[int, int]]:
    """The size window given to the unbiased builder for each generator: the generated size +- the half width."""
    return {generator: _WINDOW for generator in generators}


def _rng(seed: int, generator: str, split: str) -> np.random.Generator:
    key = int.from_bytes(hashlib.sha256(f"{generator}\x00{split}".encode()).digest()[:8], "big")
    return np.random.default_rng([seed, _STREAM, key])


def _encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    # Fixed options (no optimisation, no metadata) keep the bytes stable from build to build.
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, subsampling=REAL_SUBSAMPLING)
    return buffer.getvalue()


class _Photos:
    """Source photos decoded on demand, one kept at a time (real rows come sorted by photo)."""

    def __init__(self) -> None:
        self.name, self.pixels = "", np.zeros((0, 0, 3), np.uint8)

    def window(self, stem: str, side: int) -> np.ndarray:
        """The side x side square of the tile's photo centred on the tile, shifted inward at the photo's edges,
        so that away from the edges the version's centre crop gives back exactly the tile."""
        photo, y, x = tile_position(stem)
        if photo != self.name:
            self.name, self.pixels = photo, load_photo(source_named(photo))
        height, width = self.pixels.shape[:2]
        if min(height, width) < side:
            raise DatasetError(f"the sample photo {photo} is smaller than {side} px; the packages' photos have changed")
        offset = centre_crop_box(side, side, TILE)[0]  # where the evaluation pipeline's crop starts
        top, left = min(max(y - offset, 0), height - side), min(max(x - offset, 0), width - side)
        return np.ascontiguousarray(self.pixels[top:top + side, left:left + side])


def _measured_traits(data: bytes) -> tuple[int | None, str | None, int | None]:
    """(luma quality, chroma subsampling, chroma quality) as a reader measures them, by the audits' estimators."""
    from PIL import Image

    from evaluation.datasets.jpeg import jpeg_traits

    with Image.open(io.BytesIO(data)) as image:
        return jpeg_traits(image)


def _write(root: Path, relative: str, data: bytes) -> str:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _real_rows(reals: list[ManifestRow], generator: str, split: str, out: Path, photos: _Photos,
               rng: np.random.Generator) -> Iterator[ManifestRow]:
    low_size, high_size = REAL_SIZE_RANGE
    low_q, high_q = REAL_QUALITY_OTHER
    for row in reals:
        size = int(rng.integers(low_size, high_size + 1))
        main = rng.random() < REAL_QUALITY_MAIN_SHARE
        other = int(rng.integers(low_q, high_q + 1))
        quality = REAL_QUALITY_MAIN if main else other
        stem = PurePosixPath(row.path).stem
        data = _encode_jpeg(photos.window(stem, size), quality)
        relative = f"images/{split}/{generator}/real/{stem}.jpg"
        luma_quality, subsampling, chroma_quality = _measured_traits(data)
        yield ManifestRow(relative, LABEL_REAL, generator, split, size, size, "JPEG", luma_quality,
                          _write(out, relative, data), chroma_subsampling=subsampling, chroma_quality=chroma_quality)


def _generated_rows(base_root: Path, fakes: list[ManifestRow], generator: str, out: Path) -> Iterator[ManifestRow]:
    for row in fakes:
        if (row.format, row.width, row.height) != ("PNG", BIASED_GENERATED_SIZE, BIASED_GENERATED_SIZE):
            raise DatasetError(f"the base image {row.path} is not a {BIASED_GENERATED_SIZE} px PNG; rebuild the base")
        relative = f"images/{row.split}/{generator}/fake/{PurePosixPath(row.path).stem}.png"
        yield replace(row, path=relative, sha256=_write(out, relative, (base_root / row.path).read_bytes()))


def _biased_rows(base_root: Path, base_rows: list[ManifestRow], out: Path, seed: int,
                 progress: Callable[[str], None] | None) -> Iterator[ManifestRow]:
    generators = [g for g in MINI_GENERATORS if any(r.generator == g for r in base_rows)]
    photos = _Photos()
    for split in SPLITS:
        reals = sorted((r for r in base_rows if r.split == split and r.generator is None), key=lambda r: r.path)
        for generator in generators:
            if progress is not None:
                progress(f"biased: writing {split}/{generator}")
            yield from _real_rows(reals, generator, split, out, photos, _rng(seed, generator, split))
            fakes = [r for r in base_rows if r.split == split and r.generator == generator]
            yield from _generated_rows(base_root, fakes, generator, out)


def _write_info(root: Path, generators: list[str], base_sha: str, seed: int) -> None:
    """dataset.json: the centre crop the evaluation pipeline applies at load time, and what made the version."""
    from evaluation.datasets.unbiased import DATASET_INFO_NAME

    info = {"centre_crop": {g: BIASED_CROP for g in sorted(generators)}, "recipe": BIASED_RECIPE, "seed": seed,
            "source_manifest_sha256": base_sha}
    (root / DATASET_INFO_NAME).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="ascii")


def _clear(root: Path, overwrite: bool) -> None:
    written = [root / "images", root / MANIFEST_NAME, root / "dataset.json"]
    if any(p.exists() for p in written):
        if not overwrite:
            raise DatasetError(f"{str(root)!r} already holds a mini variant; remove it or build with overwrite=True")
        shutil.rmtree(root / "images", ignore_errors=True)
        (root / MANIFEST_NAME).unlink(missing_ok=True)
        (root / "dataset.json").unlink(missing_ok=True)


def build_mini_variants(base_root: Path, biased_root: Path, unbiased_root: Path, *, seed: int = 0,
                        progress: Callable[[str], None] | None = None,
                        overwrite: bool = False) -> tuple[MiniBuildSummary, MiniBuildSummary]:
    """Write the biased version of the mini build in ``base_root``, then the unbiased one made from it.

    Deterministic: the same base build and seed give byte-identical manifests. Returns (biased, unbiased).
    """
    from evaluation.datasets.unbiased import build_unbiased

    base_root, biased_root, unbiased_root = Path(base_root), Path(biased_root), Path(unbiased_root)
    if not (base_root / MANIFEST_NAME).is_file():
        raise DatasetError(f"there is no {MANIFEST_NAME} in {str(base_root)!r}; build the mini benchmark first")
    started = time.perf_counter()
    _clear(biased_root, overwrite)
    _clear(unbiased_root, overwrite)
    biased_root.mkdir(parents=True, exist_ok=True)
    base_rows = list(read_manifest(base_root / MANIFEST_NAME))
    counts: dict[tuple[str | None, str, int], int] = {}

    def counted() -> Iterator[ManifestRow]:
        for row in _biased_rows(base_root, base_rows, biased_root, seed, progress):
            key = (row.generator, row.split, row.label)
            counts[key] = counts.get(key, 0) + 1
            yield row

    generators = sorted({r.generator for r in base_rows if r.generator})
    _write_info(biased_root, generators, file_sha256(base_root / MANIFEST_NAME), seed)
    biased_sha = write_manifest(counted(), biased_root / MANIFEST_NAME)
    biased = MiniBuildSummary(biased_sha, counts, time.perf_counter() - started, biased_root / MANIFEST_NAME)
    if progress is not None:
        progress(f"biased: {sum(counts.values())} images, manifest sha256 {biased_sha}, {biased.seconds:.1f} s")

    started = time.perf_counter()
    result = build_unbiased(biased_root, unbiased_root, qf=UNBIASED_QF, windows=unbiased_windows(generators), seed=seed,
                            progress=progress)
    unbiased = MiniBuildSummary(
        result.manifest_sha256, {(g or None, s, label): n for (g, s, label), n in result.counts.items()},
        time.perf_counter() - started, unbiased_root / MANIFEST_NAME,
    )
    if progress is not None:
        progress(f"unbiased: {sum(unbiased.counts.values())} images, manifest sha256 {unbiased.manifest_sha256}, "
                 f"{unbiased.seconds:.1f} s")
    return biased, unbiased
