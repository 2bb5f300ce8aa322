"""Writes of benchmarks and dataset versions."""
from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction

from evaluation.datasets.archives import ARCHIVE_DIR, build_archives
from evaluation.datasets.audit import audit_version
from evaluation.datasets.manifest import (
    manifest_sha256,
    read_manifest,
    read_manifest_stream,
    subset_counts,
)
from evaluation.errors import DatasetError
from evaluation.storage import open_url
from spectra.benchmarks.models import Benchmark, Dataset, Subset
from spectra.benchmarks.store import dataset_archives_upload, dataset_local_root
from spectra.core import pagecache
from spectra.core.errors import ApplicationError

log = logging.getLogger(__name__)


def benchmark_upsert(*, slug: str, name: str, description: str, is_synthetic: bool) -> Benchmark:
    benchmark, _ = Benchmark.objects.update_or_create(
        slug=slug, defaults={"name": name, "description": description, "is_synthetic": is_synthetic}
    )
    return benchmark


@transaction.atomic
def dataset_register(
    *, benchmark: Benchmark, root: Path, variant: str = "original", licence: str = "", citation: str = "",
    description: str = "", hidden_splits: tuple[str, ...] = ("test",),
) -> Dataset:
    """Register the dataset version in ``root`` (images + manifest.jsonl) and make it current."""
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise ApplicationError(f"{root} holds no manifest.jsonl; expected a folder of images plus manifest.jsonl.")
    sha = manifest_sha256(manifest)
    existing = Dataset.objects.filter(manifest_sha256=sha).first()
    if existing is not None:
        return existing
    Dataset.objects.filter(benchmark=benchmark, variant=variant, is_current=True).update(is_current=False)
    dataset = Dataset.objects.create(
        benchmark=benchmark, variant=variant, manifest_sha256=sha, root=str(root), licence=licence, citation=citation,
        description=description,
        hidden_splits=list(hidden_splits),
    )
    try:
        counts = subset_counts(read_manifest(manifest))
    except DatasetError as error:
        raise ApplicationError(f"{manifest} cannot be registered: {error.message.rstrip('.')}.") from None
    dataset_audit(dataset=dataset)
    Subset.objects.bulk_create(
        Subset(dataset=dataset, generator=generator or "", split=split, n_real=c.get(0, 0), n_generated=c.get(1, 0))
        for (generator, split), c in sorted(counts.items(), key=lambda item: (item[0][1], item[0][0] or ""))
    )
    pagecache.bump()  # bulk_create sends no signal
    return dataset


def dataset_audit(*, dataset: Dataset) -> dict:
    """(Re)compute and store the bias audit of ``dataset`` from its manifest, streamed."""
    manifest = dataset.manifest_url
    try:
        with open_url(manifest) as handle:
            dataset.audit = audit_version(dataset.root, read_manifest_stream(handle))
    except DatasetError as error:
        raise ApplicationError(f"{manifest} cannot be audited: {error.message.rstrip('.')}.") from None
    dataset.save(update_fields=["audit"])
    return dataset.audit


def dataset_archives_build(*, dataset: Dataset) -> list[dict]:
    """Write the per-split download archives and their SHA-256 sums; hidden splits carry no labels (their ids and
    order come from the server's secret SPECTRA_HIDDEN_ID_KEY)."""
    local = dataset_local_root(dataset)
    try:
        archives = build_archives(local, dataset.manifest_sha256,
                                  hidden_splits=frozenset(dataset.hidden_splits), hidden_id_key=settings.SPECTRA_HIDDEN_ID_KEY)
    except DatasetError as error:
        raise ApplicationError(f"The archives of {dataset} cannot be written: {error.message.rstrip('.')}.") from None
    dataset_archives_upload(dataset=dataset, local=local, folder=ARCHIVE_DIR, say=log.info)
    dataset.archives = [a.__dict__ for a in archives]
    dataset.save(update_fields=["archives"])
    return dataset.archives
