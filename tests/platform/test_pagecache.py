"""The page cache: a read page is served from it until a write changes what it shows, and never to anybody but
whoever it was made for (other sessions, other API tokens, a pending flash message, a fresh CSRF cookie)."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import HttpRequest
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token

from evaluation.messages import ShardProgress
from spectra.core import pagecache
from spectra.submissions.services.runs import shard_progress_record
from spectra.submissions.services.submissions import submission_create
from tests.platform.test_api import finish, make_submission


def _queries(client: Client, url: str, **extra: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200, response.content[:300]
    return len(queries), response.content


@pytest.fixture
def leaderboard_urls(mini_dataset) -> list[str]:
    slug = mini_dataset.benchmark.slug
    return [reverse("leaderboard", args=[slug]), reverse("api:leaderboard", args=[slug]),
            reverse("benchmark-detail", args=[slug]), reverse("api:benchmark-list")]


def test_a_second_read_is_served_from_the_cache_without_a_query(leaderboard_urls) -> None:
    client = Client()
    for url in leaderboard_urls:
        first_queries, first = _queries(client, url)
        again_queries, again = _queries(client, url)
        assert again == first and first_queries > 0 and again_queries == 0, url


def test_a_new_result_is_shown_at_once(leaderboard_urls, alice, mini_dataset, onnx_bytes, send,
                                       test_line_numbers) -> None:
    client = Client()
    before = {url: client.get(url).content for url in leaderboard_urls}
    submission = make_submission(alice, mini_dataset, onnx_bytes, "fresh-detector")
    finish(submission, test_line_numbers, [0.5] * len(test_line_numbers))
    for url in leaderboard_urls[:2]:
        page = client.get(url).content
        assert page != before[url] and b"fresh-detector" in page, url


def test_progress_written_with_update_is_shown(alice, mini_dataset, onnx_bytes, send) -> None:
    submission = make_submission(alice, mini_dataset, onnx_bytes, "in-progress")
    run = submission.runs.get()
    url, client = reverse("api:submission-detail", args=[submission.pk]), Client()
    assert client.get(url).json()["status"] == "queued"
    shard_progress_record(progress=ShardProgress(run_id=run.pk, done=7, total=run.total, stage="scoring",
                                                 attempt=run.attempt))
    assert client.get(url).json()["status"] == "running"


def test_a_private_row_reaches_its_owner_only_whatever_was_cached_first(mini_dataset, alice, onnx_bytes, send,
                                                                         test_line_numbers) -> None:
    secret = submission_create(owner=alice, name="secret-detector", benchmark=mini_dataset.benchmark,
                               upload=SimpleUploadedFile("s.onnx", onnx_bytes), declared_format="onnx",
                               input_size=32, private=True)
    finish(secret, test_line_numbers, [0.5] * len(test_line_numbers))
    bob = get_user_model().objects.create_user(username="bob", password="another horse battery")
    owner, other, anonymous = Client(), Client(), Client()
    owner.force_login(alice)
    other.force_login(bob)
    token = f"Token {Token.objects.create(user=alice).key}"
    for url in (reverse("leaderboard", args=[mini_dataset.benchmark.slug]),
                reverse("api:leaderboard", args=[mini_dataset.benchmark.slug])):
        assert b"secret-detector" in owner.get(url).content  # cached first, for the owner's session
        assert b"secret-detector" not in anonymous.get(url).content
        assert b"secret-detector" not in other.get(url).content
        assert b"secret-detector" in owner.get(url).content
    api_url = reverse("api:leaderboard", args=[mini_dataset.benchmark.slug])
    assert b"secret-detector" in anonymous.get(api_url, HTTP_AUTHORIZATION=token).content
    assert b"secret-detector" not in anonymous.get(api_url).content


def test_a_pending_flash_message_is_shown_and_not_cached(alice_client, mini_dataset) -> None:
    """Django's default message storage keeps them in a cookie, as a real view's ``messages.success`` does."""
    url = reverse("leaderboard", args=[mini_dataset.benchmark.slug])
    alice_client.get(url)  # cached for alice's session
    storage = CookieStorage(HttpRequest())
    alice_client.cookies[storage.cookie_name] = storage._encode([Message(messages.SUCCESS, "Your upload was received.")])
    assert b"Your upload was received." in alice_client.get(url).content
    assert b"Your upload was received." not in alice_client.get(url).content  # shown once, as messages are


def test_zero_seconds_turns_the_cache_off(settings, leaderboard_urls) -> None:
    settings.PAGE_CACHE_SECONDS = 0
    client = Client()
    client.get(leaderboard_urls[0])
    assert _queries(client, leaderboard_urls[0])[0] > 0


def test_progress_retires_the_submission_pages_and_not_the_leaderboards(alice, mini_dataset, onnx_bytes, send,
                                                                         leaderboard_urls) -> None:
    submission = make_submission(alice, mini_dataset, onnx_bytes, "scoped")
    status_url, client = reverse("api:submission-detail", args=[submission.pk]), Client()
    for url in (*leaderboard_urls, status_url):
        client.get(url)
    before = pagecache.generation(pagecache.Scope.RESULTS)
    pagecache.bump(pagecache.Scope.PROGRESS)
    assert pagecache.generation(pagecache.Scope.RESULTS) == before
    assert all(_queries(client, url)[0] == 0 for url in leaderboard_urls)
    assert _queries(client, status_url)[0] > 0  # made again under the new progress generation


def test_a_signed_in_page_is_cached_for_its_session_once_the_csrf_cookie_exists(alice_client, mini_dataset) -> None:
    url = reverse("leaderboard", args=[mini_dataset.benchmark.slug])
    first = alice_client.get(url)  # its log-out form needs a new CSRF cookie, sent beside this page only
    assert settings.CSRF_COOKIE_NAME in first.cookies
    assert _queries(alice_client, url)[0] > 0  # now with the cookie: made once more, and cached
    queries, page = _queries(alice_client, url)
    assert queries <= 2 and b"Log out (alice)" in page  # the session and its user are read; the page is not made
    anonymous = Client()
    assert b"Log out" not in anonymous.get(url).content
    anonymous.cookies[settings.CSRF_COOKIE_NAME] = alice_client.cookies[settings.CSRF_COOKIE_NAME].value
    assert b"Log out" not in anonymous.get(url).content  # alice's CSRF cookie without her session: not her page


def test_pages_are_made_afresh_while_the_cache_is_away(settings, leaderboard_urls, alice, mini_dataset, onnx_bytes,
                                                       send) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing listens there
    client = Client()
    for url in leaderboard_urls:
        assert client.get(url).status_code == 200, url
    submission = make_submission(alice, mini_dataset, onnx_bytes, "written-meanwhile")  # its bumps fail quietly
    response = Client().get(reverse("api:submission-detail", args=[submission.pk]))
    assert response.status_code == 200 and response.json()["name"] == "written-meanwhile"
