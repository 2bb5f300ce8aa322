"""The bytes of a run's stored per-image scores: zlib-compressed little-endian int64 row ids and float32 scores.

Under SPECTRA_STORAGE=s3 both go to the object store as one object (``encode``): a length, then the two streams.
Rows kept in the database (local storage, and every row stored before) hold the two streams in their own fields.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence

import numpy as np

SCORES_FOLDER = "scores"
_LENGTH = struct.Struct("<Q")


def compress_row_ids(row_ids: Sequence[int]) -> bytes:
    return zlib.compress(np.asarray(row_ids, dtype="<i8").tobytes())


def compress_scores(scores: Sequence[float]) -> bytes:
    return zlib.compress(np.asarray(scores, dtype="<f4").tobytes())


def encode(row_ids: bytes, scores: bytes) -> bytes:
    """One object of the two compressed streams."""
    return _LENGTH.pack(len(row_ids)) + row_ids + scores


def decode(blob: bytes) -> tuple[bytes, bytes]:
    (length,) = _LENGTH.unpack_from(blob)
    start = _LENGTH.size
    return blob[start:start + length], blob[start + length:]


def object_name(submission_id: int, run_id: int, blob: bytes) -> str:
    """Named by content: a shard sent again with the same scores finds its object already there."""
    return f"{SCORES_FOLDER}/{submission_id}/{run_id}-{hashlib.sha256(blob).hexdigest()[:16]}.bin"


def unpack(row_ids: bytes, scores: bytes) -> tuple[np.ndarray, np.ndarray]:
    return (np.frombuffer(zlib.decompress(row_ids), dtype="<i8"), np.frombuffer(zlib.decompress(scores), dtype="<f4"))
