"""The bad-input tests share the platform tests' fixtures: each test stores artifacts in its own MEDIA_ROOT, the
platform evaluates with cross-generator alone, and ``send`` mocks only the function that puts shard requests on
the broker."""
from __future__ import annotations

import pytest

from tests.platform.conftest import cross_generator_only, media_root, send  # noqa: F401  (fixtures, used by name)
from tests.upload_channels import INPUT_SIZE, Uploader, make_uploader


@pytest.fixture(scope="session")
def good_onnx(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The good upload that must go through after every bad input."""
    from tests import detector_files

    return detector_files.write_onnx(tmp_path_factory.mktemp("good") / "good.onnx", input_size=INPUT_SIZE).read_bytes()


@pytest.fixture(params=["form", "api"])
def uploader(request: pytest.FixtureRequest, alice) -> Uploader:  # noqa: ANN001
    return make_uploader(request.param, alice)
