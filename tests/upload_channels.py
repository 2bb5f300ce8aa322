"""Uploading a detector the two ways a submitter can (the form at /submit/ and POST /api/v1/submissions/), and
reading the answer the way that channel's user would: shared by the upload tests and the bad-input corpus."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

INPUT_SIZE = 64
MiB = 1024 * 1024


def pad_onnx(data: bytes, total: int) -> bytes:
    """A still-valid ONNX file of exactly ``total`` bytes: a ModelProto doc_string (field 6) appended."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    payload = total - len(data) - 1  # 1 byte of tag; the varint's own size is solved for below
    for width in range(1, 6):
        if len(varint(payload - width)) == width:
            padded = data + b"\x32" + varint(payload - width) + b" " * (payload - width)
            assert len(padded) == total
            return padded
    raise AssertionError("unreachable")


def stored_files(media_root: Path) -> list[str]:
    return sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())


@dataclass
class Uploader:
    """Posts an upload through one channel and reads its answer the way that channel's user would."""

    via: str  # "form" | "api"
    client: Client

    @property
    def url(self) -> str:
        return reverse("submit") if self.via == "form" else reverse("api:submission-create")

    def post(self, data: bytes, *, filename: str = "detector.onnx", fmt: str = "onnx",
             input_size: int | str = INPUT_SIZE, name: str = "my detector", architecture: str = "",
             **extra_fields: str) -> HttpResponse:
        fields = {"name": name, "benchmark": "mini", "format": fmt, "input_size": input_size,
                  "architecture": architecture, **extra_fields,
                  "file": SimpleUploadedFile(filename, data, content_type="application/octet-stream")}
        return self.client.post(self.url, fields)

    def created_id(self, response: HttpResponse) -> int:
        if self.via == "form":
            assert response.status_code == 302, html.unescape(response.content.decode())[:3000]
            return int(response.url.rstrip("/").split("/")[-1])
        assert response.status_code == 201, response.content.decode()
        return response.json()["id"]

    def refusal(self, response: HttpResponse) -> str:
        """The refusal's text as shown: the form's errors in the page, or the API's error body."""
        assert response.status_code == 400, response.content.decode()[:3000]
        if self.via == "form":
            form = response.context["form"]
            shown = " ".join(str(e) for errors in form.errors.values() for e in errors)
            assert shown, "the form was refused without an error message"
            page = html.unescape(response.content.decode())
            for errors in form.errors.values():
                for error in errors:
                    assert error in page, f"{error!r} is not shown on the page"
            return shown
        body = response.json()
        assert set(body) == {"message", "extra"}
        assert isinstance(body["message"], str) and body["message"]
        assert isinstance(body["extra"], dict)
        return body["message"] + " " + json.dumps(body["extra"])


def make_uploader(via: str, user) -> Uploader:  # noqa: ANN001  (a Django user)
    """The form with a logged-in session, or the API with the user's token only (no session: what curl sends)."""
    if via == "form":
        client = Client()
        client.force_login(user)
    else:
        token, _ = Token.objects.get_or_create(user=user)
        client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    return Uploader(via, client)
