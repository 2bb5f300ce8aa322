"""Path-traversal names in a manifest, through the registration and audit services and the audit command: each is
refused naming the line and what is wrong with its path, nothing is registered, and a good version still is."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evaluation.datasets.manifest import read_manifest
from evaluation.errors import DatasetError
from spectra.benchmarks.models import Dataset
from spectra.benchmarks.services import benchmark_upsert, dataset_register
from spectra.core.errors import ApplicationError
from tests.bad_inputs import corpus

MANIFESTS = corpus.of_family("manifest")


def _good_version(root: Path) -> Path:
    """A version of two rows whose paths name the folder, so that each version has its own manifest sha256."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [corpus.good_manifest_line(f"real/{root.name}.png"),
             {**corpus.good_manifest_line(f"fake/{root.name}.png"), "label": 1}]
    (root / "manifest.jsonl").write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    return root


@pytest.fixture
def benchmark(db):  # noqa: ANN001, ANN201
    return benchmark_upsert(slug="paths", name="Paths", description="", is_synthetic=False)


@pytest.mark.parametrize("kind", MANIFESTS, ids=[kind.name for kind in MANIFESTS])
def test_a_manifest_naming_a_path_outside_the_folder_is_not_registered(kind: corpus.Kind, benchmark, tmp_path) -> None:
    root = tmp_path / "version"
    root.mkdir()
    kind.build(root)
    with pytest.raises(DatasetError) as read:
        list(read_manifest(root / "manifest.jsonl"))
    assert kind.message in read.value.message
    with pytest.raises(ApplicationError) as registered:
        dataset_register(benchmark=benchmark, root=root)
    assert kind.message in registered.value.message and "cannot be registered" in registered.value.message
    assert not Dataset.objects.exists()
    assert dataset_register(benchmark=benchmark, root=_good_version(tmp_path / "good")).is_current


@pytest.mark.parametrize("kind", MANIFESTS, ids=[kind.name for kind in MANIFESTS])
def test_the_audit_command_says_what_is_wrong_with_a_manifest_edited_after_registration(
    kind: corpus.Kind, benchmark, tmp_path,
) -> None:
    root = _good_version(tmp_path / "version")
    dataset_register(benchmark=benchmark, root=root)
    kind.build(root)  # the manifest replaced on disk
    with pytest.raises(CommandError) as caught:
        call_command("audit_dataset", "paths")
    assert kind.message in str(caught.value) and "\n" not in str(caught.value)
    other = dataset_register(benchmark=benchmark, root=_good_version(tmp_path / "other"), variant="unbiased")
    assert other.audit and Dataset.objects.count() == 2  # the next version is registered and audited as usual
