"""What every bad-input test checks after feeding its input: the answer is a plain message, and nothing else broke."""
from __future__ import annotations

import html

from django.http import HttpResponse

from tests.upload_channels import Uploader


def _strings(value: object) -> list[str]:
    """Every string inside a JSON value: the API's "extra" holds field errors as lists under field names."""
    if isinstance(value, str):
        return [value]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [text for key, item in items for text in ([str(key)] if isinstance(key, str) else []) + _strings(item)]


def shown_text(response: HttpResponse) -> str:
    """What the answer says: the API's {"message", "extra"} or the page's text; never a traceback."""
    if response.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        assert set(body) == {"message", "extra"}, body
        assert isinstance(body["message"], str) and body["message"] and isinstance(body["extra"], dict)
        return " ".join([body["message"], *_strings(body["extra"])])
    text = html.unescape(response.content.decode())
    assert "Traceback" not in text and "<title>Page not found at" not in text, text[:2000]
    return text


def assert_a_good_upload_is_queued(uploader: Uploader, good_onnx: bytes, send, capture) -> None:  # noqa: ANN001
    """The next good upload after a bad input is accepted, stored and its evaluation sent once committed."""
    from spectra.submissions.models import EvaluationRun, Submission

    send.reset_mock()
    with capture(execute=True):
        pk = uploader.created_id(uploader.post(good_onnx, name="the good one"))
    submission = Submission.objects.get(pk=pk)
    assert (submission.status, submission.name) == ("queued", "the good one")
    runs = list(EvaluationRun.objects.filter(submission=submission))
    assert runs and all(run.status == "queued" for run in runs)
    send.assert_called_once_with(runs=runs)
