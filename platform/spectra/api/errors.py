"""One error shape for the whole API: {"message": str, "extra": {...}}."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from spectra.core.errors import ApplicationError, NotFoundError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        status = 404 if isinstance(exc, NotFoundError) else 400
        return Response({"message": exc.message, "extra": exc.extra}, status=status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"message": "Some fields are invalid.", "extra": {"fields": response.data}}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = {"message": str(detail) + _what_it_takes(exc, context), "extra": {}}
    return response


def _what_it_takes(exc: Exception, context: dict[str, Any]) -> str:
    """For a body the endpoint cannot read, the media types it does read (DRF names only the one it refused)."""
    view = context.get("view")
    if not isinstance(exc, exceptions.UnsupportedMediaType) or view is None:
        return ""
    return f" This endpoint reads {' or '.join(parser.media_type for parser in view.get_parsers())}."
