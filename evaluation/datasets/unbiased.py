"""Build the "Unbiased GenImage" dataset version from an original GenImage version (research/seeds.md §1.5, §1.9).

GenImage's real images are ImageNet JPEGs of many sizes (mostly quality 96) while its generated images are
lossless PNGs of one fixed size per generator, so a detector can score well by spotting JPEG artefacts or the
image size. The recipe removes both shortcuts:

* Real (label 0) images: keep only JPEGs whose quality is exactly ``qf``, and only those whose width and height
  both lie in the generator's size window. They are never re-encoded; they are hard-linked into the new folder,
  so the new version costs no disk space for them. A copy is made only when linking fails because the two
  folders are on different filesystems, and the summary says so.
* The size window of a generator defaults to [round(s*450/512), round(s*550/512)], where s is the short side
  of the most common size of its generated images: 450-550 px for the 512-px generators, as in the paper.
* Generated (label 1) images: JPEG-compressed once at quality ``qf`` with Pillow's defaults (4:2:0 chroma
  subsampling, as the paper's code does) and stored with a ``.jpg`` suffix. A generated image smaller than the
  window's lower bound is dropped because it could not be centre-cropped to it.
* Centre crop: the paper crops both classes to the window's lower bound at load time, after compression.
  Cropping here would mean re-encoding the real JPEGs (which the recipe forbids) or storing them as PNG (which
  brings back a format bias), so the crop size is recorded in ``dataset.json`` (``centre_crop``) for the
  evaluation pipeline to apply when it loads the images.
* Balancing, per (generator, split): keep min(#real, #generated) of each label, drawn with a numpy Generator
  seeded from ``seed`` after sorting by path. When every row of both labels carries the same kind of ImageNet
  class key in its file name (both WordNet ids, or both class indices), the balancing is done per class
  instead, as the paper's ``--balance_train_classes`` does. Real GenImage names its real files by WordNet id
  and its generated files by class index; mapping one to the other needs the ImageNet class list, which we do
  not download, so raw GenImage is balanced per (generator, split) only.

Every split (train, val, test) is treated alike: Spectra offers the unbiased train split for training and
evaluates its test split as the bias-matched test split beside the raw one (DESIGN.md, "Benchmarks").

The manifest is written last, so a build that stops half-way leaves a folder without ``manifest.jsonl``,
which no reader mistakes for a finished version.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import MappingProxyType

import numpy as np
from PIL import Image

from evaluation.datasets.manifest import (
    LABEL_GENERATED,
    LABEL_REAL,
    ManifestRow,
    file_sha256,
    read_manifest,
    write_manifest,
)
from evaluation.errors import DatasetError

RECIPE = "unbiased-genimage v1"
MANIFEST_NAME = "manifest.jsonl"
DATASET_INFO_NAME = "dataset.json"

# Reasons an input row is left out, as they appear in ``UnbiasedSummary.dropped``.
DROP_NOT_QF = "real image is not a JPEG at the chosen quality"
DROP_WINDOW = "real image is outside the size window"
DROP_TOO_SMALL = "generated image is smaller than the centre crop"
DROP_BALANCING = "removed by balancing"

_WNID = re.compile(r"(n\d{8})(?=[_.]|$)")
_INDEX = re.compile(r"(\d{1,4})_")
_PROGRESS_EVERY = 1000  # images between progress messages: often enough to see movement, rarely enough to read


@dataclass(frozen=True)
class UnbiasedSummary:
    """What ``build_unbiased`` wrote and left out.

    ``counts`` maps (generator, split, label) to the number of images kept; ``dropped`` maps a reason to the
    number of input rows it removed; ``linked`` and ``copied`` count the real images placed by hard link or,
    when linking across filesystems was impossible, by copy.
    """

    manifest_sha256: str
    counts: Mapping[tuple[str, str, int], int]
    dropped: Mapping[str, int]
    linked: int
    copied: int
    centre_crop: Mapping[str, int]
    notes: tuple[str, ...] = field(default=())


def image_class(path: str) -> str | None:
    """The ImageNet class key in a GenImage file name, or None when the name carries none.

    Real ImageNet files look like ``n01440764_10026.JPEG`` and give the WordNet id (``n01440764``);
    generated files look like ``000_sdv4_00001.png`` and give the class index, zero-padded to three
    digits (``000``) so that ``0_...`` and ``000_...`` name the same class.
    """
    name = PurePosixPath(path).name
    if match := _WNID.match(name):
        return match.group(1)
    if (match := _INDEX.match(name)) and int(match.group(1)) < 1000:
        return f"{int(match.group(1)):03d}"
    return None


def _class_kind(key: str | None) -> str | None:
    if key is None:
        return None
    return "wnid" if key.startswith("n") else "index"


def _read_source(original_root: Path) -> tuple[list[ManifestRow], str]:
    if not original_root.is_dir():
        raise DatasetError(f"the original dataset folder {str(original_root)!r} does not exist or is not a folder")
    manifest = original_root / MANIFEST_NAME
    if not manifest.is_file():
        raise DatasetError(
            f"there is no {MANIFEST_NAME} in {str(original_root)!r}; point build_unbiased at the folder "
            "of an original GenImage dataset version"
        )
    rows = list(read_manifest(manifest))
    if not rows:
        raise DatasetError(f"the manifest in {str(original_root)!r} lists no images")
    unnamed = [row.path for row in rows if row.generator is None]
    if unnamed:
        raise DatasetError(
            f"the unbiased recipe needs every image to name its generator, but {unnamed[0]!r} does not"
        )
    return rows, file_sha256(manifest)


def _check_out_root(original_root: Path, out_root: Path) -> None:
    if out_root.resolve() == original_root.resolve():
        raise DatasetError("the unbiased version must be written to a different folder than the original")
    if out_root.exists() and (not out_root.is_dir() or any(out_root.iterdir())):
        raise DatasetError(f"the output folder {str(out_root)!r} must be empty or not exist yet")


def _generated_sizes(rows: Sequence[ManifestRow]) -> dict[str, int]:
    """Each generator's generated-image size: the short side of its most common (width, height)."""
    sizes: dict[str, Counter[tuple[int, int]]] = {}
    for row in rows:
        if row.label == LABEL_GENERATED and row.generator is not None:
            sizes.setdefault(row.generator, Counter())[(row.width, row.height)] += 1
    # Ties are broken by the smaller size so the result never depends on row order.
    return {gen: min(min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]) for gen, c in sizes.items()}


def _windows(
    rows: Sequence[ManifestRow], overrides: Mapping[str, tuple[int, int]] | None
) -> dict[str, tuple[int, int]]:
    generators = {row.generator for row in rows if row.generator is not None}
    windows = {
        gen: (round(s * 450 / 512), round(s * 550 / 512)) for gen, s in _generated_sizes(rows).items()
    }
    for gen, window in (overrides or {}).items():
        if gen not in generators:
            raise DatasetError(f"a size window is given for {gen!r}, but the manifest has no such generator")
        try:
            low, high = window
        except (TypeError, ValueError):
            raise DatasetError(f"the size window for {gen!r} must be a pair (low, high), not {window!r}") from None
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
        if not (whole and 0 < low <= high):
            raise DatasetError(f"the size window for {gen!r} must be two whole numbers 0 < low <= high, not {window!r}")
        windows[gen] = (low, high)
    return windows


def _filter(
    rows: Sequence[ManifestRow], qf: int, windows: Mapping[str, tuple[int, int]], dropped: Counter[str]
) -> list[ManifestRow]:
    """Apply the JPEG-quality, size-window and crop-size rules row by row."""
    kept = []
    for row in rows:
        window = windows.get(row.generator or "")
        if row.label == LABEL_REAL:
            if row.format.upper() not in ("JPEG", "JPG") or row.jpeg_quality != qf:
                dropped[DROP_NOT_QF] += 1
                continue
            # No window means the generator has no generated images; balancing will drop its reals anyway.
            if window and not (window[0] <= row.width <= window[1] and window[0] <= row.height <= window[1]):
                dropped[DROP_WINDOW] += 1
                continue
        elif window and min(row.width, row.height) < window[0]:
            dropped[DROP_TOO_SMALL] += 1
            continue
        kept.append(row)
    return kept


def _rng(seed: int, *parts: str) -> np.random.Generator:
    # One generator per group, keyed by the group's name, so adding a generator or split to the source
    # never changes the selection made for the others.
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])


def _draw(rng: np.random.Generator, rows: list[ManifestRow], k: int) -> list[ManifestRow]:
    ordered = sorted(rows, key=lambda row: row.path)
    picks = rng.choice(len(ordered), size=k, replace=False) if k else []
    return [ordered[i] for i in sorted(picks)]


def _balance_group(rng: np.random.Generator, reals: list[ManifestRow], fakes: list[ManifestRow]) -> list[ManifestRow]:
    real_kinds = {_class_kind(image_class(row.path)) for row in reals}
    fake_kinds = {_class_kind(image_class(row.path)) for row in fakes}
    if len(real_kinds) == 1 and real_kinds == fake_kinds and None not in real_kinds:
        by_class: dict[str, tuple[list[ManifestRow], list[ManifestRow]]] = {}
        for label_index, group in enumerate((reals, fakes)):
            for row in group:
                by_class.setdefault(image_class(row.path) or "", ([], []))[label_index].append(row)
        kept: list[ManifestRow] = []
        for key in sorted(by_class):
            class_reals, class_fakes = by_class[key]
            k = min(len(class_reals), len(class_fakes))
            kept += _draw(rng, class_reals, k) + _draw(rng, class_fakes, k)
        return kept
    k = min(len(reals), len(fakes))
    return _draw(rng, reals, k) + _draw(rng, fakes, k)


def _balance(rows: list[ManifestRow], seed: int, dropped: Counter[str]) -> list[ManifestRow]:
    """Keep equal numbers of real and generated images per (generator, split); output keeps source order."""
    groups: dict[tuple[str, str], tuple[list[ManifestRow], list[ManifestRow]]] = {}
    for row in rows:
        groups.setdefault((row.generator or "", row.split), ([], []))[row.label].append(row)
    # Rows are tracked by identity: a manifest does not promise unique paths, and equal rows must not merge.
    chosen: set[int] = set()
    for (gen, split), (reals, fakes) in sorted(groups.items()):
        chosen.update(id(row) for row in _balance_group(_rng(seed, gen, split), reals, fakes))
    dropped[DROP_BALANCING] += len(rows) - len(chosen)
    return [row for row in rows if id(row) in chosen]


def _output_path(row: ManifestRow) -> str:
    return row.path if row.label == LABEL_REAL else str(PurePosixPath(row.path).with_suffix(".jpg"))


def _check_collisions(rows: Sequence[ManifestRow]) -> None:
    seen: set[str] = set()
    for row in rows:
        out = _output_path(row)
        if out in seen:
            raise DatasetError(f"two kept images would both be written to {out!r}; rename one in the source")
        seen.add(out)


def _place_real(src: Path, dst: Path) -> bool:
    """Hard-link a real image; copy it only across filesystems. Returns True when linked."""
    try:
        os.link(src, dst)
        return True
    except FileNotFoundError:
        raise DatasetError(f"the image {str(src)!r} listed in the manifest does not exist") from None
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise DatasetError(f"could not link {str(src)!r} into the new version ({exc.strerror})") from None
    shutil.copyfile(src, dst)
    return False


def _compress_generated(src: Path, dst: Path, row: ManifestRow, qf: int) -> str:
    """JPEG-encode one generated image at ``qf`` after checking its bytes; returns the new file's sha256."""
    try:
        data = src.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"the image {str(src)!r} listed in the manifest does not exist") from None
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise DatasetError(f"the image {str(src)!r} does not match the sha256 in the manifest")
    try:
        with Image.open(io.BytesIO(data)) as image:
            # Pillow's defaults (4:2:0 subsampling, no optimisation) are what the paper's code uses.
            image.convert("RGB").save(dst, "JPEG", quality=qf)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"the image {str(src)!r} could not be read as an image ({exc})") from None
    return file_sha256(dst)


def _write_images(
    rows: Sequence[ManifestRow], original_root: Path, out_root: Path, qf: int, progress: Callable[[str], None]
) -> tuple[list[ManifestRow], int, int]:
    written, linked, copied = [], 0, 0
    for number, row in enumerate(rows, start=1):
        out_path = _output_path(row)
        src, dst = original_root / row.path, out_root / out_path
        dst.parent.mkdir(parents=True, exist_ok=True)
        if row.label == LABEL_REAL:
            if _place_real(src, dst):
                linked += 1
            else:
                copied += 1
            written.append(row)
        else:
            sha = _compress_generated(src, dst, row, qf)
            written.append(replace(row, path=out_path, format="JPEG", jpeg_quality=qf, sha256=sha))
        if number % _PROGRESS_EVERY == 0:
            progress(f"placed {number} of {len(rows)} images")
    return written, linked, copied


def _write_info(out_root: Path, crops: Mapping[str, int], qf: int, source_sha: str, seed: int) -> None:
    info = {
        "centre_crop": dict(sorted(crops.items())),
        "jpeg_quality": qf,
        "recipe": RECIPE,
        "seed": seed,
        "source_manifest_sha256": source_sha,
    }
    (out_root / DATASET_INFO_NAME).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="ascii")


def _counts(rows: Sequence[ManifestRow]) -> dict[tuple[str, str, int], int]:
    return dict(sorted(Counter((row.generator or "", row.split, row.label) for row in rows).items()))


def _check_qf(qf: int) -> None:
    if isinstance(qf, bool) or not isinstance(qf, int) or not 1 <= qf <= 100:
        raise DatasetError(f"the JPEG quality must be a whole number from 1 to 100, not {qf!r}")


def build_unbiased(
    original_root: Path,
    out_root: Path,
    *,
    qf: int = 96,
    windows: Mapping[str, tuple[int, int]] | None = None,
    seed: int = 42,
    progress: Callable[[str], None] | None = None,
) -> UnbiasedSummary:
    """Write the unbiased version of the dataset in ``original_root`` into ``out_root`` (see module doc)."""
    original_root, out_root = Path(original_root), Path(out_root)
    say = progress or (lambda message: None)
    _check_qf(qf)
    rows, source_sha = _read_source(original_root)
    _check_out_root(original_root, out_root)
    window_of = _windows(rows, windows)
    dropped: Counter[str] = Counter()
    kept = _balance(_filter(rows, qf, window_of, dropped), seed, dropped)
    if not kept:
        raise DatasetError(
            f"no image survived the debiasing: check that the real images include JPEGs at quality {qf} "
            "inside the size windows, and that each generator has generated images"
        )
    _check_collisions(kept)
    say(f"kept {len(kept)} of {len(rows)} images; placing them in {out_root}")
    out_root.mkdir(parents=True, exist_ok=True)
    written, linked, copied = _write_images(kept, original_root, out_root, qf, say)
    crops = {gen: window_of[gen][0] for gen in sorted({row.generator or "" for row in written})}
    _write_info(out_root, crops, qf, source_sha, seed)
    sha = write_manifest(written, out_root / MANIFEST_NAME)
    notes = (f"{copied} real images were copied, not linked, because the output is on another filesystem",)
    say(f"wrote manifest {sha}")
    return UnbiasedSummary(
        manifest_sha256=sha,
        counts=MappingProxyType(_counts(written)),
        dropped=MappingProxyType(dict(sorted(dropped.items()))),
        linked=linked,
        copied=copied,
        centre_crop=MappingProxyType(crops),
        notes=notes if copied else (),
    )
