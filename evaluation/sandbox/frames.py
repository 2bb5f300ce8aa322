"""Frames on the pipes between the evaluation worker and its scorer child.

A frame is a 4-byte big-endian header length, a JSON header, then ``header["nbytes"]`` bytes of payload (a
tensor's raw bytes). The child is untrusted, so the trusted side keeps its pipe ends non-blocking, reads and
writes against a deadline, and refuses headers and payloads beyond fixed sizes before allocating anything.
"""
from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

MAX_HEADER_BYTES = 64 * 1024
_LENGTH = struct.Struct(">I")


class FrameError(Exception):
    """The other side broke the framing: it closed the pipe, sent too much, or sent nonsense."""


class FrameTimeout(FrameError):
    """Nothing complete arrived before the deadline."""


def write_frame(fd: int, header: dict[str, Any], payload: bytes | memoryview = b"", *,
                deadline: float | None = None) -> None:
    payload = memoryview(payload).cast("B")
    body = json.dumps({**header, "nbytes": len(payload)}).encode()
    _write_all(fd, memoryview(_LENGTH.pack(len(body)) + body), deadline)
    if len(payload):
        _write_all(fd, payload, deadline)


def _write_all(fd: int, view: memoryview, deadline: float | None) -> None:
    while view:
        _wait(fd, deadline, writing=True)
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # the trusted side's ends are non-blocking: wait for room again
            continue
        except BrokenPipeError as exc:
            raise FrameError("the other side closed the pipe") from exc
        view = view[written:]


def _wait(fd: int, deadline: float | None, *, writing: bool = False) -> None:
    """Return once ``fd`` is ready, or raise FrameTimeout at the deadline (None: return at once)."""
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    ready = select.select([], [fd], [], max(remaining, 0))[1] if writing else select.select([fd], [], [], max(remaining, 0))[0]
    if not ready:
        raise FrameTimeout("no answer before the deadline")


def read_frame(fd: int, *, deadline: float | None = None,
               max_payload: int = 1 << 62) -> tuple[dict[str, Any], bytearray]:
    """One frame from ``fd``; ``deadline`` is a time.monotonic() value (None: wait for ever)."""
    (length,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size, deadline))
    if length > MAX_HEADER_BYTES:
        raise FrameError(f"a frame header of {length} bytes (at most {MAX_HEADER_BYTES})")
    try:
        header = json.loads(bytes(_read_exactly(fd, length, deadline)))
    except ValueError as exc:
        raise FrameError("a frame header that is not JSON") from exc
    nbytes = header.get("nbytes") if isinstance(header, dict) else None
    if not isinstance(nbytes, int) or not 0 <= nbytes <= max_payload:
        raise FrameError(f"a frame payload of {nbytes!r} bytes (at most {max_payload})")
    return header, _read_exactly(fd, nbytes, deadline)


def _read_exactly(fd: int, count: int, deadline: float | None) -> bytearray:
    buffer = bytearray(count)
    view, filled = memoryview(buffer), 0
    while filled < count:
        _wait(fd, deadline)
        try:
            got = os.readv(fd, [view[filled:]])
        except BlockingIOError:
            continue
        if got == 0:
            raise FrameError("the other side closed the pipe")
        filled += got
    return buffer
