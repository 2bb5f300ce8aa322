"""Whole-object GETs from an S3-compatible store for the image hot path: SigV4-signed, on a pool of kept-alive
connections, in threads.

s3fs (aiobotocore) spends about 1 ms of CPU on each GET (request building, event hooks, response parsing:
`perf/store_throughput.py` measures it). An evaluation worker makes one GET per image, so that CPU is taken from
decoding and scoring. A GET of a known key needs much less: one HMAC with a signing key derived once a day
(AWS Signature Version 4, header form, path-style addressing) and urllib3. Everything else that reads the store
(the manifest, dataset.json, the platform's copies) keeps going through s3fs or boto3.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import urllib3

from evaluation.errors import DatasetError, PlatformFault

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"
CONNECTIONS = 8
TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)


def xml_text(body: str, tag: str) -> str:
    """The text of the first ``<tag>`` of an S3 error document ("" when there is none)."""
    match = re.search(rf"<{tag}>([^<]*)</{tag}>", body)
    return match.group(1).strip() if match else ""


class S3Reader:
    """Reads objects of one endpoint with one key. Thread-safe; one per process (``evaluation.storage``)."""

    def __init__(self, *, endpoint_url: str, key: str, secret: str, region: str) -> None:
        parts = urlsplit(endpoint_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.host, self.key, self.secret, self.region = parts.netloc, key, secret, region
        self.pool = urllib3.PoolManager(maxsize=CONNECTIONS, timeout=TIMEOUT, retries=urllib3.Retry(
            total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504), allowed_methods={"GET"}))
        self.threads = ThreadPoolExecutor(CONNECTIONS, thread_name_prefix="spectra-s3-get")
        self._day, self._signing_key = "", b""

    def headers(self, path: str, now: datetime | None = None) -> dict[str, str]:
        """The headers that sign ``GET path`` (``/bucket/key``, already URI-encoded) at ``now``."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day, scope = stamp[:8], f"{stamp[:8]}/{self.region}/s3/aws4_request"
        canonical = "\n".join(("GET", path, "", f"host:{self.host}", f"x-amz-content-sha256:{EMPTY_SHA256}",
                               f"x-amz-date:{stamp}", "", SIGNED_HEADERS, EMPTY_SHA256))
        to_sign = "\n".join((ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()))
        signature = hmac.new(self._key_of(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {"x-amz-date": stamp, "x-amz-content-sha256": EMPTY_SHA256,
                "Authorization": f"{ALGORITHM} Credential={self.key}/{scope}, SignedHeaders={SIGNED_HEADERS}, "
                                 f"Signature={signature}"}

    def _key_of(self, day: str) -> bytes:
        if day != self._day:  # a race here only derives the same key twice
            derived = f"AWS4{self.secret}".encode()
            for part in (day, self.region, "s3", "aws4_request"):
                derived = hmac.new(derived, part.encode(), hashlib.sha256).digest()
            self._day, self._signing_key = day, derived
        return self._signing_key

    def read(self, bucket: str, key: str) -> bytes:
        path = "/" + quote(f"{bucket}/{key}", safe="/~")
        try:
            response = self.pool.request("GET", self.origin + path, headers=self.headers(path), preload_content=True)
        except urllib3.exceptions.HTTPError as error:
            raise PlatformFault(f"the object store at {self.host} cannot be reached: {error}") from None
        if response.status == 200:
            return response.data
        if response.status == 404:
            raise DatasetError(f"s3://{bucket}/{key} does not exist in the object store")
        body = response.data[:4096].decode("utf-8", "replace")
        said = " ".join(filter(None, (xml_text(body, "Code"), xml_text(body, "Message"))))
        raise PlatformFault(f"the object store refused s3://{bucket}/{key}: HTTP {response.status} {said}".rstrip())

    def read_many(self, bucket: str, keys: Sequence[str]) -> list[bytes]:
        """The objects in the order of ``keys``, fetched concurrently; the first failure is raised."""
        return list(self.threads.map(lambda key: self.read(bucket, key), keys))
