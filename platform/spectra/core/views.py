"""Error pages in plain words, rendered in the site's layout (never a traceback); under the API's prefix they
answer in the API's error shape {"message", "extra"} instead, whatever the URL was."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from spectra.api import API_PREFIX

View = Callable[..., HttpResponse]


def _error(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if request.path_info.startswith(f"/{API_PREFIX}"):
        return JsonResponse({"message": message, "extra": {}}, status=status)
    return render(request, "error.html", {"title": title, "message": message}, status=status)


def request_too_large_message(exception: Exception | None) -> str | None:
    """What to tell whoever sent a request Django refused for its size, in plain words (None: another fault)."""
    if isinstance(exception, RequestDataTooBig):
        return ("The request's form fields are larger than the server accepts (files aside). Shorten the text "
                "fields and send the detector as the file.")
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return "The request has more fields or files than the server accepts; send one detector per request."
    return None


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = request_too_large_message(exception)
    return _error(request, 400, "Bad request",
                  message or "The request could not be understood. Please check what you sent.")


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


def methods_allowed(*methods: str) -> Callable[[View], View]:
    """Answer any other HTTP method with a 405 page saying which ones the address takes (Django's
    require_http_methods answers with an empty body)."""
    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if request.method not in methods:
                response = _error(request, 405, "Method not allowed",
                                  f"This address does not take {request.method} requests; it takes "
                                  f"{' and '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)
        return checked
    return decorate


read_only = methods_allowed("GET", "HEAD")
