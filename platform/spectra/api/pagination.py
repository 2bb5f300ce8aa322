"""Paging of the API's lists by limit and offset, strict: a value the client got wrong is a 400 or a 404 that says
so, never a silently different page (DRF's LimitOffsetPagination falls back to its defaults)."""
from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.settings import api_settings

from spectra.core.errors import ApplicationError, NotFoundError


class DefaultPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def paginate_queryset(self, queryset, request: Request, view=None) -> list:  # noqa: ANN001  (DRF's signature)
        known = {self.limit_query_param, self.offset_query_param, api_settings.URL_FORMAT_OVERRIDE}
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ApplicationError(f"Unknown query parameter {', '.join(map(repr, unknown))}. {self._how()}",
                                   {"unknown": unknown})
        page = super().paginate_queryset(queryset, request, view)
        if self.offset and self.offset >= self.count:
            raise NotFoundError(f"The offset {self.offset} is past the end of the list, which has {self.count} "
                                f"item{'s' if self.count != 1 else ''}. {self._how()}")
        return page

    def get_limit(self, request: Request) -> int:
        return self._whole_number(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._whole_number(request, self.offset_query_param, 0, 0, None)

    def _whole_number(self, request: Request, name: str, default: int, low: int, high: int | None) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw) if raw.isascii() and raw.isdigit() else None
        except ValueError:  # more digits than int() converts: past the end of any list
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"from {low}"
            raise ApplicationError(f"{name}={raw[:40]!r} is not a whole number {bounds}. {self._how()}")
        return value

    def _how(self) -> str:
        return (f"Lists page with {self.limit_query_param} (1 to {self.max_limit}, default {self.default_limit}) "
                f"and {self.offset_query_param} (from 0).")
