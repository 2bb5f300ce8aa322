"""Bad requests to the pages and the API: oversized or mistyped fields, bodies the endpoint does not read, wrong
methods, ids and list pages that do not exist. Each is a 4xx whose text says what is wrong, never a 500, and the
next good upload is accepted and queued."""
from __future__ import annotations

import pytest
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from spectra.submissions.models import Submission
from tests.bad_inputs import corpus
from tests.bad_inputs.checks import assert_a_good_upload_is_queued, shown_text
from tests.upload_channels import make_uploader

REQUESTS = corpus.of_family("request")


def _clients(user) -> dict[str, Client]:  # noqa: ANN001
    """"form": a browser with a logged-in session; "api": a token only, as curl sends it."""
    browser = Client()
    browser.force_login(user)
    token, _ = Token.objects.get_or_create(user=user)
    return {"form": browser, "api": Client(HTTP_AUTHORIZATION=f"Token {token.key}")}


def _send(client: Client, call: corpus.Call):  # noqa: ANN202
    options = {} if call.content_type is None else {"content_type": call.content_type}
    if call.data is not None:
        options["data"] = call.data
    with override_settings(**call.settings):
        return getattr(client, call.method)(call.path, **options)


@pytest.mark.parametrize("kind", REQUESTS, ids=[kind.name for kind in REQUESTS])
def test_a_bad_request_is_a_4xx_in_plain_words_and_the_next_upload_is_queued(
    kind: corpus.Kind, alice, tmp_path, good_onnx: bytes, mini_dataset, send, django_capture_on_commit_callbacks,
) -> None:
    clients = _clients(alice)
    calls = kind.build(tmp_path)
    assert calls
    for call in calls:
        response = _send(clients[call.via], call)
        text = shown_text(response)
        assert response.status_code == call.status, (call, response.status_code, text[:1500])
        if call.via == "api":  # whatever went wrong, the API answers in its own shape
            assert response["Content-Type"] == "application/json", (call, text[:1500])
        assert (call.says or kind.message) in text, (call, text[:1500])
    assert Submission.objects.count() == 0 and send.call_count == 0
    assert_a_good_upload_is_queued(make_uploader("api", alice), good_onnx, send, django_capture_on_commit_callbacks)
