"""Dataset downloads: checksummed archives, resumable with HTTP Range, streamed, and hidden labels stay hidden."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from spectra.benchmarks.services import dataset_archives_build


@pytest.fixture
def archived(mini_dataset):
    dataset_archives_build(dataset=mini_dataset)
    return mini_dataset


def _body(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)  # streamed, never read whole into memory
    return b"".join(response.streaming_content)


def _archive_url(dataset, split: str) -> str:
    return reverse("dataset-archive", args=[dataset.manifest_sha256, split])


def test_archives_match_their_published_sums(client, archived) -> None:
    sums = client.get(reverse("dataset-checksums", args=[archived.manifest_sha256])).content.decode()
    published = dict(reversed(line.split("  ")) for line in sums.splitlines())
    assert set(published) == {"train.tar", "val.tar", "test.tar"}
    for split in ("train", "test"):
        response = client.get(_archive_url(archived, split))
        assert response["Accept-Ranges"] == "bytes"
        assert hashlib.sha256(_body(response)).hexdigest() == published[f"{split}.tar"]


def test_a_download_resumes_with_a_range_request(client, archived) -> None:
    whole = _body(client.get(_archive_url(archived, "val")))
    first = client.get(_archive_url(archived, "val"), HTTP_RANGE="bytes=0-99999")
    assert first.status_code == 206 and first["Content-Range"] == f"bytes 0-99999/{len(whole)}"
    rest = client.get(_archive_url(archived, "val"), HTTP_RANGE="bytes=100000-")
    assert rest.status_code == 206 and int(rest["Content-Length"]) == len(whole) - 100000
    assert _body(first) + _body(rest) == whole
    tail = client.get(_archive_url(archived, "val"), HTTP_RANGE="bytes=-512")
    assert _body(tail) == whole[-512:]


def test_an_unsatisfiable_range_is_416_and_a_stale_if_range_gets_the_whole_file(client, archived) -> None:
    whole = _body(client.get(_archive_url(archived, "val")))
    response = client.get(_archive_url(archived, "val"), HTTP_RANGE=f"bytes={len(whole) + 10}-")
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{len(whole)}"
    stale = client.get(_archive_url(archived, "val"), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"not-the-etag"')
    assert stale.status_code == 200 and len(_body(stale)) == len(whole)


def test_the_hidden_test_split_carries_images_and_ids_but_never_labels(client, archived, mini_root) -> None:
    data = _body(client.get(_archive_url(archived, "test")))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        ids = list(csv.DictReader(io.StringIO(tar.extractfile("test/ids.csv").read().decode())))
    test_rows = [r for r in map(json.loads, (mini_root / "manifest.jsonl").open()) if r["split"] == "test"]
    assert len(ids) == len(test_rows) and set(ids[0]) == {"id", "width", "height", "format"}
    for word in ("real", "vae", "upsample", "spectral", "label", "generator"):
        assert not any(word in name for name in names), word
    manifest = _body(client.get(reverse("dataset-manifest", args=[archived.manifest_sha256]))).decode()
    assert '"split":"test"' not in manifest and '"split":"train"' in manifest
    page = client.get(reverse("benchmark-detail", args=["mini"])).content.decode()
    assert "hidden labels" in page and archived.archives[0]["sha256"] in page
    api = client.get(reverse("api:benchmark-detail", args=["mini"])).json()
    assert "test" in api["datasets"][0]["hidden_splits"]


def test_an_unknown_version_or_split_is_a_plain_404(client, archived) -> None:
    assert client.get(_archive_url(archived, "nope")).status_code == 404
    assert client.get(reverse("dataset-checksums", args=["0" * 64])).status_code == 404
