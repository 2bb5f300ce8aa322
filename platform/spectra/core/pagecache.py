"""Whole responses of the read pages and the read API, cached until the data they show changes.

A read page is a function of the database and of who asks. Rather than track which rows each page reads, a
counter per ``Scope``, its generation, moves on after every write to the models that pages show: a signal for each
save and delete, and ``bump`` by hand where a service writes with ``update`` or ``bulk_create``. Evaluation
progress, written every few seconds while anything runs, is a scope of its own, so that it retires the submission
pages that show it and not the leaderboards. A cached response is keyed on the generations of its scopes, the
address, the negotiated format, and everything that identifies the requester (the session and CSRF cookies, the
Authorization header), so nobody is served a page made for somebody else. A counter moves at the write and again
once its transaction commits: a page read by another process between the two, from the data as it was, is left
under a generation nobody asks for again. After a write, one request per page makes it again while the others
with the same key wait for it (up to ``WAIT_SECONDS``), so a burst of readers does not make it many times over.

The store is Django's cache, shared by every process (files under SPECTRA_VAR_DIR by default, Redis with
CACHE_URL). SPECTRA_PAGE_CACHE_SECONDS bounds how long any response is kept, and 0 turns the cache off.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from enum import StrEnum
from functools import partial, wraps

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest, HttpResponse

View = Callable[..., HttpResponse]
log = logging.getLogger(__name__)


class Scope(StrEnum):
    RESULTS = "results"  # what the leaderboards, benchmark and zoo pages show: results, submissions, datasets
    PROGRESS = "progress"  # the evaluation runs' progress, shown on a submission's own pages


EVERY_SCOPE = (Scope.RESULTS, Scope.PROGRESS)
RESULTS_ONLY = (Scope.RESULTS,)  # for pages that show no evaluation progress
WATCHED_APPS = frozenset({"benchmarks", "submissions", "leaderboards", "zoo"})
# Models of those apps that no page shows (the workers' liveness, written every few seconds) or that only the
# progress scope covers; every other model of WATCHED_APPS is in the results scope.
MODEL_SCOPES: dict[str, tuple[Scope, ...]] = {"evaluationrun": (Scope.PROGRESS,), "evaluationworker": (),
                                              "brokerincarnation": ()}
WAIT_SECONDS = 2.0  # the longest a request waits for another to make the page it asked for
_POLL_SECONDS = 0.01
_KEPT_HEADERS = ("Content-Type", "Content-Language", "Vary", "Allow")


def _safely(call: Callable[..., object], *args: object, default: object = None, **kwargs: object) -> object:
    """A cache call that, while the cache is away (Redis restarting), answers ``default``: pages are then made
    afresh, never refused. A generation not moved meanwhile is bounded by SPECTRA_PAGE_CACHE_SECONDS."""
    try:
        return call(*args, **kwargs)
    except Exception as error:  # the backend's own errors (redis.exceptions, OSError): one vocabulary is not given
        log.warning("page cache unavailable (%s): %s", type(error).__name__, error)
        return default


def _generation_key(scope: Scope) -> str:
    return f"pagecache:generation:{scope}"


def generation(scope: Scope) -> int:
    value = cache.get(_generation_key(scope))
    if value is None:
        cache.add(_generation_key(scope), 1, timeout=None)
        value = cache.get(_generation_key(scope), 1)
    return int(value)


def _advance_one(scope: Scope) -> None:
    try:
        cache.incr(_generation_key(scope))
    except ValueError:  # not there (a cleared cache): any new value retires every cached page
        cache.set(_generation_key(scope), 1, timeout=None)


def _advance(scopes: tuple[Scope, ...]) -> None:
    for scope in scopes:
        _safely(_advance_one, scope)


def bump(*scopes: Scope) -> None:
    """Retire the cached pages of ``scopes`` (the results scope when none is named): now, and again when the
    current transaction commits."""
    scopes = scopes or (Scope.RESULTS,)
    _advance(scopes)
    transaction.on_commit(partial(_advance, scopes))


def is_retirement(callback: object) -> bool:
    """Whether an on-commit callback is ``bump``'s (a test that counts a service's own callbacks skips these)."""
    return isinstance(callback, partial) and callback.func is _advance


def _bump_on_write(sender: type, **_: object) -> None:
    if sender._meta.app_label in WATCHED_APPS:
        scopes = MODEL_SCOPES.get(sender._meta.model_name, (Scope.RESULTS,))
        if scopes:
            bump(*scopes)


def watch_writes() -> None:
    """Connect the signals (CoreConfig.ready)."""
    post_save.connect(_bump_on_write, dispatch_uid="pagecache-save")
    post_delete.connect(_bump_on_write, dispatch_uid="pagecache-delete")


def _requester(request: HttpRequest) -> str:
    return "\0".join((request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""),
                      request.COOKIES.get(settings.CSRF_COOKIE_NAME, ""), request.META.get("HTTP_AUTHORIZATION", "")))


def _key(request: HttpRequest, scopes: tuple[Scope, ...]) -> str:
    parts = (request.get_full_path(), request.META.get("HTTP_ACCEPT", ""), _requester(request))
    generations = ".".join(str(generation(scope)) for scope in scopes)
    return f"pagecache:{generations}:{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()}"


def _cacheable_request(request: HttpRequest) -> bool:
    if settings.PAGE_CACHE_SECONDS <= 0 or request.method not in {"GET", "HEAD"}:
        return False
    # A flash message waiting to be shown is consumed by the page that shows it: render that page afresh.
    session = getattr(request, "session", None)
    return "messages" not in request.COOKIES and not (session is not None and session.get("_messages"))


def _new_csrf_cookie(request: HttpRequest) -> bool:
    """Whether the page carries a CSRF token of a secret the requester has no cookie of yet. Such a page works
    only with the cookie sent beside it; a page whose token is of the cookie the request sent works for as long
    as that cookie does, which is what the requester part of the key holds it to."""
    return bool(request.META.get("CSRF_COOKIE_NEEDS_UPDATE")) and (
        request.META.get("CSRF_COOKIE") != request.COOKIES.get(settings.CSRF_COOKIE_NAME))


def _cacheable_response(request: HttpRequest, response: HttpResponse) -> bool:
    session = getattr(request, "session", None)
    return (response.status_code == 200 and not response.streaming and not response.cookies
            and not _new_csrf_cookie(request) and not (session is not None and session.modified))


_NOT_KEPT = "not kept"  # stored in place of a page that cannot be cached, so nobody waits for it


def _made_and_kept(key: str, request: HttpRequest, make: Callable[[], HttpResponse]) -> HttpResponse:
    response = make()
    if hasattr(response, "render") and not response.is_rendered:
        response.render()  # a DRF or template response: cache the bytes it will send
    if _cacheable_response(request, response):
        headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
        _safely(cache.set, key, (response.content, headers), timeout=settings.PAGE_CACHE_SECONDS)
    else:
        _safely(cache.set, key, _NOT_KEPT, timeout=settings.PAGE_CACHE_SECONDS)
    return response


def _served(request: HttpRequest, scopes: tuple[Scope, ...], make: Callable[[], HttpResponse]) -> HttpResponse:
    key = _safely(_key, request, scopes)
    if key is None:
        return make()
    deadline = time.monotonic() + WAIT_SECONDS
    while (stored := _safely(cache.get, key)) is None:
        if _safely(cache.add, f"{key}:making", 1, timeout=WAIT_SECONDS, default=True):
            try:
                return _made_and_kept(key, request, make)
            finally:
                _safely(cache.delete, f"{key}:making")
        if time.monotonic() > deadline:
            return make()  # whoever makes it is slow: do not wait longer
        time.sleep(_POLL_SECONDS)  # another request is making this page
    if stored == _NOT_KEPT:
        return make()
    content, headers = stored
    return HttpResponse(content, headers=headers)


def cached_read(view: View | None = None, *, scopes: tuple[Scope, ...] = EVERY_SCOPE) -> View | Callable[[View], View]:
    """Serve ``view``'s 200 answers from the page cache while the generations of ``scopes`` stay the same. Use as
    ``@cached_read`` (every scope) or ``@cached_read(scopes=(Scope.RESULTS,))``."""
    def decorate(view: View) -> View:
        @wraps(view)
        def serve(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if not _cacheable_request(request):
                return view(request, *args, **kwargs)
            return _served(request, scopes, lambda: view(request, *args, **kwargs))
        return serve
    return decorate(view) if view is not None else decorate
