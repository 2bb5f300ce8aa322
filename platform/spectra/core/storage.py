"""Where an evaluation worker reads a stored object: a local path, or a presigned GET link to the object store
(the worker holds no key that could read an artifact)."""
from __future__ import annotations

from django.core.files.storage import default_storage

from spectra.core import objectstore


def storage_url(name: str) -> str:
    """The object ``name`` of the default storage (an artifact) for an evaluation worker."""
    if objectstore.is_remote():
        return objectstore.presigned_link(name)
    return default_storage.path(name)


def dataset_object_url(root: str, relative: str) -> str:
    """The file ``relative`` of the dataset version at ``root`` for an evaluation worker: a presigned link when the
    version is in the store, else its local path."""
    key = objectstore.key_of(root)
    return objectstore.presigned_link(f"{key}/{relative}") if key else f"{root.rstrip('/')}/{relative}"
