"""The "biased" and "unbiased" versions of the SYNTHETIC mini benchmark, derived from a base build.

* **biased** reproduces GenImage's two shortcuts on the mini images. Like GenImage, each generator has its
  own real images: every real tile of a split is written once per generator, resized to a random square
  size in ``REAL_SIZE_RANGE`` and JPEG-encoded at a quality near 96 (``REAL_QUALITY_MAIN`` for 90 % of
  them, else uniform in ``REAL_QUALITY_OTHER``). Generated images stay PNG and are resized to one fixed
  size per generator (``BIASED_GENERATED_SIZE``). So format alone, or size alone, separates the classes.
* **unbiased** is made from the biased one by the same builder as Unbiased GenImage
  (``evaluation.datasets.unbiased.build_unbiased``) at quality 96, with a size window per generator of
  ``UNBIASED_WINDOW_HALF`` pixels either side of that generator's size.

Layout of the biased version::

    biased/manifest.jsonl
    biased/images/<split>/<generator>/real/<photo>_y<row>_x<col>.jpg   label 0, generator named
    biased/images/<split>/<generator>/fake/<stem>.png                  label 1
"""
from __future__ import annotations

import hashlib
import io
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from evaluation.datasets.manifest import LABEL_REAL, SPLITS, ManifestRow, read_manifest, write_manifest
from evaluation.datasets.mini import MANIFEST_NAME, MINI_DESCRIPTION, MINI_GENERATORS, MiniBuildSummary
from evaluation.errors import DatasetError

REAL_SIZE_RANGE = (48, 96)  # inclusive, square sides
REAL_QUALITY_MAIN = 96
REAL_QUALITY_MAIN_SHARE = 0.9
REAL_QUALITY_OTHER = (90, 95)  # inclusive
BIASED_GENERATED_SIZE: dict[str, int] = {"vae": 64, "upsample": 80, "spectral": 56, "gan": 72, "blend": 88}
UNBIASED_QF = 96
UNBIASED_WINDOW_HALF = 8
_STREAM = 77  # keeps these draws apart from the base build's random streams

MINI_BIASED_DESCRIPTION = (
    "SYNTHETIC mini benchmark, BIASED version: reproduces GenImage's shortcuts on purpose. Each generator has "
    "its own copy of the real tiles of a split, resized to a random square side in "
    f"{REAL_SIZE_RANGE[0]}-{REAL_SIZE_RANGE[1]} px and JPEG-encoded (quality {REAL_QUALITY_MAIN} for "
    f"{REAL_QUALITY_MAIN_SHARE:.0%}, else {REAL_QUALITY_OTHER[0]}-{REAL_QUALITY_OTHER[1]}); generated images stay "
    "PNG at one size per generator (" + ", ".join(f"{g} {s} px" for g, s in BIASED_GENERATED_SIZE.items())
    + "). Base version: " + MINI_DESCRIPTION
)
MINI_UNBIASED_DESCRIPTION = (
    "SYNTHETIC mini benchmark, UNBIASED version: made from the biased version by the Unbiased GenImage builder "
    f"(real JPEGs of quality exactly {UNBIASED_QF} whose size lies within {UNBIASED_WINDOW_HALF} px of their "
    f"generator's size, hard-linked; generated images JPEG-compressed once at quality {UNBIASED_QF}; balanced "
    "per generator and split; the centre crop to apply at load time is in dataset.json). Base version: "
    + MINI_DESCRIPTION
)


def unbiased_windows() -> dict[str, tuple[int, int]]:
    """The size window given to the unbiased builder for each generator: its size +- UNBIASED_WINDOW_HALF."""
    return {g: (s - UNBIASED_WINDOW_HALF, s + UNBIASED_WINDOW_HALF) for g, s in BIASED_GENERATED_SIZE.items()}


def _rng(seed: int, generator: str, split: str) -> np.random.Generator:
    key = int.from_bytes(hashlib.sha256(f"{generator}\x00{split}".encode()).digest()[:8], "big")
    return np.random.default_rng([seed, _STREAM, key])


def _resize(data: bytes, size: int):  # noqa: ANN202 - returns a PIL image; PIL is imported lazily
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


def _encode(image, fmt: str, quality: int | None) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=quality)  # Pillow defaults: 4:2:0, no optimisation
    else:
        image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _measured_quality(data: bytes, encoded: int) -> int:
    """The quality a reader would measure, by the estimator the audits use (the encoded one if it cannot say)."""
    from PIL import Image

    from evaluation.datasets.jpeg import estimate_jpeg_quality

    with Image.open(io.BytesIO(data)) as image:
        estimate = estimate_jpeg_quality(image)
    return encoded if estimate is None else estimate


def _write(root: Path, relative: str, data: bytes) -> str:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _biased_rows(base_root: Path, base_rows: list[ManifestRow], out: Path, seed: int,
                 progress: Callable[[str], None] | None) -> Iterator[ManifestRow]:
    generators = [g for g in MINI_GENERATORS if any(r.generator == g for r in base_rows)]
    missing = [g for g in generators if g not in BIASED_GENERATED_SIZE]
    if missing:
        raise DatasetError(f"internal error: no biased size for generator(s) {', '.join(missing)}")
    low_size, high_size = REAL_SIZE_RANGE
    low_q, high_q = REAL_QUALITY_OTHER
    for split in SPLITS:
        reals = [r for r in base_rows if r.split == split and r.generator is None]
        for generator in generators:
            if progress is not None:
                progress(f"biased: writing {split}/{generator}")
            rng = _rng(seed, generator, split)
            for row in reals:
                size = int(rng.integers(low_size, high_size + 1))
                main = rng.random() < REAL_QUALITY_MAIN_SHARE
                other = int(rng.integers(low_q, high_q + 1))
                quality = REAL_QUALITY_MAIN if main else other
                data = _encode(_resize((base_root / row.path).read_bytes(), size), "JPEG", quality)
                relative = f"images/{split}/{generator}/real/{PurePosixPath(row.path).stem}.jpg"
                yield ManifestRow(relative, LABEL_REAL, generator, split, size, size, "JPEG",
                                  _measured_quality(data, quality), _write(out, relative, data))
            size = BIASED_GENERATED_SIZE[generator]
            for row in base_rows:
                if row.split == split and row.generator == generator:
                    data = _encode(_resize((base_root / row.path).read_bytes(), size), "PNG", None)
                    relative = f"images/{split}/{generator}/fake/{PurePosixPath(row.path).stem}.png"
                    yield ManifestRow(relative, row.label, generator, split, size, size, "PNG", None,
                                      _write(out, relative, data))


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

    biased_sha = write_manifest(counted(), biased_root / MANIFEST_NAME)
    biased = MiniBuildSummary(biased_sha, counts, time.perf_counter() - started, biased_root / MANIFEST_NAME)
    if progress is not None:
        progress(f"biased: {sum(counts.values())} images, manifest sha256 {biased_sha}, {biased.seconds:.1f} s")

    started = time.perf_counter()
    result = build_unbiased(biased_root, unbiased_root, qf=UNBIASED_QF, windows=unbiased_windows(), seed=seed,
                            progress=progress)
    unbiased = MiniBuildSummary(
        result.manifest_sha256, {(g or None, s, label): n for (g, s, label), n in result.counts.items()},
        time.perf_counter() - started, unbiased_root / MANIFEST_NAME,
    )
    if progress is not None:
        progress(f"unbiased: {sum(unbiased.counts.values())} images, manifest sha256 {unbiased.manifest_sha256}, "
                 f"{unbiased.seconds:.1f} s")
    return biased, unbiased
