"""Fixtures of the platform tests that do not start workers."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    """Each test stores artifacts in its own MEDIA_ROOT (default_storage follows the setting change)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture(autouse=True)
def cross_generator_only(settings) -> None:
    """Platform tests evaluate with cross-generator on the test split alone unless they ask for more (the sweeps
    and the validation split are tested where they are the point)."""
    settings.SPECTRA_PROTOCOLS = ["cross-generator"]
    settings.SPECTRA_CARRY_THRESHOLD = False


@pytest.fixture
def faceshq(tmp_path: Path) -> Path:
    """A miniature Faces-HQ tree: ten 32 px JPEGs per source and one broken file."""
    import numpy as np
    from PIL import Image

    from evaluation.datasets.faceshq import SOURCES

    root = tmp_path / "Faces-HQ"
    for k, folder in enumerate(SOURCES):
        for n in range(10):
            path = root / folder / "images" / f"{n:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(10 * k + n).integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, "JPEG", quality=90)
    (root / "100KFake_10K" / "images" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    return root


@pytest.fixture
def send() -> Iterator[mock.MagicMock]:
    """The only mock: the function that would put the ShardRequest on the broker."""
    with mock.patch("spectra.submissions.services.runs.evaluation_runs_send", autospec=True) as patched:
        yield patched


@pytest.fixture(scope="module")
def test_line_numbers(mini_root: Path) -> list[int]:
    """0-based manifest line numbers of the mini benchmark's test rows."""
    with (mini_root / "manifest.jsonl").open(encoding="utf-8") as handle:
        return [i for i, line in enumerate(handle) if json.loads(line)["split"] == "test"]


@pytest.fixture(scope="session")
def onnx_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small real ONNX detector (input 32 px) for tests that upload one; some modules keep their own seed."""
    from tests import detector_files

    return detector_files.write_onnx(tmp_path_factory.mktemp("onnx") / "d.onnx", seed=3, input_size=32).read_bytes()


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-compatible server (tests.seaweed) for the session; its endpoint."""
    from tests.seaweed import running_store

    with running_store(tmp_path_factory.mktemp("seaweed")) as endpoint:
        yield endpoint


def use_store(settings, endpoint: str) -> None:
    """This process (the web side) under SPECTRA_STORAGE=s3 on ``endpoint``, with the platform's key."""
    from evaluation.storage import configure_s3
    from spectra.core import objectstore
    from spectra.core.env import s3_storage
    from tests.seaweed import ADMIN, BUCKET

    settings.SPECTRA_STORAGE = "s3"
    settings.SPECTRA_S3 = {"endpoint_url": endpoint, "public_endpoint_url": endpoint, "bucket": BUCKET,
                           "access_key": ADMIN[0], "secret_key": ADMIN[1], "region": "us-east-1"}
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage(settings.SPECTRA_S3, settings.SPECTRA_PRESIGN_SECONDS)}
    configure_s3(endpoint_url=endpoint, key=ADMIN[0], secret=ADMIN[1])
    objectstore.client.cache_clear()
    objectstore.signing_client.cache_clear()


@pytest.fixture
def s3_settings(settings, store: str) -> Iterator[str]:
    use_store(settings, store)
    yield store
    from spectra.core import objectstore

    objectstore.client.cache_clear()
    objectstore.signing_client.cache_clear()
