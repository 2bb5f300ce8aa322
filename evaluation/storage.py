"""Reading stored objects on the evaluation side: local paths, ``s3://`` through s3fs, and presigned links.

An evaluation worker holds no write credential and no database setting. Its shard message brings presigned GET
links (``https://…?X-Amz-Signature=…``) for the artifact and the manifest, and its environment a key that can
only read the dataset prefix (``READ_KEY_VARIABLES``), so it can read any image of any shard and nothing else.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import urlsplit

import fsspec
import fsspec.asyn

from evaluation.errors import DatasetError, PlatformFault, StoreLinkExpired
from evaluation.s3_reader import S3Reader, xml_text

ENDPOINT_VARIABLE = "SPECTRA_S3_ENDPOINT_URL"
REGION_VARIABLE = "SPECTRA_S3_REGION"
DEFAULT_REGION = "us-east-1"
# The evaluation worker's only credential: read access to the dataset prefix, nothing else.
READ_KEY_VARIABLES = ("SPECTRA_S3_READ_ACCESS_KEY_ID", "SPECTRA_S3_READ_SECRET_ACCESS_KEY")
LINK_TIMEOUT_SECONDS = 60.0
LOCAL_PROTOCOLS = (None, "file", "local")
LINK_PROTOCOLS = ("http", "https")
CHUNK = 1 << 20
S3_SCHEME = "s3://"
_image_reader: S3Reader | None = None  # set by configure_s3: the image hot path's GETs (evaluation.s3_reader)


def configure_s3(*, endpoint_url: str, key: str, secret: str, region: str = DEFAULT_REGION) -> None:
    """Make every ``s3://`` URL opened through fsspec in this process use this endpoint and key."""
    global _image_reader
    fsspec.config.conf["s3"] = {"key": key, "secret": secret, "endpoint_url": endpoint_url,
                                "client_kwargs": {"region_name": region}}
    from s3fs import S3FileSystem

    S3FileSystem.clear_instance_cache()  # instances made before keep their old settings otherwise
    _image_reader = S3Reader(endpoint_url=endpoint_url, key=key, secret=secret, region=region)


def configure_reader_from_env(environ: Mapping[str, str] = os.environ) -> bool:
    """The evaluation worker's set-up: the read-only key, when the store is S3. False when there is none."""
    endpoint = environ.get(ENDPOINT_VARIABLE, "").strip()
    key, secret = (environ.get(name, "").strip() for name in READ_KEY_VARIABLES)
    if not (endpoint and key and secret):
        return False
    configure_s3(endpoint_url=endpoint, key=key, secret=secret, region=environ.get(REGION_VARIABLE) or DEFAULT_REGION)
    return True


def is_local(url: str) -> bool:
    return fsspec.core.split_protocol(url)[0] in LOCAL_PROTOCOLS


def is_link(url: str) -> bool:
    return fsspec.core.split_protocol(url)[0] in LINK_PROTOCOLS


def shown(url: str) -> str:
    """``url`` as it may be shown and logged: a presigned link without its query (the signature)."""
    return urlsplit(url)._replace(query="").geturl() if is_link(url) else url


@contextmanager
def open_url(url: str) -> Iterator[BinaryIO]:
    """The object at ``url`` opened for streamed reading; failures in plain words (a missing object is a
    DatasetError, an expired link a StoreLinkExpired, an unreachable store a PlatformFault)."""
    handle = _open_link(url) if is_link(url) else _open_fsspec(url)
    with handle:
        yield handle


def _open_fsspec(url: str) -> BinaryIO:
    try:
        return fsspec.open(url, "rb").open()
    except FileNotFoundError:
        raise DatasetError(f"{url} does not exist") from None
    except PermissionError as error:
        raise PlatformFault(f"the store refused to let this worker read {url}: {error}") from None


def _open_link(url: str) -> BinaryIO:
    try:
        return urllib.request.urlopen(url, timeout=LINK_TIMEOUT_SECONDS)  # noqa: S310 - http(s) only, checked above
    except urllib.error.HTTPError as error:
        raise _link_refused(url, error) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PlatformFault(f"the object store at {urlsplit(url).netloc} cannot be reached: {reason}") from None


def _link_refused(url: str, error: urllib.error.HTTPError) -> PlatformFault:
    body = error.read(4096).decode("utf-8", "replace")
    code, message = (xml_text(body, tag) for tag in ("Code", "Message"))
    where = shown(url)
    if "expired" in f"{code} {message}".lower():
        return StoreLinkExpired(
            f"The presigned link to {where} has expired (the store said: {message or code}): the shard waited in "
            "the queue longer than its links live (SPECTRA_PRESIGN_SECONDS). It is sent again with fresh links.")
    if error.code == 404:
        return DatasetError(f"{where} does not exist in the object store")
    return PlatformFault(f"the object store refused {where}: HTTP {error.code} {code or ''} {message or ''}".rstrip())


@contextmanager
def local_copy(url: str) -> Iterator[Path]:
    """A local path for ``url``: the file itself when local, else a streamed temporary copy."""
    if is_local(url):
        yield Path(fsspec.core.split_protocol(url)[1])
        return
    with tempfile.TemporaryDirectory(prefix="spectra-object-") as folder:
        target = Path(folder) / "object"
        with open_url(url) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK)
        yield target


def read_if_present(url: str) -> bytes | None:
    """The whole (small) object at ``url``, or None when there is none. One GET: no HEAD and no listing, which the
    evaluation worker's read-only key is not allowed."""
    fs, path = fsspec.core.url_to_fs(url)
    try:
        return fs.cat_file(path, **_one_get(fs))
    except FileNotFoundError:
        return None
    except PermissionError as error:
        raise PlatformFault(f"the store refused to let this worker read {shown(url)}: {error}") from None


def read_objects(root: str, paths: Sequence[str]) -> list[bytes]:
    """The objects ``root``/``path`` of a remote store, in the order of ``paths``, fetched concurrently (one GET
    each, no HEAD): by the lean signed reader for ``s3://``, else on fsspec's event loop. Paths are literal: a "["
    in a file name is not a glob."""
    if root.startswith(S3_SCHEME) and _image_reader is not None:
        bucket, _, prefix = root[len(S3_SCHEME):].partition("/")
        return _image_reader.read_many(bucket, [f"{prefix.strip('/')}/{path}".lstrip("/") for path in paths])
    fs, base = fsspec.core.url_to_fs(root)
    keys = [f"{base.rstrip('/')}/{path}" for path in paths]
    if getattr(fs, "async_impl", False):
        fetched = fsspec.asyn.sync(fs.loop, _gather_objects, fs, keys)
    else:
        fetched = [_fetch_object(fs, key) for key in keys]
    for path, blob in zip(paths, fetched, strict=True):
        if isinstance(blob, FileNotFoundError):
            raise DatasetError(f"image {path} is missing from the dataset")
        if isinstance(blob, BaseException):
            raise PlatformFault(f"the object store failed to give image {path}: {blob}")
    return cast(list[bytes], fetched)


def _one_get(fs: fsspec.AbstractFileSystem) -> dict[str, int]:
    """s3fs asks for an object's size (a HEAD, and a listing when it is missing) before a concurrent ranged read;
    one plain GET per object halves the requests, and the read-only key may not list."""
    return {"max_concurrency": 1} if "s3" in fs.protocol else {}


async def _gather_objects(fs: fsspec.AbstractFileSystem, keys: list[str]) -> list[bytes | BaseException]:
    return await asyncio.gather(*(fs._cat_file(key, **_one_get(fs)) for key in keys), return_exceptions=True)


def _fetch_object(fs: fsspec.AbstractFileSystem, key: str) -> bytes | BaseException:
    try:
        return fs.cat_file(key, **_one_get(fs))
    except OSError as error:
        return error
