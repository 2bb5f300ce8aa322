"""Writes of artifacts: the upload's checks and its storage under its sha256.

The web process only inspects an upload's bytes (evaluation.detectors.formats never deserialises); the
detector is loaded and probed on the evaluation worker, whose verdict comes back through shard_done.
"""
from __future__ import annotations

import hashlib
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

from evaluation.detectors.formats import INPUT_SIZE_RANGE, ArtifactFormat, artifact_architecture, sniff_artifact
from evaluation.errors import ArtifactRejected
from models_zoo.registry import UnknownModelError, get_card, uploadable_names
from spectra.core.errors import ApplicationError
from spectra.submissions.models import Artifact


def _stream_sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def artifact_check(*, upload: UploadedFile, declared_format: str, input_size: int,
                   architecture: str = "") -> tuple[ArtifactFormat, str]:
    """The upload's format from its bytes, and the zoo architecture of a safetensors file; ApplicationError
    says what to do when it is refused."""
    limit = settings.SPECTRA_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise ApplicationError(
            f"The file is {upload.size / 2**20:.1f} MiB; the limit is {limit / 2**20:.0f} MiB. "
            "Export a smaller model (e.g. fp16 ONNX) or ask a maintainer to raise SPECTRA_MAX_UPLOAD_MB."
        )
    low, high = INPUT_SIZE_RANGE
    if not low <= input_size <= high:
        raise ApplicationError(f"The input size must be between {low} and {high} pixels; got {input_size}.")
    try:
        fmt = sniff_artifact(upload.file, declared=ArtifactFormat(declared_format))
    except ValueError:
        raise ApplicationError(f"Unknown format {declared_format!r}; choose one of "
                               f"{', '.join(f.value for f in ArtifactFormat)}.") from None
    except ArtifactRejected as error:
        raise ApplicationError(error.message) from None
    return fmt, _architecture_check(upload, fmt, architecture.strip())


def _architecture_check(upload: UploadedFile, fmt: ArtifactFormat, architecture: str) -> str:
    if fmt is not ArtifactFormat.SAFETENSORS:
        if architecture:
            raise ApplicationError(f"An architecture is named only with a safetensors upload; a {fmt.value} file "
                                   "carries its own. Leave the architecture blank.")
        return ""
    try:
        name = artifact_architecture(upload.file, architecture)
        card = get_card(name)
    except ArtifactRejected as error:
        raise ApplicationError(error.message) from None
    except UnknownModelError as error:
        raise ApplicationError(f"{error} Architectures: {', '.join(uploadable_names())}.") from None
    if not card.uploadable:
        raise ApplicationError(f"The zoo entry {name!r} is not a detector architecture; choose one of "
                               f"{', '.join(uploadable_names())}.")
    return name


def artifact_store(*, owner, upload: UploadedFile, declared_format: str, input_size: int,
                   architecture: str = "") -> Artifact:
    """Store the upload under its sha256 (once per owner) after checking its bytes."""
    fmt, architecture = artifact_check(upload=upload, declared_format=declared_format, input_size=input_size,
                                       architecture=architecture)
    sha = _stream_sha256(upload.file)
    existing = Artifact.objects.filter(owner=owner, sha256=sha, input_size=input_size, architecture=architecture).first()
    if existing is not None:
        return existing
    artifact = Artifact(owner=owner, format=fmt.value, sha256=sha, size=upload.size or 0, input_size=input_size,
                        architecture=architecture, original_name=(upload.name or "")[:255])
    name = f"artifacts/{sha}.{artifact.extension}"
    if not default_storage.exists(name):
        upload.file.seek(0)
        name = default_storage.save(name, upload)
    artifact.file.name = name
    artifact.save()
    return artifact
