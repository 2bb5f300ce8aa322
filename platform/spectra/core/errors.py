"""The web layer's error vocabulary: services raise ApplicationError with a message meant for people.

Views show ``message``; the API's exception handler turns it into ``{"message", "extra"}`` with 400.
"""
from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFoundError(ApplicationError):
    """The object asked for does not exist (HTTP 404)."""
