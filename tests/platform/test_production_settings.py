"""Production mode (SPECTRA_ENV=production): the settings refuse to load without their secrets, naming the missing
ones, and with them Django's deployment check finds nothing; local mode needs no variable at all. Each case is a
real process with its own environment, as gunicorn or manage.py would start."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
# Every variable the settings read that could change the outcome is dropped: the process sees only what a case gives.
CLEARED = ("SPECTRA_ENV", "DJANGO_DEBUG", *settings.PRODUCTION_REQUIRED)
SETUP = "import django; django.setup()"
# The HTTPS-only settings as one JSON line, for comparing with what the mode promises.
SETTINGS_DUMP = (SETUP + "; import json; from django.conf import settings as s; print('SETTINGS', json.dumps([s.DEBUG, "
                 "s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
                 "s.SECURE_PROXY_SSL_HEADER, s.ALLOWED_HOSTS]))")


def production_secrets() -> dict[str, str]:
    return {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_ALLOWED_HOSTS": "spectra.example.org",
            "SPECTRA_HIDDEN_ID_KEY": secrets.token_urlsafe(32)}


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python args…`` from the repository root with only the given variables of those in CLEARED."""
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base.update(PYTHONPATH=os.pathsep.join([str(ROOT / "platform"), str(ROOT)]), DJANGO_SETTINGS_MODULE="spectra.settings")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True)


def dumped_settings(result: subprocess.CompletedProcess[str]) -> list:
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("SETTINGS "))
    return json.loads(line.removeprefix("SETTINGS "))


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: Spectra refuses to start with "
                           "SPECTRA_ENV=production: "), result.stderr
    return last


def test_without_any_secret_production_refuses_to_load_and_names_them_all() -> None:
    last = refusal(run("-c", SETUP, SPECTRA_ENV="production"))
    assert last.endswith("these environment variables must be set: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, "
                         "SPECTRA_HIDDEN_ID_KEY.")


@pytest.mark.parametrize("missing", settings.PRODUCTION_REQUIRED)
def test_each_missing_secret_is_named(missing: str) -> None:
    env = {k: v for k, v in production_secrets().items() if k != missing}
    last = refusal(run("-c", SETUP, SPECTRA_ENV="production", **env))
    assert last.endswith(f"these environment variables must be set: {missing}.")


def test_a_blank_secret_counts_as_missing() -> None:
    env = production_secrets() | {"SPECTRA_HIDDEN_ID_KEY": "  "}
    last = refusal(run("-c", SETUP, SPECTRA_ENV="production", **env))
    assert last.endswith("these environment variables must be set: SPECTRA_HIDDEN_ID_KEY.")


def test_the_public_local_key_and_debug_mode_are_refused() -> None:
    env = production_secrets() | {"DJANGO_SECRET_KEY": settings.LOCAL_SECRET_KEY, "DJANGO_DEBUG": "1"}
    last = refusal(run("-c", SETUP, SPECTRA_ENV="production", **env))
    assert "DJANGO_SECRET_KEY is the local default key" in last and "DJANGO_DEBUG is on" in last


def test_an_unknown_mode_is_refused_by_name() -> None:
    result = run("-c", SETUP, SPECTRA_ENV="staging")
    assert result.returncode != 0
    assert "SPECTRA_ENV='staging' is not one of local, production." in result.stderr


def test_with_the_secrets_the_deployment_check_finds_nothing() -> None:
    result = run("manage.py", "check", "--deploy", "--fail-level", "WARNING", SPECTRA_ENV="production",
                 **production_secrets())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_turns_on_https_only_settings() -> None:
    dumped = dumped_settings(run("-c", SETTINGS_DUMP, SPECTRA_ENV="production", **production_secrets()))
    assert dumped == [False, True, True, True, 365 * 24 * 3600, ["HTTP_X_FORWARDED_PROTO", "https"],
                      ["spectra.example.org"]]


def test_local_mode_needs_no_variable_and_serves_plain_http() -> None:
    assert dumped_settings(run("-c", SETTINGS_DUMP)) == [False, False, False, False, 0, None, ["127.0.0.1", "localhost"]]


# One request over plain HTTP and one through the TLS proxy, in a production process (the log-in page needs no database).
REQUESTS = SETUP + """
import json
from django.test import Client
client = Client(HTTP_HOST="spectra.example.org")
plain = client.get("/accounts/login/")
proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
cookie = proxied.cookies["csrftoken"]
print("SETTINGS", json.dumps([plain.status_code, plain["Location"], proxied.status_code,
      proxied["Strict-Transport-Security"], bool(cookie["secure"]), "Content-Security-Policy" in proxied]))
"""


def test_production_redirects_to_https_and_sends_hsts_and_secure_cookies_behind_the_proxy() -> None:
    dumped = dumped_settings(run("-c", REQUESTS, SPECTRA_ENV="production", **production_secrets()))
    assert dumped == [301, "https://spectra.example.org/accounts/login/", 200,
                      f"max-age={365 * 24 * 3600}; includeSubDomains; preload", True, True]


@pytest.mark.parametrize(("value", "words"), [
    ('{"adversarial": {"imagez": 10}}', "adversarial has no option imagez; its options are: attacks"),
    ('{"hessian": {}}', "no analysis 'hessian'; the analyses are: adversarial"),
    ('[1, 2]', "must be a JSON object"),
])
def test_a_misspelt_analysis_option_is_refused_by_name(monkeypatch, value: str, words: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from spectra.core.env import analysis_config

    monkeypatch.setenv("SPECTRA_ANALYSIS_CONFIG", value)
    with pytest.raises(ImproperlyConfigured, match=words.replace("(", r"\(")):
        analysis_config("SPECTRA_ANALYSIS_CONFIG")
    monkeypatch.setenv("SPECTRA_ANALYSIS_CONFIG", '{"landscape": {"grid": 51}}')
    assert analysis_config("SPECTRA_ANALYSIS_CONFIG") == {"landscape": {"grid": 51}}
