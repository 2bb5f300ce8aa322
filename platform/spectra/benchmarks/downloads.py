"""Dataset downloads: per-split archives (resumable), their SHA-256 sums, and the public manifest.

A hidden split's labels never leave the server: its archive holds keyed opaque ids in a secret order
(evaluation.datasets.archives), an older archive of it is withheld, and its rows are left out of the manifest
download entirely.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from evaluation.datasets.archives import ARCHIVE_DIR, SUMS_NAME, archive_is_current
from evaluation.datasets.manifest import read_manifest_stream
from evaluation.errors import DatasetError
from evaluation.storage import open_url
from spectra.benchmarks.models import Dataset
from spectra.benchmarks.selectors import dataset_get
from spectra.core import objectstore
from spectra.core.downloads import as_attachment, ranged_file_response
from spectra.core.errors import NotFoundError
from spectra.core.views import read_only

MAX_SUMS_BYTES = 1 << 20  # a line per archive: far below this


def _dataset(manifest_sha256: str) -> Dataset:
    try:
        return dataset_get(manifest_sha256=manifest_sha256)
    except NotFoundError as error:
        raise Http404(error.message) from None


@read_only
def archive(request: HttpRequest, manifest_sha256: str, split: str) -> HttpResponse:
    dataset = _dataset(manifest_sha256)
    entry = next((a for a in dataset.archives if a["split"] == split), None)
    if entry is None:
        splits = ", ".join(a["split"] for a in dataset.archives) or "none built yet"
        raise Http404(f"This dataset version has no archive for split {split!r}. Archives: {splits}.")
    if entry["hidden"] and not archive_is_current(entry):  # its ids could be traced back to labelled manifest lines
        raise Http404(f"The archive of the hidden split {split!r} was written by an older version that did not keep "
                      "its labels hidden; it is withheld until a maintainer re-runs build_mini_benchmark.")
    name = f"{dataset.benchmark.slug}-{dataset.variant}-{manifest_sha256[:12]}-{entry['name']}"
    key = objectstore.key_of(dataset.root)
    if key is not None:  # the store answers Range requests itself; the link lives SPECTRA_PRESIGN_SECONDS
        return HttpResponseRedirect(objectstore.presigned_link(f"{key}/{ARCHIVE_DIR}/{entry['name']}", download_name=name))
    path = Path(dataset.root) / ARCHIVE_DIR / entry["name"]
    return ranged_file_response(request, path, filename=name, etag=entry["sha256"], content_type="application/x-tar")


@read_only
def checksums(request: HttpRequest, manifest_sha256: str) -> HttpResponse:
    dataset = _dataset(manifest_sha256)
    missing = "No archives have been built for this dataset version yet."
    if not dataset.archives:
        raise Http404(missing)
    try:
        with open_url(f"{dataset.root.rstrip('/')}/{ARCHIVE_DIR}/{SUMS_NAME}") as handle:
            sums = handle.read(MAX_SUMS_BYTES).decode("ascii")
    except DatasetError:
        raise Http404(missing) from None
    response = HttpResponse(sums, content_type="text/plain; charset=us-ascii")
    return as_attachment(response, SUMS_NAME)


def _public_lines(dataset: Dataset) -> Iterator[bytes]:
    hidden = set(dataset.hidden_splits)
    with open_url(dataset.manifest_url) as handle:
        for row in read_manifest_stream(handle):
            if row.split not in hidden:
                yield row.to_line()


@read_only
def manifest(request: HttpRequest, manifest_sha256: str) -> HttpResponse:
    dataset = _dataset(manifest_sha256)
    response = StreamingHttpResponse(_public_lines(dataset), content_type="application/jsonl")
    suffix = "-public" if dataset.hidden_splits else ""
    return as_attachment(response, f"manifest-{manifest_sha256[:12]}{suffix}.jsonl")
