"""Bad and unusual images in a dataset folder, through the commands that scan and register datasets
(register_genimage, import_faceshq: the shared scan of evaluation.datasets.genimage), then through the evaluation
worker's decoder (evaluation.datasets.images) and the download-archive writer (evaluation.datasets.archives).

Each refused image is listed in known_bad.jsonl with its reason and the scan goes on; each decoded one must give
the pixels computed independently in the corpus (from the values written, or by OpenCV)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from evaluation.datasets.archives import build_archives
from evaluation.datasets.faceshq import SOURCES
from evaluation.datasets.images import decode_image
from evaluation.datasets.manifest import read_manifest
from evaluation.errors import DatasetError
from spectra.benchmarks.models import Dataset
from tests.bad_inputs import corpus
from tests.bad_inputs.checks import assert_a_good_upload_is_queued
from tests.upload_channels import make_uploader

IMAGES = corpus.of_family("image")
REFUSED = [kind for kind in IMAGES if kind.message is not None]
DECODED = [kind for kind in IMAGES if kind.message is None]
GOOD = ("good-0.png", "good-1.png")  # ordinary images beside the bad ones: they must stay in the manifest

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, from the header


def _write_good(folder: Path, seed: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    for name in GOOD:
        Image.fromarray(pixels).save(folder / name, "PNG")


def _genimage_tree(base: Path) -> tuple[Path, Path, dict[str, corpus.ImageFile]]:
    """A GenImage copy whose ADM/train/ai folder holds every image kind; the other folders hold good images."""
    root, scratch = base / "GenImage", base / "elsewhere"
    scratch.mkdir(parents=True)
    for seed, (split, label) in enumerate((("train", "ai"), ("train", "nature"), ("val", "ai"), ("val", "nature"))):
        _write_good(root / "ADM" / split / label, seed)
    folder = root / "ADM" / "train" / "ai"
    return root, folder, {kind.name: kind.build(folder, scratch) for kind in IMAGES}


def _faceshq_tree(base: Path) -> tuple[Path, Path, dict[str, corpus.ImageFile]]:
    root, scratch = base / "FacesHQ", base / "elsewhere"
    scratch.mkdir(parents=True)
    for seed, source in enumerate(SOURCES):
        _write_good(root / source, seed)
    folder = root / "celebA-HQ_10K"
    return root, folder, {kind.name: kind.build(folder, scratch) for kind in IMAGES}


READERS = {"register_genimage": _genimage_tree, "import_faceshq": _faceshq_tree}


@pytest.mark.parametrize("command", list(READERS))
def test_the_scan_refuses_each_bad_image_with_its_reason_and_keeps_the_others(
    command: str, tmp_path: Path, alice, good_onnx: bytes, mini_dataset, send, django_capture_on_commit_callbacks,
) -> None:
    root, folder, files = READERS[command](tmp_path)
    out = io.StringIO()
    call_command(command, str(root), "--workers", "2", stdout=out)

    prefix = folder.relative_to(root).as_posix()
    reasons = {line["path"]: line["reason"] for line in map(json.loads, (root / "known_bad.jsonl").open())}
    expected_bad = {f"{prefix}/{files[kind.name].name}": kind for kind in REFUSED}
    assert set(reasons) == set(expected_bad)
    for path, kind in expected_bad.items():
        assert kind.message in reasons[path], (kind.name, reasons[path])
    kept = {row.path for row in read_manifest(root / "manifest.jsonl")}
    assert {f"{prefix}/{files[kind.name].name}" for kind in DECODED} | {f"{prefix}/{name}" for name in GOOD} <= kept
    assert not kept & set(expected_bad)
    assert Dataset.objects.get(root=str(root.resolve())).is_current
    assert f"{len(REFUSED)} (listed in" in out.getvalue()
    # The rest of the platform is untouched: the mini benchmark still takes uploads.
    assert_a_good_upload_is_queued(make_uploader("api", alice), good_onnx, send, django_capture_on_commit_callbacks)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, corpus.ImageFile]]:
    root, folder, files = _genimage_tree(tmp_path_factory.mktemp("images"))
    return folder, files


@pytest.mark.parametrize("kind", DECODED, ids=[kind.name for kind in DECODED])
def test_the_evaluation_decoder_gives_the_independently_computed_rgb(kind: corpus.Kind, images) -> None:
    folder, files = images
    image = files[kind.name]
    side = image.expected.shape[0]
    assert image.expected.shape == (side, side, 3)  # square, so the decoder does not resize
    with (folder / image.name).open("rb") as handle:
        tensor = decode_image(handle, side, image.name)
    decoded = np.rint(tensor.permute(1, 2, 0).numpy() * 255).astype(int)
    difference = np.abs(decoded - image.expected.astype(int)).max()
    assert difference <= image.tolerance, f"{kind.name}: off by up to {difference}"


UNREADABLE = [kind for kind in REFUSED if kind.name != "symlink-outside-root"]  # a link is refused by path


@pytest.mark.parametrize("kind", UNREADABLE, ids=[kind.name for kind in UNREADABLE])
def test_the_evaluation_decoder_refuses_each_unreadable_image_in_plain_words(kind: corpus.Kind, images) -> None:
    folder, files = images
    name = files[kind.name].name
    with (folder / name).open("rb") as handle, pytest.raises(DatasetError) as caught:
        decode_image(handle, 64, name)
    assert caught.value.message.startswith(f"cannot decode {name}: ") and "\n" not in caught.value.message
    if kind.name == "decompression-bomb-png":
        assert kind.message in caught.value.message


def test_the_archive_writer_refuses_a_link_out_of_the_dataset_folder(tmp_path: Path) -> None:
    """A manifest row naming the link: without the check its target would be packed into a public download."""
    root = tmp_path / "version"
    (root / "real").mkdir(parents=True)
    corpus.symlink_outside_root(root / "real", tmp_path)
    lines = [corpus.good_manifest_line("real/linked.png", split="train")]
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(DatasetError, match="real/linked.png leads outside the dataset folder"):
        build_archives(root, "0" * 64, hidden_splits=frozenset(), hidden_id_key=b"key")
    assert sorted(p.name for p in (root / "archives").iterdir()) == []  # no partial archive left behind
