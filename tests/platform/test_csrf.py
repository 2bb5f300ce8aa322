"""CSRF on every route of the site: a POST without this site's token is refused (403) on every URL pattern there is,
walked from the URL resolver so a new route is covered the day it is added; with the token taken from the rendered
form, as a browser sends it, each form does its work. The API: a token-authenticated POST needs no CSRF token (it
carries no ambient credential); a session-authenticated one does."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils.regex_helper import normalize
from rest_framework.authtoken.models import Token

from spectra.benchmarks.models import Benchmark
from spectra.benchmarks.services import benchmark_upsert
from spectra.submissions.models import Submission

# Values tried for each URL parameter until the URL resolves to the pattern it was built from (admin app labels
# are a regex alternation, object ids any path, slugs and hashes plain words).
CANDIDATES = ("1", "mini", "submissions", "auth", "x")
TOKEN_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _patterns(patterns: list, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        regex = prefix + entry.pattern.regex.pattern.lstrip("^")
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, regex.removesuffix("$"))
        else:
            yield regex, entry


def _concrete(regex: str, pattern: URLPattern) -> str | None:
    """A URL that resolves to ``pattern``, its parameters filled from CANDIDATES; None if none does."""
    for template, params in normalize(regex):
        for value in CANDIDATES:
            url = "/" + template % dict.fromkeys(params, value)
            try:
                match = resolve(url)
            except Resolver404:
                continue
            if match.func == pattern.callback or getattr(match.func, "cls", None) is getattr(pattern.callback, "cls", 0):
                return url
    return None


def every_route() -> list[str]:
    urls = [_concrete(regex, pattern) for regex, pattern in _patterns(get_resolver().url_patterns)]
    assert None not in urls, "a URL pattern got no concrete URL; add a value to CANDIDATES"
    return sorted(set(urls))


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.org", "a long root passphrase")


def csrf_client(user=None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def form_token(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, url
    return TOKEN_FIELD.search(page.content.decode()).group(1)


def test_the_walk_reaches_every_kind_of_route(db) -> None:
    routes = every_route()
    for expected in ("/accounts/login/", "/accounts/signup/", "/accounts/logout/", "/accounts/token/rotate/",
                     "/submit/", "/admin/login/", "/admin/submissions/submission/1/change/", "/api/v1/submissions/",
                     "/submissions/1/artifact/"):
        assert expected in routes
    assert len(routes) > 60  # the admin alone has five routes per model


def test_every_route_refuses_a_session_post_without_the_token(superuser) -> None:
    client = csrf_client(superuser)
    for url in every_route():
        response = client.post(url, {"name": "x"})
        assert response.status_code == 403, (url, response.status_code)
        if url.startswith("/api/"):
            # Some API views render errors as bare HTML ("403 Forbidden"): the same POST with the token is not
            # refused (405 on a read-only view, 400 on this incomplete upload), so the token was what was missing.
            token = form_token(client, "/accounts/token/")
            assert client.post(url, {"name": "x"}, HTTP_X_CSRFTOKEN=token).status_code in (400, 405), url
        else:
            assert b"CSRF check failed" in response.content, url
    assert Submission.objects.count() == 0


def test_every_page_refuses_an_anonymous_post_without_the_token(db) -> None:
    client = csrf_client()
    for url in every_route():
        response = client.post(url, {"username": "x", "password": "y"})
        if url.startswith("/api/"):  # no session, nothing to forge: the API refuses or answers on its own terms
            assert response.status_code in (401, 403, 405), url
        else:
            assert response.status_code == 403 and b"CSRF check failed" in response.content, url


def test_log_in_sign_up_and_log_out_work_with_the_token(alice) -> None:
    client = csrf_client()
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct horse battery",
                                                "csrfmiddlewaretoken": form_token(client, "/accounts/login/")})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(alice.pk)
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": form_token(client, "/accounts/token/")})
    assert response.status_code == 302 and "_auth_user_id" not in client.session
    response = client.post("/accounts/signup/", {"username": "carol", "password1": "a long enough passphrase",
                                                 "password2": "a long enough passphrase",
                                                 "csrfmiddlewaretoken": form_token(client, "/accounts/signup/")})
    assert response.status_code == 302 and get_user_model().objects.filter(username="carol").exists()


def test_the_token_rotation_works_with_the_token(alice) -> None:
    client = csrf_client(alice)
    before = Token.objects.get_or_create(user=alice)[0].key
    assert client.post("/accounts/token/rotate/").status_code == 403
    assert Token.objects.get(user=alice).key == before
    response = client.post("/accounts/token/rotate/", {"csrfmiddlewaretoken": form_token(client, "/accounts/token/")})
    assert response.status_code == 302 and Token.objects.get(user=alice).key != before


def upload_fields(onnx_bytes: bytes, **extra: str) -> dict:
    return {"benchmark": "mini", "format": "onnx", "input_size": "32", "name": "csrf detector",
            "file": SimpleUploadedFile("d.onnx", onnx_bytes), **extra}


def test_the_submit_form_works_with_the_token(alice, mini_dataset, onnx_bytes, send) -> None:
    client = csrf_client(alice)
    assert client.post("/submit/", upload_fields(onnx_bytes)).status_code == 403
    assert Submission.objects.count() == 0
    response = client.post("/submit/", upload_fields(onnx_bytes, csrfmiddlewaretoken=form_token(client, "/submit/")))
    submission = Submission.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/submissions/{submission.pk}/"


def test_the_admin_log_in_and_change_form_work_with_the_token(superuser) -> None:
    benchmark = benchmark_upsert(slug="b", name="Before", description="", is_synthetic=False)
    client = csrf_client()
    response = client.post("/admin/login/", {"username": "root", "password": "a long root passphrase",
                                             "csrfmiddlewaretoken": form_token(client, "/admin/login/")})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(superuser.pk)
    change = f"/admin/benchmarks/benchmark/{benchmark.pk}/change/"
    fields = {"slug": "b", "name": "After", "description": "", "_save": "Save"}
    assert client.post(change, fields).status_code == 403
    assert Benchmark.objects.get(pk=benchmark.pk).name == "Before"
    response = client.post(change, {**fields, "csrfmiddlewaretoken": form_token(client, change)})
    assert response.status_code == 302 and Benchmark.objects.get(pk=benchmark.pk).name == "After"


def test_a_token_authenticated_api_post_needs_no_csrf_token(alice, mini_dataset, onnx_bytes, send) -> None:
    client = csrf_client()
    token = Token.objects.create(user=alice)
    response = client.post("/api/v1/submissions/", upload_fields(onnx_bytes), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 201, response.content
    assert Submission.objects.get().owner == alice


def test_a_session_authenticated_api_post_needs_the_csrf_token(alice, mini_dataset, onnx_bytes, send) -> None:
    client = csrf_client(alice)
    refused = client.post("/api/v1/submissions/", upload_fields(onnx_bytes))
    assert refused.status_code == 403 and refused.json()["message"].startswith("CSRF Failed")
    assert Submission.objects.count() == 0
    token = form_token(client, "/submit/")  # the page's token, sent in the header as a script on the page would
    response = client.post("/api/v1/submissions/", upload_fields(onnx_bytes), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
