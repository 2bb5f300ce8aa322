"""Build the "Unbiased GenImage" dataset version from an original GenImage version (research/seeds.md §1.5, §1.9).

GenImage's real images are ImageNet JPEGs of many sizes (mostly quality 96) while its generated images are
lossless PNGs of one fixed size per generator, so a detector can score well by spotting JPEG artefacts or the
image size. The recipe follows the authors' ``get_data.py`` (mode ``size_constrained`` with
``--balance_train_classes``) and removes both shortcuts; ``RECIPE_RULES`` says the same for the dataset page.

* Real (label 0) images of generator G, split s: every real image of split s, from **every** generator folder
  (not only G's own), that is a JPEG of quality exactly ``qf`` and whose width and height both lie in G's size
  window. They are never re-encoded.
* Output of a real image: a real image chosen for several generators appears once per generator, each time as
  its own manifest row naming that generator (a row has exactly one generator) at the path
  ``nature/<G>/<source path>``, a hard link to the source file. So paths never collide, every generator subset
  is complete on its own, and the extra copies cost no disk space. A copy is made only when linking fails
  because the two folders are on different filesystems, and the summary says so.
* The size window of a generator defaults to [round(s*450/512), round(s*550/512)], where s is the short side
  of the most common size of its generated images: 450-550 px for the 512-px generators, as in the paper.
* Generated (label 1) images of G: G's own generated images, JPEG-compressed once at quality ``qf`` with
  Pillow's defaults (4:2:0 chroma subsampling, as the paper's code does) and stored with a ``.jpg`` suffix.
  None is dropped for its size: one smaller than the crop is zero-padded at load time, as the paper's
  torchvision CenterCrop does.
* Centre crop: the paper crops both classes to the window's lower bound at load time, after compression.
  Cropping here would mean re-encoding the real JPEGs (which the recipe forbids) or storing them as PNG (which
  brings back a format bias), so the crop size is recorded in ``dataset.json`` (``centre_crop``) and applied
  when the images are loaded, by ``evaluation.datasets.manifest.centre_crop_box``: torchvision's offsets
  ``int(round((w - c) / 2))`` and its zero padding when the image is smaller than the crop.
* Balancing, per (generator, split) group, with a numpy Generator seeded from ``seed`` (default 42) and the
  group's name, drawing without replacement after sorting by path: per ImageNet class, keep min(#real,
  #generated) of each label in every class. Real GenImage names real files by WordNet id (``n01440764_...``)
  and generated files by class index (``000_...`` or ``0_...``); the index is ImageNet's own order, the
  sorted list of the 1000 WordNet ids. That list is read from the copy itself: the WordNet ids in the file
  names of every row of the source manifest (all folders, splits and labels, before any rule is applied).
  It must hold exactly 1000 ids, else the build is refused, saying how many were found. When both labels
  name classes the same way no list is needed. A dataset whose file names carry no class key at all (the
  mini benchmark) is balanced per group: min(#real, #generated) of each label. A group where some file names
  carry a class and others do not is refused: it can be balanced neither way faithfully.

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

from evaluation.datasets.jpeg import jpeg_traits
from evaluation.datasets.manifest import (
    LABEL_GENERATED,
    LABEL_REAL,
    MANIFEST_NAME,
    MANIFEST_SCHEMA_VERSION,
    ManifestRow,
    file_sha256,
    read_manifest,
    write_manifest,
)
from evaluation.datasets.pixels import to_rgb
from evaluation.errors import DatasetError

# v1: reals from the generator's own folder only, undersized generated images dropped, classes balanced only
#     when both labels named them the same way; v2: the authors' get_data.py rules (module docstring).
RECIPE = "unbiased-genimage v2"
RECIPE_RULES: tuple[str, ...] = (
    "Real images of a generator: every real image of the split, from every generator folder, that is a JPEG of "
    "quality exactly 96 with width and height inside that generator's size window (450-550 px for 512-px "
    "generators: the generated size x 450/512 to x 550/512). They are not re-encoded.",
    "Generated images of a generator: its own, JPEG-compressed once at quality 96 with Pillow's defaults "
    "(4:2:0 chroma subsampling).",
    "Balancing with seed 42, per ImageNet class: in every class, as many real as generated images, "
    "min(#real, #generated) of each. The class index of a generated file is its WordNet id's position in "
    "the sorted list of the 1000 ImageNet ids.",
    "A real image chosen for several generators is listed once per generator (a hard link each).",
    "At load time both classes are centre-cropped to the window's lower bound exactly as torchvision's "
    "CenterCrop (zero padding when an image is smaller), then resized to the detector's input size.",
)
RECIPES: Mapping[str, tuple[str, ...]] = MappingProxyType({RECIPE: RECIPE_RULES})  # recipe name -> rules shown
DATASET_INFO_NAME = "dataset.json"
IMAGENET_CLASSES = 1000

# Reasons an input row is left out, as they appear in ``UnbiasedSummary.dropped``.
DROP_NOT_QF = "real image is not a JPEG at the chosen quality"
DROP_WINDOW = "real image is outside the size window of every generator of its split"
DROP_BALANCING = "removed by balancing"

_WNID = re.compile(r"(n\d{8})(?=[_.]|$)")
_INDEX = re.compile(r"(\d{1,4})_")
_PROGRESS_EVERY = 1000  # images between progress messages: often enough to see movement, rarely enough to read
_REAL_PREFIX = "nature"  # real rows are written at nature/<generator>/<source path>
ClassKey = Callable[[ManifestRow], str | None]


def recipe_rules(name: str | None) -> dict[str, object] | None:
    """{"name", "rules"} of a recipe named in a version's dataset.json, or None when it is not one we wrote."""
    rules = RECIPES.get(name or "")
    return {"name": name, "rules": list(rules)} if rules else None


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


def class_key_of(rows: Sequence[ManifestRow]) -> ClassKey:
    """The class key used for balancing: the name's own key, or, when real files name WordNet ids and
    generated ones class indices, the class index (a WordNet id's position among the copy's 1000 sorted ids)."""
    keys = [image_class(row.path) for row in rows]
    kinds = {_class_kind(key) for key in keys} - {None}
    if kinds != {"wnid", "index"}:
        return lambda row: image_class(row.path)
    wnids = sorted({key for key in keys if _class_kind(key) == "wnid"})
    if len(wnids) != IMAGENET_CLASSES:
        raise DatasetError(
            f"the file names give ImageNet classes both as WordNet ids and as class indices; the class map that "
            f"joins them is the sorted list of the {IMAGENET_CLASSES} WordNet ids found in the copy's file names, "
            f"but only {len(wnids)} distinct ids are present ({IMAGENET_CLASSES - len(wnids)} missing): the class "
            f"map needs all {IMAGENET_CLASSES}, so build from a complete GenImage copy"
            if len(wnids) < IMAGENET_CLASSES else
            f"the file names hold {len(wnids)} distinct WordNet ids, more than ImageNet's {IMAGENET_CLASSES} "
            "classes, so class indices cannot be mapped to them"
        )
    index_of = {wnid: f"{i:03d}" for i, wnid in enumerate(wnids)}

    def key(row: ManifestRow) -> str | None:
        found = image_class(row.path)
        return index_of[found] if _class_kind(found) == "wnid" else found

    return key


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


def _is_qf_jpeg(row: ManifestRow, qf: int) -> bool:
    return row.format.upper() in ("JPEG", "JPG") and row.jpeg_quality == qf


def _inside(row: ManifestRow, window: tuple[int, int]) -> bool:
    return window[0] <= row.width <= window[1] and window[0] <= row.height <= window[1]


def _rng(seed: int, *parts: str) -> np.random.Generator:
    # One generator per group, keyed by the group's name, so adding a generator or split to the source
    # never changes the selection made for the others.
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])


def _draw(rng: np.random.Generator, rows: list[ManifestRow], k: int) -> list[ManifestRow]:
    ordered = sorted(rows, key=lambda row: row.path)
    picks = rng.choice(len(ordered), size=k, replace=False) if k else []
    return [ordered[i] for i in sorted(picks)]


def _balance_group(rng: np.random.Generator, reals: list[ManifestRow], fakes: list[ManifestRow],
                   class_key: ClassKey) -> list[ManifestRow]:
    """min(#real, #generated) of each label, per class when the file names carry classes (module doc)."""
    keyed = [(row, class_key(row)) for row in reals + fakes]
    unkeyed = [row for row, key in keyed if key is None]
    if not unkeyed:
        by_class: dict[str, tuple[list[ManifestRow], list[ManifestRow]]] = {}
        for row, key in keyed:
            by_class.setdefault(key or "", ([], []))[row.label].append(row)
        kept: list[ManifestRow] = []
        for key in sorted(by_class):
            class_reals, class_fakes = by_class[key]
            k = min(len(class_reals), len(class_fakes))
            kept += _draw(rng, class_reals, k) + _draw(rng, class_fakes, k)
        return kept
    if len(unkeyed) < len(keyed):
        raise DatasetError(
            f"some file names of generator {fakes[0].generator!r} ({fakes[0].split}) carry an ImageNet class and "
            f"{unkeyed[0].path!r} does not; balancing per class needs a class in every file name of the group"
        )
    k = min(len(reals), len(fakes))
    return _draw(rng, reals, k) + _draw(rng, fakes, k)


def _select(rows: list[ManifestRow], qf: int, windows: Mapping[str, tuple[int, int]], seed: int,
            dropped: Counter[str]) -> list[tuple[str, ManifestRow]]:
    """(generator, row) pairs kept, in source order; a real row once per generator that chose it."""
    class_key = class_key_of(rows)
    reals: dict[str, list[ManifestRow]] = {}
    fakes: dict[tuple[str, str], list[ManifestRow]] = {}
    for row in rows:
        if row.label == LABEL_GENERATED:
            fakes.setdefault((row.generator or "", row.split), []).append(row)
        elif _is_qf_jpeg(row, qf):
            reals.setdefault(row.split, []).append(row)
        else:
            dropped[DROP_NOT_QF] += 1
    # Rows are tracked by identity: a manifest does not promise unique paths, and equal rows must not merge.
    chosen: dict[int, list[str]] = {}
    windowed: set[int] = set()
    for (gen, split), group_fakes in sorted(fakes.items()):
        pool = [row for row in reals.get(split, []) if _inside(row, windows[gen])]
        windowed.update(id(row) for row in pool)
        for row in _balance_group(_rng(seed, gen, split), pool, group_fakes, class_key):
            chosen.setdefault(id(row), []).append(gen)
    for row in (row for group in (*reals.values(), *fakes.values()) for row in group):
        if row.label == LABEL_REAL and id(row) not in windowed:
            dropped[DROP_WINDOW] += 1
        elif id(row) not in chosen:
            dropped[DROP_BALANCING] += 1
    return [(gen, row) for row in rows for gen in sorted(chosen.get(id(row), []))]


def _output_path(gen: str, row: ManifestRow) -> str:
    if row.label == LABEL_REAL:
        return f"{_REAL_PREFIX}/{gen}/{row.path}"
    return str(PurePosixPath(row.path).with_suffix(".jpg"))


def _check_collisions(kept: Sequence[tuple[str, ManifestRow]]) -> None:
    seen: set[str] = set()
    for gen, row in kept:
        out = _output_path(gen, row)
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


def _compress_generated(src: Path, dst: Path, row: ManifestRow, qf: int) -> ManifestRow:
    """JPEG-encode one generated image at ``qf`` after checking its bytes; returns the new file's row."""
    try:
        data = src.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"the image {str(src)!r} listed in the manifest does not exist") from None
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise DatasetError(f"the image {str(src)!r} does not match the sha256 in the manifest")
    try:
        with Image.open(io.BytesIO(data)) as image:
            # Pillow's defaults (4:2:0 subsampling, no optimisation) are what the paper's code uses.
            to_rgb(image).save(dst, "JPEG", quality=qf)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"the image {str(src)!r} could not be read as an image ({exc})") from None
    with Image.open(dst) as written:
        quality, subsampling, chroma_quality = jpeg_traits(written)
    return replace(row, format="JPEG", jpeg_quality=quality, sha256=file_sha256(dst),
                   chroma_subsampling=subsampling, chroma_quality=chroma_quality)


def _write_images(
    kept: Sequence[tuple[str, ManifestRow]], original_root: Path, out_root: Path, qf: int,
    progress: Callable[[str], None],
) -> tuple[list[ManifestRow], int, int]:
    written, linked, copied = [], 0, 0
    for number, (gen, row) in enumerate(kept, start=1):
        out_path = _output_path(gen, row)
        src, dst = original_root / row.path, out_root / out_path
        dst.parent.mkdir(parents=True, exist_ok=True)
        if row.label == LABEL_REAL:
            if _place_real(src, dst):
                linked += 1
            else:
                copied += 1
            written.append(replace(row, path=out_path, generator=gen))
        else:
            written.append(replace(_compress_generated(src, dst, row, qf), path=out_path))
        if number % _PROGRESS_EVERY == 0:
            progress(f"placed {number} of {len(kept)} images")
    return written, linked, copied


def _write_info(out_root: Path, crops: Mapping[str, int], qf: int, source_sha: str, seed: int) -> None:
    info = {
        "centre_crop": dict(sorted(crops.items())),
        "jpeg_quality": qf,
        "manifest_schema": MANIFEST_SCHEMA_VERSION,
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
    kept = _select(rows, qf, window_of, seed, dropped)
    if not kept:
        raise DatasetError(
            f"no image survived the debiasing: check that the real images include JPEGs at quality {qf} "
            "inside the size windows, and that each generator has generated images"
        )
    _check_collisions(kept)
    say(f"kept {len(kept)} images ({len({id(row) for _, row in kept})} of {len(rows)} source images); "
        f"placing them in {out_root}")
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
