"""The HTML pages, rendered through the test client: public pages, a submission in each state, the
locally served plotly.js, error pages in the site's layout, sign-up and API tokens."""
from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from evaluation.messages import ShardDone
from evaluation.version import EVALUATOR_VERSION
from spectra.submissions.models import Submission
from spectra.submissions.services.runs import shard_done_record
from spectra.submissions.services.submissions import submission_create
from tests import detector_files
from tests.reference import scores_with_accuracy, split_rows

LAYOUT = ('<header class="top">', '<a class="brand" href="/">Spectra</a>', "<footer>")


@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return detector_files.write_onnx(tmp_path_factory.mktemp("pages") / "d.onnx", seed=7, input_size=32).read_bytes()


@pytest.fixture
def submission(alice, mini_dataset, onnx_bytes, send) -> Submission:
    return submission_create(
        owner=alice, name="pages detector", benchmark=mini_dataset.benchmark,
        upload=SimpleUploadedFile("d.onnx", onnx_bytes), declared_format="onnx", input_size=32,
    )


def outcome_for(submission: Submission, **fields) -> ShardDone:
    run = submission.runs.get()
    return ShardDone(
        run_id=run.pk, evaluator_version=EVALUATOR_VERSION, artifact_sha256=submission.artifact.sha256,
        manifest_sha256=submission.dataset.manifest_sha256, protocol=run.protocol,
        protocol_version=run.protocol_version, **fields,
    )


def page_of(response) -> str:
    return html.unescape(response.content.decode())


def assert_in_layout(page: str) -> None:
    for mark in LAYOUT:
        assert mark in page, mark
    assert "Traceback" not in page


# --- public pages ------------------------------------------------------------------------------------


def test_the_home_page_lists_the_benchmarks(client, mini_dataset):
    response = client.get("/")
    assert response.status_code == 200
    page = page_of(response)
    assert_in_layout(page)
    assert '<a href="/benchmarks/mini/">Mini (synthetic)</a>' in page
    assert '<a href="/leaderboards/mini/">Leaderboard</a>' in page


def test_the_benchmark_page_shows_the_manifest_and_the_subsets(client, mini_dataset):
    response = client.get("/benchmarks/mini/")
    assert response.status_code == 200
    page = page_of(response)
    assert f"<code>{mini_dataset.manifest_sha256}</code>" in page
    assert "real (shared pool)" in page and ">184<" in page


def test_the_leaderboard_page_says_the_benchmark_is_synthetic(client, mini_dataset):
    response = client.get("/leaderboards/mini/")
    assert response.status_code == 200
    page = page_of(response)
    assert '<span class="badge synthetic">synthetic</span>' in page
    assert "No finished submission yet." in page


def test_the_leaderboard_page_shows_a_finished_submission(client, submission, mini_root, test_line_numbers):
    scores = scores_with_accuracy(split_rows(mini_root), 0.625)
    shard_done_record(outcome=outcome_for(
        submission, status="done", row_ids=test_line_numbers, scores=scores))
    page = page_of(client.get("/leaderboards/mini/"))
    assert f'<tr data-submission="{submission.pk}">' in page
    cell = re.search(r'<td class="num" data-metric="acc_mean">0\.6250\s*<span class="ci">\[(0\.\d{4}), (0\.\d{4})\]</span>', page)
    assert cell and float(cell[1]) < 0.625 < float(cell[2])
    assert re.search(r'<td class="num" data-generator="vae" title="95 % interval \[0\.\d{4}, 0\.\d{4}\]">0\.6250</td>', page)
    assert '<td class="num" data-tie-group="1">1</td>' in page
    assert f"artifact <code>{submission.artifact.sha256[:12]}</code>" in page


# --- a submission in each state ----------------------------------------------------------------------


def test_a_queued_submission_shows_a_progress_bar(client, submission):
    response = client.get(f"/submissions/{submission.pk}/")
    assert response.status_code == 200
    page = page_of(response)
    assert_in_layout(page)
    assert '<progress id="progress" max="1104" value="0"></progress>' in page
    assert "0 / 1104 images" in page
    assert submission.artifact.sha256 in page
    assert 'id="results"' not in page and "plotly.min.js" not in page


def test_a_failed_submission_shows_the_error_and_no_traceback(client, submission):
    error = "The detector's output has 3 columns per image; return N logits, N×1 logits or N×2 [real, generated]."
    shard_done_record(outcome=outcome_for(submission, status="failed", error=error, error_kind="user"))
    response = client.get(f"/submissions/{submission.pk}/")
    assert response.status_code == 200
    page = page_of(response)
    assert_in_layout(page)
    assert "The evaluation failed because of the detector." in page
    assert f"<p>{error}</p>" in page
    assert "<progress" not in page and 'id="results"' not in page


def test_a_submission_that_failed_on_our_side_says_so(client, submission, test_line_numbers):
    shard_done_record(outcome=outcome_for(
        submission, status="done", row_ids=test_line_numbers[:3], scores=[0.5] * 3))
    page = page_of(client.get(f"/submissions/{submission.pk}/"))
    assert "The evaluation failed on our side." in page and "failed the platform's checks" in page


def test_a_finished_submission_shows_the_results_table_and_the_chart(client, submission, test_line_numbers):
    # Every image scored logit 0.75: all generated right, all real wrong, and ROC-AUC undefined-free but flat (0.5).
    shard_done_record(outcome=outcome_for(
        submission, status="done", row_ids=test_line_numbers, scores=[0.75] * len(test_line_numbers)))
    response = client.get(f"/submissions/{submission.pk}/")
    assert response.status_code == 200
    page = page_of(response)
    assert '<table class="grid" id="results">' in page
    assert page.index('<tr data-subset="mean">') < page.index('<tr data-subset="spectral">')
    assert '<td class="num">1.0000 <span class="ci">[1.0000, 1.0000]</span></td>' in page  # accuracy on generated
    assert '<td class="num">0.5000 <span class="ci">[0.5000, 0.5000]</span></td>' in page  # acc_mean, no spread
    assert f"evaluator {EVALUATOR_VERSION}" in page
    assert '<div id="chart" class="chart"></div>' in page
    assert '<script src="/static/plotly/plotly.min.js"></script>' in page
    assert '<script id="figures" type="application/json">' in page and '<script src="/static/charts.js">' in page
    assert "<progress" not in page


def test_plotly_js_is_served_locally(client, db):  # db: closing the response sends request_finished
    response = client.get("/static/plotly/plotly.min.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    response.close()
    assert len(body) > 1_000_000 and int(response.headers["Content-Length"]) == len(body)
    assert b"plotly.js" in body[:2000]
    assert response.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))


# --- not found ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "says"), [
    ("/no/such/page/", "There is nothing at this address."),
    ("/submissions/999999/", "There is no submission #999999."),
    ("/benchmarks/nope/", "There is no benchmark 'nope'."),
    ("/leaderboards/nope/", "There is no benchmark 'nope'."),
])
def test_unknown_addresses_give_a_404_page_in_the_sites_layout(client, db, url, says):
    response = client.get(url)
    assert response.status_code == 404
    page = page_of(response)
    assert_in_layout(page)
    assert "<h1>Not found</h1>" in page and says in page


# --- accounts ----------------------------------------------------------------------------------------


def test_signing_up_creates_the_user_and_logs_them_in(client, db):
    response = client.post("/accounts/signup/", {
        "username": "bob", "password1": "a long enough passphrase", "password2": "a long enough passphrase",
    })
    assert response.status_code == 302 and response.url == "/"
    bob = get_user_model().objects.get(username="bob")
    assert bob.check_password("a long enough passphrase")
    assert int(client.session["_auth_user_id"]) == bob.pk
    assert "Log out (bob)" in page_of(client.get("/"))


def test_sign_up_with_mismatched_passwords_is_refused(client, db):
    response = client.post("/accounts/signup/", {
        "username": "bob", "password1": "a long enough passphrase", "password2": "another passphrase",
    })
    assert response.status_code == 400
    assert "didn’t match" in page_of(response) or "didn't match" in page_of(response)
    assert not get_user_model().objects.filter(username="bob").exists()


def test_the_token_page_shows_the_users_token(alice_client, alice):
    response = alice_client.get("/accounts/token/")
    assert response.status_code == 200
    key = Token.objects.get(user=alice).key
    assert len(key) == 40
    assert f"Authorization: Token {key}" in page_of(response)
    assert alice_client.get("/accounts/token/").context["token"].key == key  # stable between visits


def test_rotating_the_token_replaces_it(alice_client, alice):
    alice_client.get("/accounts/token/")
    old = Token.objects.get(user=alice).key

    response = alice_client.post("/accounts/token/rotate/")

    assert response.status_code == 302 and response.url == "/accounts/token/"
    new = Token.objects.get(user=alice).key
    assert new != old
    page = page_of(alice_client.get("/accounts/token/"))
    assert new in page and old not in page
    assert Client(HTTP_AUTHORIZATION=f"Token {old}").post(reverse("api:submission-create")).status_code == 401


def test_the_token_pages_need_a_login_and_rotation_needs_a_post(client, alice_client, db):
    assert Client().get("/accounts/token/").url == "/accounts/login/?next=/accounts/token/"
    assert alice_client.get("/accounts/token/rotate/").status_code == 405
