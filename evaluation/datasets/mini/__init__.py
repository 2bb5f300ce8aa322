"""The mini benchmark: a SYNTHETIC benchmark built on the machine, without downloads, in under a minute.

Real images are 64 px tiles cut from photos shipped inside scikit-image, scikit-learn and matplotlib,
split into train/val/test by source photo. Generated images come from small but real generating
processes (see ``generators``). It exists so the whole platform, protocols included, can run and be
tested on a laptop; its numbers say nothing about detectors on real-world generated images.

Layout written by ``build_mini_benchmark``::

    out_dir/manifest.jsonl
    out_dir/images/<split>/real/<photo>_y<row>_x<col>.png    label 0, generator null (shared real pool)
    out_dir/images/<split>/vae/vae_<i>.png                  label 1
    out_dir/images/<split>/upsample/<photo>_y<row>_x<col>.png  label 1, made from that real tile
    out_dir/images/<split>/spectral/spectral_<i>.png        label 1
    out_dir/images/<split>/gan/gan_<i>.png                  label 1
    out_dir/images/<split>/blend/blend_<i>.png              label 1

``build_mini_variants`` (module ``variants``) derives the "biased" and "unbiased" versions from this one.

Importing this package imports neither torch nor the photo-shipping packages.
"""
from __future__ import annotations

import hashlib
import io
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.datasets.manifest import (
    LABEL_GENERATED,
    LABEL_REAL,
    MANIFEST_NAME,
    SPLITS,
    ManifestRow,
    write_manifest,
)
from evaluation.datasets.mini import generators as gen
from evaluation.datasets.mini.photos import PHOTO_SPLIT, SOURCES, TILE, Tile, real_tiles_by_split
from evaluation.errors import DatasetError

MINI_GENERATORS: tuple[str, ...] = ("vae", "upsample", "spectral", "gan", "blend")


def _photo_list(split: str) -> str:
    return ", ".join(name for name, where in sorted(PHOTO_SPLIT.items()) if where == split)


MINI_DESCRIPTION = (
    "SYNTHETIC mini benchmark, made on this machine for demonstration and testing; its results say nothing "
    "about real-world generators. Real images: non-overlapping 64x64 RGB tiles (luminance std >= 10) cut "
    "from 11 sample photos shipped inside scikit-image, scikit-learn and matplotlib, split by source photo "
    f"(train: {_photo_list('train')}; val: {_photo_list('val')}; test: {_photo_list('test')}). Generated "
    "images, as many per split and generator as real ones: 'vae', samples from the prior of a small "
    "convolutional VAE trained on the train tiles only (transposed-convolution decoder); 'upsample', each "
    "real tile of the split downsampled 4x and upsampled back with a fixed uneven transposed-convolution "
    "kernel (periodic spectral peaks); 'spectral', random-phase noise with a 1/f^a amplitude spectrum fitted "
    "to the train tiles; 'gan', samples from the prior of a small DCGAN (transposed-convolution generator with "
    "batch norm, convolutional discriminator, non-saturating loss) trained for 300 steps on the train tiles only; "
    "'blend', Laplacian-pyramid (Burt-Adelson) blends of two random real tiles of the split under a random "
    "smooth mask. All images of this original version are PNG; the real tiles' source photos were mostly JPEG."
)

MINI_LICENCE = "SYNTHETIC benchmark. Source photos and their terms: " + "; ".join(
    f"{source.name} ({source.package}, {source.origin}): {source.licence}" for source in SOURCES
) + ". Generated images are derived from these photos and are offered under the same terms."


@dataclass(frozen=True)
class MiniBuildSummary:
    """What a build produced. ``counts`` maps (generator, split, label) to a number of images."""

    manifest_sha256: str
    counts: Mapping[tuple[str | None, str, int], int] = field(default_factory=dict)
    seconds: float = 0.0
    manifest_path: Path = Path(MANIFEST_NAME)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an H x W x 3 uint8 array, with fixed options and no metadata (so bytes are stable)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


class _Writer:
    """Saves images under ``out_dir`` and turns each into its manifest row."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def save(self, pixels: np.ndarray, split: str, folder: str, stem: str, generator: str | None) -> ManifestRow:
        if pixels.shape != (TILE, TILE, 3) or pixels.dtype != np.uint8:
            raise DatasetError(f"internal error: image {stem} is {pixels.shape} {pixels.dtype}, not 64x64 RGB")
        data = encode_png(pixels)
        relative = f"images/{split}/{folder}/{stem}.png"
        target = self.out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        label = LABEL_REAL if generator is None else LABEL_GENERATED
        return ManifestRow(path=relative, label=label, generator=generator, split=split, width=TILE,
                           height=TILE, format="PNG", jpeg_quality=None, sha256=hashlib.sha256(data).hexdigest())


def _split_rows(writer: _Writer, split: str, tiles: Sequence[Tile], models: _Models,
                progress: Callable[[str], None] | None) -> Iterator[ManifestRow]:
    """Rows of one split in a fixed order: real tiles, then each generator in MINI_GENERATORS order."""
    index = SPLITS.index(split)
    if progress is not None:
        progress(f"writing {split}: {len(tiles)} real tiles and as many images per generator")
    for tile in tiles:
        yield writer.save(tile.pixels, split, "real", tile.name, None)
    for start in range(0, len(tiles), 128):  # batches keep memory flat whatever the split size
        for i, pixels in enumerate(models.vae.sample(len(tiles[start:start + 128]), index * 1000 + start // 128)):
            yield writer.save(pixels, split, "vae", f"vae_{start + i:04d}", "vae")
    for start in range(0, len(tiles), 128):
        batch = tiles[start:start + 128]
        for tile, pixels in zip(batch, gen.upsample_images(batch, models.upsample_kernel), strict=True):
            yield writer.save(pixels, split, "upsample", tile.name, "upsample")
    rng = gen.rng_for(models.seed, "spectral", index)
    for start in range(0, len(tiles), 128):
        images = gen.spectral_images(len(tiles[start:start + 128]), models.exponents, models.train_tiles, rng)
        for i, pixels in enumerate(images):
            yield writer.save(pixels, split, "spectral", f"spectral_{start + i:04d}", "spectral")
    for start in range(0, len(tiles), 128):
        for i, pixels in enumerate(models.gan.sample(len(tiles[start:start + 128]), index * 1000 + start // 128)):
            yield writer.save(pixels, split, "gan", f"gan_{start + i:04d}", "gan")
    rng = gen.rng_for(models.seed, "blend", index)
    for start in range(0, len(tiles), 128):
        for i, pixels in enumerate(gen.blend_images(tiles, len(tiles[start:start + 128]), rng)):
            yield writer.save(pixels, split, "blend", f"blend_{start + i:04d}", "blend")


@dataclass
class _Models:
    """Everything fitted once per build and shared by the splits."""

    seed: int
    train_tiles: Sequence[Tile]
    vae: gen.PriorSampler
    upsample_kernel: np.ndarray
    exponents: np.ndarray
    gan: gen.PriorSampler


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    images, manifest = out_dir / "images", out_dir / MANIFEST_NAME
    if images.exists() or manifest.exists():
        if not overwrite:
            raise DatasetError(
                f"{str(out_dir)!r} already holds a mini benchmark; remove it or build with overwrite=True"
            )
        # Only what a build writes is removed, never anything else the folder may hold.
        shutil.rmtree(images, ignore_errors=True)
        manifest.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def build_mini_benchmark(out_dir: Path, *, seed: int = 0, progress: Callable[[str], None] | None = None,
                         vae_steps: int = gen.VAE_STEPS, gan_steps: int = gen.GAN_STEPS,
                         tiles_per_split: int | None = None, overwrite: bool = False) -> MiniBuildSummary:
    """Build the SYNTHETIC mini benchmark into ``out_dir``; the same seed gives a byte-identical manifest.

    ``vae_steps``, ``gan_steps`` and ``tiles_per_split`` (the first real tiles of each split, in photo order)
    exist so tests can make a smaller (still real) build; the published benchmark uses the defaults.
    ``overwrite`` replaces a previous build's images and manifest in ``out_dir``.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, overwrite)
    by_split = {split: sorted(tiles, key=lambda t: (t.photo, t.y, t.x))[:tiles_per_split]
                for split, tiles in real_tiles_by_split(progress).items()}
    if progress is not None:
        progress(f"training the vae generator on {len(by_split['train'])} train tiles ({vae_steps} steps)")
    train = by_split["train"]
    models = _Models(seed, train, gen.PriorSampler("vae", train, seed=seed, steps=vae_steps, progress=progress),
                     gen.upsample_kernel(seed), gen.fit_power_law(train),
                     gen.PriorSampler("gan", train, seed=seed, steps=gan_steps, progress=progress))
    counts: dict[tuple[str | None, str, int], int] = {}

    def rows() -> Iterator[ManifestRow]:
        writer = _Writer(out_dir)
        for split in SPLITS:
            for row in _split_rows(writer, split, by_split[split], models, progress):
                key = (row.generator, row.split, row.label)
                counts[key] = counts.get(key, 0) + 1
                yield row

    manifest_path = out_dir / MANIFEST_NAME
    digest = write_manifest(rows(), manifest_path)
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(f"done: {sum(counts.values())} images, manifest sha256 {digest}, {seconds:.1f} s")
    return MiniBuildSummary(digest, counts, seconds, manifest_path)


__all__ = ["MINI_DESCRIPTION", "MINI_GENERATORS", "MINI_LICENCE", "MiniBuildSummary", "build_mini_benchmark"]
