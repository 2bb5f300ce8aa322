"""The upload size limit, enforced while the request body streams in.

``UploadLimitHandler`` comes first in FILE_UPLOAD_HANDLERS. It counts each file's bytes as they arrive and passes
them on to Django's own handlers (memory for small requests, a temporary file otherwise) until the file grows past
SPECTRA_MAX_UPLOAD_BYTES. From then on nothing is kept: the handlers after it drop what they hold (the temporary
file is deleted), the rest of the file is read and discarded, and the view receives an empty ``OversizedUpload``
that still knows how many bytes were sent, so ``artifact_check`` refuses it with its usual message.
"""
from __future__ import annotations

from io import BytesIO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler


class OversizedUpload(UploadedFile):
    """Stands for a file that was refused while it streamed in: no content, the size that was sent."""

    def __init__(self, name: str, content_type: str, size: int, charset: str | None) -> None:
        super().__init__(BytesIO(), name, content_type, size, charset)


class UploadLimitHandler(FileUploadHandler):
    def new_file(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003  (Django's signature)
        super().new_file(*args, **kwargs)
        self.oversized = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if not self.oversized and start + len(raw_data) > settings.SPECTRA_MAX_UPLOAD_BYTES:
            self.oversized = True
            self._drop_what_later_handlers_hold()
        return None if self.oversized else raw_data  # None: the handlers after this one see no more of the file

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self.oversized:
            return OversizedUpload(self.file_name, self.content_type, file_size, self.charset)
        return None  # a later handler returns the file

    def _drop_what_later_handlers_hold(self) -> None:
        # Django's own parser frees handlers' files the same way (MultiPartParser._close_files): each keeps its
        # file in ``file``; closing a TemporaryUploadedFile deletes it.
        handlers = list(self.request.upload_handlers) if self.request is not None else []
        for handler in handlers[handlers.index(self) + 1:] if self in handlers else []:
            if hasattr(handler, "file"):
                handler.file.close()
