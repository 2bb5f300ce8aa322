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

from evaluation.datasets.archives import ARCHIVE_VERSION, hidden_id
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


def test_the_hidden_test_split_carries_images_and_ids_but_never_labels(client, archived, mini_root, settings) -> None:
    data = _body(client.get(_archive_url(archived, "test")))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        ids = list(csv.DictReader(io.StringIO(tar.extractfile("test/ids.csv").read().decode())))
    lines = [json.loads(line) for line in (mini_root / "manifest.jsonl").open()]
    test_lines = [i for i, r in enumerate(lines) if r["split"] == "test"]
    assert len(ids) == len(test_lines) and set(ids[0]) == {"id", "width", "height", "format"}
    # Keyed with the server's secret, in id order: the order and the ids carry nothing (tests/evaluation/test_archives).
    keyed = sorted(hidden_id(settings.SPECTRA_HIDDEN_ID_KEY, archived.manifest_sha256, i) for i in test_lines)
    assert [r["id"] for r in ids] == keyed and names[:-1] == [f"test/{i}.png" for i in keyed]
    for word in ("real", "vae", "upsample", "spectral", "label", "generator"):
        assert not any(word in name for name in names), word
    manifest = _body(client.get(reverse("dataset-manifest", args=[archived.manifest_sha256]))).decode()
    assert '"split":"test"' not in manifest and '"split":"train"' in manifest
    page = client.get(reverse("benchmark-detail", args=["mini"])).content.decode()
    assert "hidden labels" in page and archived.archives[0]["sha256"] in page
    api = client.get(reverse("api:benchmark-detail", args=["mini"])).json()
    assert "test" in api["datasets"][0]["hidden_splits"]
    assert {a["version"] for a in api["datasets"][0]["archives"]} == {ARCHIVE_VERSION}


def test_the_hidden_ids_follow_the_servers_key(client, mini_dataset, settings) -> None:
    settings.SPECTRA_HIDDEN_ID_KEY = b"another server"
    dataset_archives_build(dataset=mini_dataset)
    with tarfile.open(fileobj=io.BytesIO(_body(client.get(_archive_url(mini_dataset, "test"))))) as tar:
        first = tar.getnames()[0]
    line = first.removeprefix("test/").removesuffix(".png")
    assert any(hidden_id(b"another server", mini_dataset.manifest_sha256, i) == line for i in range(5000))


def test_a_hidden_archive_written_by_an_older_version_is_withheld(client, archived) -> None:
    archived.archives = [{k: v for k, v in a.items() if k != "version"} for a in archived.archives]  # version 1
    archived.save(update_fields=["archives"])
    response = client.get(_archive_url(archived, "test"))
    assert response.status_code == 404 and "older version" in response.content.decode()
    assert client.get(_archive_url(archived, "train")).status_code == 200  # public splits leak nothing


def test_an_unknown_version_or_split_is_a_plain_404(client, archived) -> None:
    assert client.get(_archive_url(archived, "nope")).status_code == 404
    assert client.get(reverse("dataset-checksums", args=["0" * 64])).status_code == 404
