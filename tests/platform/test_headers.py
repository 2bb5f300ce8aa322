"""Headers every response carries in every mode (CSP without inline scripts, nosniff, referrer policy, no framing),
templates without inline script, and downloads that are never rendered: an uploaded file whose bytes are an HTML page
with a script is saved as opaque bytes, and MEDIA_URL serves nothing."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from spectra.benchmarks.services import dataset_archives_build
from spectra.submissions.models import Submission
from spectra.submissions.services.submissions import submission_create

HTML_PAGE = b"<!doctype html><html><body><script>document.title = 'owned'; alert(document.cookie)</script></body></html>"
ZOO_ENTRY = "resnet50"
# A <script> that runs: one without src, unless it is a data block (json_script's type="application/json").
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def assert_no_inline_script(text: str, where: str) -> None:
    for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JAVASCRIPT_URL):
        assert not pattern.search(text), (where, pattern.search(text).group(0))


def test_no_template_has_an_inline_script_or_handler() -> None:
    templates = sorted((settings.BASE_DIR / "templates").rglob("*.html"))
    assert len(templates) > 10
    for template in templates:
        assert_no_inline_script(template.read_text(encoding="utf-8"), template.name)


@pytest.fixture
def submission(alice, mini_dataset, onnx_bytes, send) -> Submission:
    return submission_create(owner=alice, name="headers", benchmark=mini_dataset.benchmark, declared_format="onnx",
                             upload=SimpleUploadedFile("d.onnx", onnx_bytes), input_size=32, zoo_entry=ZOO_ENTRY)


PAGES = ("/", "/benchmarks/mini/", "/leaderboards/mini/", "/zoo/", f"/zoo/{ZOO_ENTRY}/", "/submit/", "/submissions/",
         "/accounts/token/", "/api/docs/", "/api/v1/benchmarks/", "/admin/", "/admin/submissions/submission/",
         "/no/such/page/")


def test_every_page_carries_the_security_headers_and_runs_no_inline_script(admin_client, submission) -> None:
    for url in (*PAGES, f"/submissions/{submission.pk}/"):
        response = admin_client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code in (200, 404), url
        policy = directives(response)
        assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], url
        assert response["X-Content-Type-Options"] == "nosniff" and response["Referrer-Policy"] == "same-origin", url
        assert response["X-Frame-Options"] == "DENY", url
        if response["Content-Type"].startswith("text/html"):
            assert_no_inline_script(response.content.decode(), url)


def test_the_login_and_sign_up_pages_carry_the_policy_for_anonymous_visitors(db) -> None:
    for url in ("/accounts/login/", "/accounts/signup/"):
        response = Client().get(url)
        assert directives(response)["script-src"] == ["'self'"]
        assert_no_inline_script(response.content.decode(), url)


def _stored_as_html(submission: Submission) -> Path:
    """The artifact's stored bytes replaced by an HTML page with a script (as if such a file had been stored)."""
    path = Path(submission.artifact.file.path)
    path.write_bytes(HTML_PAGE)
    return path


def assert_opaque_download(response, body: bytes) -> None:
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == body


def test_an_artifact_whose_bytes_are_html_downloads_as_opaque_bytes(alice_client, submission) -> None:
    _stored_as_html(submission)
    assert_opaque_download(alice_client.get(f"/submissions/{submission.pk}/artifact/"), HTML_PAGE)
    part = alice_client.get(f"/submissions/{submission.pk}/artifact/", HTTP_RANGE="bytes=0-14")
    assert part.status_code == 206
    assert_opaque_download(part, HTML_PAGE[:15])
    weights = alice_client.get(f"/zoo/{ZOO_ENTRY}/weights/{submission.artifact.sha256}/")
    assert_opaque_download(weights, HTML_PAGE)


def test_media_url_serves_nothing(alice_client, submission) -> None:
    path = _stored_as_html(submission)
    for client in (Client(), alice_client):
        response = client.get(settings.MEDIA_URL + submission.artifact.file.name)
        assert response.status_code == 404 and b"<script>document.title" not in response.content
    assert path.read_bytes() == HTML_PAGE  # the file is there: only never served under MEDIA_URL


def test_dataset_downloads_are_attachments_without_sniffing(client, mini_dataset) -> None:
    dataset_archives_build(dataset=mini_dataset)
    sha = mini_dataset.manifest_sha256
    for url, content_type in ((f"/datasets/{sha}/archives/train.tar", "application/x-tar"),
                              (f"/datasets/{sha}/SHA256SUMS", "text/plain; charset=us-ascii"),
                              (f"/datasets/{sha}/manifest.jsonl", "application/jsonl")):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Disposition"].startswith("attachment; filename="), url
        assert response["Content-Type"] == content_type and response["X-Content-Type-Options"] == "nosniff", url
