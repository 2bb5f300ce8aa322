"""Streaming file responses with HTTP Range support, so large downloads can be resumed.

The file is read in chunks as the client consumes the response: never whole into memory. Every download is an
attachment with MIME sniffing off, so a stored file whose bytes happen to be HTML is saved, never rendered as a page of
this site (uploads are served by these views only; MEDIA_URL has no route).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase

from spectra.core import objectstore

CHUNK = 1 << 20
# A download link of a private file is handed to one person who is allowed it: it need not live long.
DOWNLOAD_LINK_SECONDS = 15 * 60
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
ResponseT = TypeVar("ResponseT", bound=HttpResponseBase)


def _chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a single satisfiable range; None when unsatisfiable or malformed."""
    match = RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # a suffix: the last N bytes
        n = int(last)
        return (max(size - n, 0), size - 1) if n > 0 and size > 0 else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end and start < size else None


def as_attachment(response: ResponseT, filename: str) -> ResponseT:
    """Make ``response`` a download: saved under ``filename``, its declared type taken as is (no sniffing)."""
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def ranged_file_response(request: HttpRequest, path: Path, *, filename: str, etag: str,
                         content_type: str = "application/octet-stream") -> HttpResponse:
    size = path.stat().st_size
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    use_range = header is not None and (if_range is None or if_range.strip('"') == etag)
    if use_range:
        span = _parse_range(header, size)
        if span is None:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        first, last = span
        response = StreamingHttpResponse(_chunks(path, first, last - first + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
    else:
        response = StreamingHttpResponse(_chunks(path, 0, size), content_type=content_type)
        response["Content-Length"] = str(size)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = f'"{etag}"'
    return as_attachment(response, filename)


def stored_file_response(request: HttpRequest, name: str, *, filename: str, etag: str,
                         content_type: str = "application/octet-stream") -> HttpResponse:
    """The default storage's file ``name`` as a download: streamed from disk, or, in the object store, a redirect
    to a short-lived presigned link (the store answers Range requests and names the file itself). The caller has
    already checked who may have it."""
    if objectstore.is_remote():
        return HttpResponseRedirect(objectstore.presigned_link(name, download_name=filename,
                                                               seconds=DOWNLOAD_LINK_SECONDS))
    return ranged_file_response(request, Path(default_storage.path(name)), filename=filename, etag=etag,
                                content_type=content_type)
