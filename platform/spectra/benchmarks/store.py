"""Dataset versions in the object store (SPECTRA_STORAGE=s3): putting a registered version there, and getting a
local copy back for what must read files (training the zoo, building a derived version).

A version is built and registered from a local folder, then copied up (resumably: a re-run of the command goes
on where it stopped) and pointed at ``s3://<bucket>/datasets/<benchmark>/<variant>-<sha>``. The manifest goes
last, so a version whose copy was interrupted is never taken for whole.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import fsspec
from django.conf import settings

from evaluation.datasets.manifest import MANIFEST_NAME, manifest_sha256
from evaluation.storage import is_local
from spectra.benchmarks.models import Dataset
from spectra.core import objectstore
from spectra.core.errors import ApplicationError

log = logging.getLogger(__name__)
DATASETS_PREFIX = "datasets"


def dataset_key(dataset: Dataset) -> str:
    return f"{DATASETS_PREFIX}/{dataset.benchmark.slug}/{dataset.variant}-{dataset.manifest_sha256[:16]}"


def dataset_has_manifest(dataset: Dataset) -> bool:
    """Whether the version's manifest is where its root says (a local folder or the store)."""
    return fsspec.core.url_to_fs(dataset.manifest_url)[0].exists(dataset.manifest_url)


def dataset_store(*, dataset: Dataset, say: Callable[[str], None]) -> Dataset:
    """Copy a local version into the object store and point it there; nothing to do in local mode or when it
    is there already. The local folder is left as it is."""
    if not objectstore.is_remote() or not is_local(dataset.root):
        return dataset
    local, key = Path(dataset.root), dataset_key(dataset)
    if objectstore.bucket_ensure():
        say(f"  made the bucket {objectstore.bucket()}")
    say(f"  {dataset.variant}: copying {local} to {objectstore.object_url(key)}")
    report = objectstore.upload_tree(local, key, say=say)
    say(f"  {dataset.variant}: {report.line()}")
    dataset.root = objectstore.object_url(key)
    dataset.save(update_fields=["root"])
    return dataset


def _mirror_path(dataset: Dataset) -> Path:
    return Path(settings.SPECTRA_DATA_ROOT) / dataset_key(dataset).removeprefix(f"{DATASETS_PREFIX}/")


def dataset_local_root(dataset: Dataset, say: Callable[[str], None] = log.info) -> Path:
    """A local folder holding the version: its own root when local, else this machine's copy of the store's,
    fetched (or completed) first and checked against the manifest's sha256."""
    if is_local(dataset.root):
        return Path(fsspec.core.split_protocol(dataset.root)[1])
    mirror = _mirror_path(dataset)
    manifest = mirror / MANIFEST_NAME
    if manifest.is_file() and manifest_sha256(manifest) == dataset.manifest_sha256:
        return mirror
    say(f"  {dataset.variant}: fetching {dataset.root} to {mirror}")
    objectstore.download_tree(dataset_key(dataset), mirror, say=say)
    if not manifest.is_file() or manifest_sha256(manifest) != dataset.manifest_sha256:
        raise ApplicationError(f"The copy of {dataset.root} in {mirror} does not match the registered manifest "
                               f"{dataset.manifest_sha256[:12]}: the store holds another version under its key.")
    return mirror


def dataset_archives_upload(*, dataset: Dataset, local: Path, folder: str, say: Callable[[str], None]) -> None:
    """After archives were rebuilt in ``local``, replace the store's copy of them (remote versions only)."""
    if objectstore.is_remote() and not is_local(dataset.root):
        objectstore.upload_tree(local / folder, f"{dataset_key(dataset)}/{folder}", say=say, last=())
