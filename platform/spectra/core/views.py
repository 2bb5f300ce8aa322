"""Error pages in plain words, rendered in the site's layout (never a traceback)."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _error(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "error.html", {"title": title, "message": message}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400, "Bad request", "The request could not be understood. Please check what you sent.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = str(exception.args[0]) if exception and exception.args and isinstance(exception.args[0], str) else ""
    return _error(request, 404, "Not found", detail or "There is nothing at this address.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form sent without this site's token (an old tab, blocked cookies, or another site)."""
    return _error(request, 403, "Form expired or sent from elsewhere (CSRF check failed)",
                  "The form was sent without this site's security token. Reload the page and send it again; "
                  "cookies must be allowed for this site.")


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500, "Something went wrong on our side", "The error was logged. Nothing you sent was lost.")
