"""Where the evaluation worker can read a stored object: a local path or the storage's URL (s3://…)."""
from __future__ import annotations

from django.core.files.storage import default_storage


def storage_url(name: str) -> str:
    try:
        return default_storage.path(name)
    except NotImplementedError:  # remote storages have no local path; the worker reads the URL via fsspec
        return default_storage.url(name)
