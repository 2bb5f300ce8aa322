"""Reading a local GenImage copy into a manifest.

GenImage (Zhu et al., NeurIPS 2023) documents the layout ``<Generator>/{train,val}/{ai,nature}/<image>``;
the downloaded archives add one level, ``<Generator>/<subfolder>/{train,val}/{ai,nature}/<image>``
(e.g. ``ADM/imagenet_ai_0508_adm/train/ai/...``). Both are accepted, even mixed in one copy.

Mapping to manifest rows:

* label: ``nature`` -> 0 (real), ``ai`` -> 1 (generated), as in GenImage's class_map.txt;
* generator: the top folder's name, for real images too, because every generator subset of GenImage has
  its own real (ImageNet) images;
* JPEG traits (luma quality, chroma subsampling, chroma quality): ``evaluation.datasets.jpeg.jpeg_traits``;
* split: ``train`` stays ``train``; GenImage's ``val`` becomes ``test``. GenImage has no separate test
  set and every paper reports its val folders as the test results, so val is the benchmark's test split.

The copy holds over a million files, so the scan streams: the walk is a sorted recursive os.scandir that
holds one folder's entries at a time, images are described in a process pool fed from that stream, and
rows go straight to disk. The walk order is deterministic, which makes the manifest reproducible and the
scan resumable: ``scan.state`` records how many images were processed and how long the output files were
at that point, so a restarted scan truncates any half-written tail and skips that many images.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import IO, Any

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from evaluation.datasets.jpeg import jpeg_traits
from evaluation.datasets.manifest import (
    LABEL_GENERATED,
    LABEL_REAL,
    MANIFEST_NAME,
    ManifestRow,
    file_inside,
    manifest_sha256,
    read_manifest,
    subset_counts,
)
from evaluation.datasets.pixels import check_pixel_count
from evaluation.errors import DatasetError

EXPECTED_LAYOUT = (
    "Expected a GenImage folder laid out as <root>/<Generator>/{train,val}/{ai,nature}/<image> or, as in the "
    "downloaded archives, <root>/<Generator>/<subfolder>/{train,val}/{ai,nature}/<image> "
    "(for example <root>/ADM/imagenet_ai_0508_adm/train/ai/1.PNG)."
)
LABELS: dict[str, int] = {"nature": LABEL_REAL, "ai": LABEL_GENERATED}
SPLITS: dict[str, str] = {"train": "train", "val": "test"}  # GenImage's val is the benchmark's test split
KNOWN_BAD = "known_bad.jsonl"
STATE = "scan.state"
PARTIAL = ".partial"
CHUNKSIZE = 64
FLUSH_EVERY = 1000
GENIMAGE_DESCRIPTION = (
    "GenImage (Zhu et al., 2023): ImageNet photos against images generated for the same 1000 classes by eight "
    "generators (Midjourney, Stable Diffusion v1.4 and v1.5, Wukong, ADM, GLIDE, VQDM, BigGAN). Each generator "
    "subset has its own real images. GenImage's val folders are this benchmark's test split."
)
GENIMAGE_LICENCE = (
    "The GenImage authors state no licence (github.com/GenImage-Dataset/GenImage). The real images are ImageNet "
    "images, usable only under the ImageNet terms of access (non-commercial research and education)."
)
# As given in the GenImage Readme ("Reference").
GENIMAGE_CITATION = """@misc{zhu2023genimage,
      title={GenImage: A Million-Scale Benchmark for Detecting AI-Generated Image},
      author={Mingjian Zhu and Hanting Chen and Qiangyu Yan and Xudong Huang and Guanyu Lin and Wei Li and Zhijun Tu and Hailin Hu and Jie Hu and Yunhe Wang},
      year={2023},
      eprint={2306.08571},
      archivePrefix={arXiv},
      primaryClass={cs.CV}
}"""
_MAX_DEPTH = 5  # <gen>/<sub>/<split>/<label>/<file>: nothing deeper can be an image of the dataset


@dataclass(frozen=True)
class ScanSummary:
    """What a scan produced. ``counts`` maps (generator, split) to {label: number of rows}."""

    manifest_path: Path
    known_bad_path: Path
    manifest_sha256: str
    n_rows: int
    n_known_bad: int
    counts: dict[tuple[str | None, str], dict[int, int]]
    resumed_from: int
    seconds: float


@dataclass(frozen=True)
class ImageItem:
    """One image file found by the walk, with what its path says about it."""

    path: str  # relative to the root, '/' separators
    generator: str
    split: str
    label: int


def _classify(parts: tuple[str, ...]) -> ImageItem | None:
    # Only these two shapes are dataset images; anything else (READMEs, our own manifest) is ignored.
    if len(parts) not in (4, 5) or parts[-3] not in SPLITS or parts[-2] not in LABELS:
        return None
    return ImageItem("/".join(parts), parts[0], SPLITS[parts[-3]], LABELS[parts[-2]])


def _sorted_entries(folder: str) -> list[os.DirEntry[str]]:
    # One folder's entries at a time is the only listing held in memory; hidden files (.DS_Store) are skipped.
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _walk(folder: str, parts: tuple[str, ...] = ()) -> Iterator[ImageItem]:
    """The dataset images under ``folder`` in sorted order, lazily."""
    for entry in _sorted_entries(folder):
        here = parts + (entry.name,)
        if entry.is_dir():
            if len(here) < _MAX_DEPTH:
                yield from _walk(entry.path, here)
        elif entry.is_file() and (item := _classify(here)) is not None:
            yield item


def _has_split_folders(folder: Path) -> bool:
    return any((folder / split / label).is_dir() for split in SPLITS for label in LABELS)


def check_layout(root: Path) -> None:
    """Raise DatasetError showing the expected layout unless some generator folder has train|val/ai|nature."""
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder. {EXPECTED_LAYOUT}")
    for generator in _sorted_entries(str(root)):
        if not generator.is_dir():
            continue
        folder = Path(generator.path)
        if _has_split_folders(folder):
            return
        if any(sub.is_dir() and _has_split_folders(Path(sub.path)) for sub in _sorted_entries(str(folder))):
            return
    raise DatasetError(f"{root} does not look like a GenImage copy: no generator folder holds train/ or val/ "
                       f"with ai/ and nature/ inside. {EXPECTED_LAYOUT}")


def _describe(task: tuple[str, ImageItem]) -> tuple[str, bool, bytes]:
    """Runs in a pool worker: the image's path, then (True, manifest line) or (False, known-bad line)."""
    ok, line = _describe_file(*task)
    return task[1].path, ok, line


def _describe_file(root: str, item: ImageItem) -> tuple[bool, bytes]:
    try:
        data = file_inside(Path(root), item.path).read_bytes()
        if not data:
            return False, _bad_line(item.path, "the file is empty")
        sha = hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as image:
            check_pixel_count(image)  # from the header, before the pixels are decoded
            image.load()  # decode every pixel: a truncated file only fails here, not in Image.open
            quality, subsampling, chroma_quality = jpeg_traits(image)
            row = ManifestRow(
                path=item.path, label=item.label, generator=item.generator, split=item.split,
                width=image.width, height=image.height, format=image.format or "unknown",
                jpeg_quality=quality, sha256=sha, chroma_subsampling=subsampling, chroma_quality=chroma_quality,
            )
        return True, row.to_line()
    except DatasetError as exc:
        return False, _bad_line(item.path, exc.message)
    except UnidentifiedImageError:
        # Pillow's own message names an in-memory object by address, which would make known_bad.jsonl vary.
        return False, _bad_line(item.path, "the image cannot be decoded (not an image format Pillow knows)")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow reports undecodable data with any of these; the reason keeps its own words.
        return False, _bad_line(item.path, f"the image cannot be decoded ({exc})")


def _bad_line(path: str, reason: str) -> bytes:
    text = json.dumps({"path": path, "reason": reason}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return (text + "\n").encode("ascii")


class _SimulatedCrash(RuntimeError):
    """Raised by the ``_crash_after`` test hook to stop a scan the way a killed process would."""


def _load_state(out_dir: Path, root: Path) -> dict[str, Any]:
    """Where a previous scan of ``root`` into ``out_dir`` stopped; a fresh start if there is no usable record."""
    fresh: dict[str, Any] = {
        "root": str(root), "processed": 0, "manifest_bytes": 0, "known_bad_bytes": 0, "last_path": None,
    }
    state_path = out_dir / STATE
    partials = [out_dir / (MANIFEST_NAME + PARTIAL), out_dir / (KNOWN_BAD + PARTIAL)]
    if not state_path.is_file() or not all(p.is_file() for p in partials):
        return fresh
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        counters = ("processed", "manifest_bytes", "known_bad_bytes")
        if set(state) != set(fresh) or not all(isinstance(state[k], int) for k in counters):
            raise ValueError("unexpected keys")
    except ValueError:
        raise DatasetError(f"{state_path} is not a scan record this version understands; delete it to scan "
                           "again from the start.") from None
    if state["root"] != str(root):
        raise DatasetError(f"{out_dir} holds an unfinished scan of {state['root']}, not of {root}; delete "
                           f"{state_path} to start a new scan there.")
    return state


def _save_state(out_dir: Path, state: dict[str, Any], outputs: Iterable[IO[bytes]]) -> None:
    # The rows must be on disk before the record that counts them, or a crash could lose rows silently.
    for handle in outputs:
        handle.flush()
        os.fsync(handle.fileno())
    tmp = out_dir / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
    os.replace(tmp, out_dir / STATE)


def _open_partial(path: Path, keep_bytes: int) -> IO[bytes]:
    """Open ``path`` for appending after its first ``keep_bytes`` bytes, dropping anything written later."""
    handle = open(path, "r+b" if keep_bytes else "wb")
    handle.truncate(keep_bytes)
    handle.seek(keep_bytes)
    return handle


@contextmanager
def _described(tasks: Iterator[tuple[str, ImageItem]], workers: int) -> Iterator[Iterator[tuple[str, bool, bytes]]]:
    if workers <= 1:
        yield map(_describe, tasks)
        return
    # imap keeps the input order. Its feeder thread blocks on the pool's pipe once that is full, so only a
    # bounded number of chunks is ever in flight and memory stays flat however many files there are.
    with Pool(workers) as pool:
        yield pool.imap(_describe, tasks, chunksize=CHUNKSIZE)


def _write_results(
    results: Iterator[tuple[str, bool, bytes]], outputs: tuple[IO[bytes], IO[bytes]], out_dir: Path,
    state: dict[str, Any], *, flush_every: int, progress: bool, crash_after: int | None,
) -> None:
    rows, bad = outputs
    skipped = state["processed"]
    with tqdm(initial=skipped, unit="img", desc="GenImage scan", disable=not progress) as bar:
        for path, ok, line in results:
            (rows if ok else bad).write(line)
            state["processed"] += 1
            state["last_path"] = path
            bar.update()
            if state["processed"] % flush_every == 0:
                state["manifest_bytes"], state["known_bad_bytes"] = rows.tell(), bad.tell()
                _save_state(out_dir, state, outputs)
            if crash_after is not None and state["processed"] - skipped >= crash_after:
                raise _SimulatedCrash(f"simulated crash after {crash_after} images")


def _skip_done(items: Iterator[ImageItem], state: dict[str, Any]) -> Iterator[ImageItem]:
    """Skip the images an unfinished scan already wrote, checking the folder still lists them the same way."""
    done = state["processed"]
    if done:
        last = next(itertools.islice(items, done - 1, None), None)
        if last is None or last.path != state["last_path"]:
            raise DatasetError(
                f"The images in {state['root']} changed since the unfinished scan (image {done} is no longer "
                f"{state['last_path']}); delete the scan.state file in the output folder to scan from the start."
            )
    return items


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def scan_genimage(
    root: Path, out_dir: Path, *, workers: int = 2, progress: bool = True,
    flush_every: int = FLUSH_EVERY, _crash_after: int | None = None,
) -> ScanSummary:
    """Describe every image of the GenImage copy in ``root``; write manifest.jsonl and known_bad.jsonl to ``out_dir``.

    Files that are empty or cannot be decoded are listed in known_bad.jsonl (path + reason) and left out
    of the manifest; they do not stop the scan. An interrupted scan resumes where its last record says.
    ``_crash_after`` is a test hook that stops the scan like a crash after that many images.
    """
    root = Path(root).resolve()
    check_layout(root)
    return scan_images(root, out_dir, _walk, workers=workers, progress=progress, flush_every=flush_every,
                       _crash_after=_crash_after)


def scan_images(
    root: Path, out_dir: Path, walk: Callable[[str], Iterator[ImageItem]], *, workers: int = 2,
    progress: bool = True, flush_every: int = FLUSH_EVERY, _crash_after: int | None = None,
) -> ScanSummary:
    """The scan behind every importer: ``walk(root)`` yields the images in a fixed order; the rest is shared."""
    started = time.monotonic()
    root, out_dir = Path(root).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = _load_state(out_dir, root)
    resumed_from = state["processed"]
    items = _skip_done(walk(str(root)), state)
    tasks = ((str(root), item) for item in items)
    with _open_partial(out_dir / (MANIFEST_NAME + PARTIAL), state["manifest_bytes"]) as rows, \
            _open_partial(out_dir / (KNOWN_BAD + PARTIAL), state["known_bad_bytes"]) as bad:
        with _described(tasks, workers) as results:
            _write_results(results, (rows, bad), out_dir, state, flush_every=flush_every,
                           progress=progress, crash_after=_crash_after)
    return _finish(out_dir, resumed_from, started)


def _finish(out_dir: Path, resumed_from: int, started: float) -> ScanSummary:
    manifest, known_bad = out_dir / MANIFEST_NAME, out_dir / KNOWN_BAD
    os.replace(out_dir / (KNOWN_BAD + PARTIAL), known_bad)
    os.replace(out_dir / (MANIFEST_NAME + PARTIAL), manifest)  # last: a manifest.jsonl only appears once complete
    (out_dir / STATE).unlink(missing_ok=True)
    counts = subset_counts(read_manifest(manifest))
    return ScanSummary(
        manifest_path=manifest, known_bad_path=known_bad, manifest_sha256=manifest_sha256(manifest),
        n_rows=sum(sum(c.values()) for c in counts.values()), n_known_bad=_count_lines(known_bad),
        counts=counts, resumed_from=resumed_from, seconds=time.monotonic() - started,
    )
