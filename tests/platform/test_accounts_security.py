"""Accounts: Django's four password validators, seen through the sign-up form, and django-axes' log-in lockout
(AXES_FAILURE_LIMIT wrong passwords for one username from one address, then a plain 429 page), which leaves other
users, other addresses and API tokens alone."""
from __future__ import annotations

import html

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.html import strip_tags
from rest_framework.authtoken.models import Token

SIMILAR = "The password is too similar to the username."
SHORT = "This password is too short. It must contain at least 8 characters."
COMMON = "This password is too common."
NUMERIC = "This password is entirely numeric."
LOCKED = "Too many log-in attempts"


def sign_up(client: Client, username: str, password: str):
    return client.post("/accounts/signup/", {"username": username, "password1": password, "password2": password})


@pytest.mark.parametrize(("username", "password", "message"), [
    ("stephanie.brooks", "stephanie.brooks!", SIMILAR),
    ("stephanie", "Zq7#xw", SHORT),
    ("stephanie", "password123", COMMON),
    ("stephanie", "48213907561", NUMERIC),
])
def test_sign_up_refuses_each_kind_of_weak_password_with_its_message(client, db, username, password, message) -> None:
    response = sign_up(client, username, password)
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    shown = [text for text in (SIMILAR, SHORT, COMMON, NUMERIC) if text in page]
    assert shown == [message]  # each password breaks exactly one rule, and only that rule is reported
    assert not get_user_model().objects.filter(username=username).exists()


def test_a_password_that_passes_all_four_validators_is_accepted(client, db) -> None:
    response = sign_up(client, "stephanie", "violet kettle 7 harbour")
    assert response.status_code == 302
    assert get_user_model().objects.get(username="stephanie").check_password("violet kettle 7 harbour")


def log_in(client: Client, username: str, password: str, address: str, **headers: str):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address,
                       **headers)


@pytest.fixture
def bob(db, django_user_model):
    return django_user_model.objects.create_user(username="bob", password="another horse battery")


def lock_out(client: Client, username: str, address: str, **headers: str) -> list[int]:
    """AXES_FAILURE_LIMIT wrong passwords in a row; the statuses seen."""
    return [log_in(client, username, "wrong guess", address, **headers).status_code
            for _ in range(settings.AXES_FAILURE_LIMIT)]


def test_after_the_failure_limit_even_the_right_password_is_refused_with_a_plain_page(alice) -> None:
    client = Client()
    statuses = lock_out(client, "alice", "10.0.0.1")
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form again, then the lockout
    response = log_in(client, "alice", "correct horse battery", "10.0.0.1")
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    page = html.unescape(response.content.decode())
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert LOCKED in page and '<a class="brand" href="/">Spectra</a>' in page and "Traceback" not in page
    assert (f"Logging in as alice from this address is paused after {settings.AXES_FAILURE_LIMIT} wrong passwords"
            f" in a row. Try again in {minutes} minutes") in " ".join(strip_tags(page).split())


def test_another_user_and_another_address_are_unaffected(alice, bob) -> None:
    lock_out(Client(), "alice", "10.0.0.1")
    assert log_in(Client(), "bob", "another horse battery", "10.0.0.1").status_code == 302
    assert log_in(Client(), "alice", "correct horse battery", "10.0.0.2").status_code == 302
    assert log_in(Client(), "alice", "correct horse battery", "10.0.0.1").status_code == 429


def test_the_admin_log_in_is_locked_out_too(alice) -> None:
    lock_out(Client(), "alice", "10.0.0.1")
    response = Client().post("/admin/login/", {"username": "alice", "password": "correct horse battery"},
                             REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429 and LOCKED in response.content.decode()


def test_a_locked_out_user_keeps_using_the_api_with_a_token(alice) -> None:
    lock_out(Client(), "alice", "10.0.0.1")
    token = Token.objects.create(user=alice)
    response = Client().post("/api/v1/submissions/", {}, HTTP_AUTHORIZATION=f"Token {token.key}",
                             REMOTE_ADDR="10.0.0.1")
    # Authenticated (an anonymous request gets 401): the upload is only refused for its missing fields.
    assert response.status_code == 400 and response.json()["message"] == "Some fields are invalid."
    assert Client().post("/api/v1/submissions/", {}, REMOTE_ADDR="10.0.0.1").status_code == 401


def test_behind_the_proxy_the_address_it_appended_counts_not_what_the_client_wrote(settings, alice) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # production: behind the TLS proxy
    client = Client()
    proxy = {"REMOTE_ADDR": "172.18.0.2", "HTTP_X_FORWARDED_PROTO": "https"}
    for attempt in range(settings.AXES_FAILURE_LIMIT):  # the client forges a new address in front each time
        log_in(client, "alice", "wrong guess", proxy["REMOTE_ADDR"], HTTP_X_FORWARDED_FOR=f"1.2.3.{attempt}, 10.0.0.1",
               HTTP_X_FORWARDED_PROTO="https")
    forged = log_in(client, "alice", "correct horse battery", proxy["REMOTE_ADDR"],
                    HTTP_X_FORWARDED_FOR="9.9.9.9, 10.0.0.1", HTTP_X_FORWARDED_PROTO="https")
    assert forged.status_code == 429
    elsewhere = log_in(Client(), "alice", "correct horse battery", proxy["REMOTE_ADDR"],
                       HTTP_X_FORWARDED_FOR="10.0.0.2", HTTP_X_FORWARDED_PROTO="https")
    assert elsewhere.status_code == 302  # the same proxy, another client: not locked out
