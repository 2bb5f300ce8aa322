"""Broken model files through the real upload form and the API (the web process's sniff_artifact), then straight
into load_detector (the evaluation worker's loader, which checks the bytes again), and into the loaders behind it
with that second check switched off (the third line of defence)."""
from __future__ import annotations

import json
import pickle
import resource
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch
from django.test.client import ClientHandler
from rest_framework.authtoken.models import Token

import models_zoo.registry  # noqa: F401  (wires the zoo's architectures into the loader, as the worker does)
from evaluation.detectors import loading
from evaluation.detectors.formats import artifact_architecture
from evaluation.detectors.loading import load_detector
from evaluation.errors import DetectorLoadError, UserFault
from spectra.submissions.models import Artifact, EvaluationRun, Submission
from tests.bad_inputs import corpus
from tests.bad_inputs.checks import assert_a_good_upload_is_queued
from tests.upload_channels import INPUT_SIZE, MiB, Uploader, make_uploader, pad_onnx, stored_files

MODELS = corpus.of_family("model")
CPU = torch.device("cpu")


def _names(kinds: list[corpus.Kind]) -> list[str]:
    return [kind.name for kind in kinds]


def _load(model: corpus.ModelFile):  # noqa: ANN202
    with model.path.open("rb") as handle:  # what the web process would have stored as the artifact's architecture
        architecture = model.architecture or (artifact_architecture(handle) if model.fmt == "safetensors" else "")
    return load_detector(model.path, model.fmt, input_size=INPUT_SIZE, device=CPU, architecture=architecture)


@pytest.mark.parametrize("kind", MODELS, ids=_names(MODELS))
def test_a_bad_model_upload_is_refused_in_plain_words_and_the_next_good_upload_is_queued(
    kind: corpus.Kind, uploader: Uploader, tmp_path: Path, settings, good_onnx: bytes, mini_dataset, send,
    media_root: Path, django_capture_on_commit_callbacks,
) -> None:
    model = kind.build(tmp_path)
    for name, value in model.settings.items():
        setattr(settings, name, value)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = uploader.post(model.path.read_bytes(), filename=model.path.name, fmt=model.fmt,
                                 architecture=model.architecture)
    message = uploader.refusal(response)
    assert kind.message in message, message
    assert "Traceback" not in response.content.decode()
    assert not (tmp_path / corpus.MARKER).exists(), "the pickle's payload ran"
    assert (Artifact.objects.count(), Submission.objects.count(), EvaluationRun.objects.count()) == (0, 0, 0)
    assert stored_files(media_root) == [] and callbacks == [] and send.call_count == 0
    assert_a_good_upload_is_queued(uploader, good_onnx, send, django_capture_on_commit_callbacks)


@pytest.mark.parametrize("kind", MODELS, ids=_names(MODELS))
def test_load_detector_refuses_the_same_file_in_the_same_words(kind: corpus.Kind, tmp_path: Path) -> None:
    model = kind.build(tmp_path)
    if model.web_only:  # only its size is wrong: the file itself is a detector
        assert _load(model).scores(torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE)).shape == (2,)
        return
    with pytest.raises(DetectorLoadError) as caught:
        _load(model)
    assert kind.message in caught.value.message
    assert not (tmp_path / corpus.MARKER).exists(), "the pickle's payload ran"


# The zip bomb is left out: with the byte check switched off, torch's reader would inflate its 4.3 GB.
BEHIND_THE_CHECK = [kind for kind in MODELS if kind.name not in ("zip-bomb", "over-upload-limit")]


@pytest.mark.parametrize("kind", BEHIND_THE_CHECK, ids=_names(BEHIND_THE_CHECK))
def test_the_loaders_behind_the_byte_check_refuse_each_file_too(kind: corpus.Kind, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(loading, "_check_bytes_again", lambda path, fmt: None)
    model = kind.build(tmp_path)
    with pytest.raises(UserFault) as caught:
        _load(model)
    message = caught.value.message
    assert message and "\n" not in message and "Traceback" not in message
    assert not (tmp_path / corpus.MARKER).exists(), "the pickle's payload ran"


@pytest.mark.parametrize("name", ["pickle-payload-raw", "pickle-payload-torch-save"])
def test_the_pickle_payloads_are_live(name: str, tmp_path: Path) -> None:
    """The control: unpickled the usual way, each payload does create its marker (so its absence above means
    something)."""
    model = corpus.BY_NAME[name].build(tmp_path)
    if name == "pickle-payload-raw":
        pickle.loads(model.path.read_bytes())  # noqa: S301  (the point of the test)
    else:
        torch.load(model.path, weights_only=False)
    assert (tmp_path / corpus.MARKER).exists()


def test_the_zip_bomb_is_real_and_refused_without_being_inflated(
    tmp_path: Path, alice, good_onnx: bytes, mini_dataset, send, django_capture_on_commit_callbacks,
) -> None:
    model = corpus.BY_NAME["zip-bomb"].build(tmp_path)
    assert model.path.stat().st_size < 8 * MiB
    with zipfile.ZipFile(model.path) as archive, archive.open("bomb/data/0") as member:
        assert archive.getinfo("bomb/data/0").file_size == corpus.ZIP_BOMB_BYTES
        assert member.read(16 * MiB) == bytes(16 * MiB)  # it does inflate, to zeros
    rss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        for via in ("form", "api"):
            uploader = make_uploader(via, alice)
            response = uploader.post(model.path.read_bytes(), filename="detector.pt", fmt="torchscript")
            assert "zip bomb" in uploader.refusal(response)
        with pytest.raises(DetectorLoadError, match="zip bomb"):
            _load(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB, f"{peak / MiB:.0f} MiB allocated while refusing a zip bomb"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kib < 256 * 1024
    assert_a_good_upload_is_queued(make_uploader("api", alice), good_onnx, send, django_capture_on_commit_callbacks)


class StreamedBody:
    """A wsgi.input that makes a multipart upload of ``file_size`` bytes as it is read, and notes, each time the
    file part has grown past ``watch_after`` bytes, how many bytes sit in the upload temporary folder."""

    BOUNDARY = "streamedboundary"
    FIELDS = {"benchmark": "mini", "format": "onnx", "input_size": str(INPUT_SIZE), "name": "huge"}

    def __init__(self, file_size: int, temp_dir: Path, watch_after: int) -> None:
        head = "".join(f"--{self.BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                       for name, value in self.FIELDS.items())
        head += (f"--{self.BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.onnx\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n")
        self.head, self.tail = head.encode(), f"\r\n--{self.BOUNDARY}--\r\n".encode()
        self.file_size, self.temp_dir, self.watch_after = file_size, temp_dir, watch_after
        self.length = len(self.head) + file_size + len(self.tail)
        self.position, self.temp_bytes_seen = 0, []

    def read(self, size: int = -1) -> bytes:
        size = self.length - self.position if size is None or size < 0 else min(size, self.length - self.position)
        out = bytearray()
        while len(out) < size:
            offset = self.position + len(out)
            if offset < len(self.head):
                out += self.head[offset:offset + size - len(out)]
            elif offset < len(self.head) + self.file_size:
                out += bytes(min(size - len(out), len(self.head) + self.file_size - offset))
            else:
                start = offset - len(self.head) - self.file_size
                out += self.tail[start:start + size - len(out)]
        self.position += len(out)
        if self.position - len(self.head) > self.watch_after:
            self.temp_bytes_seen.append(sum(p.stat().st_size for p in self.temp_dir.iterdir()))
        return bytes(out)

    def readline(self, size: int = -1) -> bytes:  # WSGI asks for it; the multipart parser reads in chunks
        line = bytearray()
        while (size < 0 or len(line) < size) and (byte := self.read(1)):
            line += byte
            if byte == b"\n":
                break
        return bytes(line)


def _post_streamed(body: StreamedBody, token: str):  # noqa: ANN202
    """POST ``body`` to the upload API through Django's request handler, as a WSGI server would, with a token."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/submissions/", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http", "wsgi.input": body, "wsgi.errors": None, "CONTENT_LENGTH": str(body.length),
        "CONTENT_TYPE": f"multipart/form-data; boundary={body.BOUNDARY}", "HTTP_AUTHORIZATION": f"Token {token}",
    }
    return ClientHandler()(environ)


def test_an_upload_over_the_limit_is_refused_while_it_streams_never_held_whole(
    alice, settings, tmp_path: Path, good_onnx: bytes, mini_dataset, send, media_root: Path,
    django_capture_on_commit_callbacks,
) -> None:
    """32 MiB sent against a 1 MiB limit: once the file passes the limit plus a few parser chunks, nothing of it is
    on disk any more and the Python heap never held more than a few chunks."""
    settings.SPECTRA_MAX_UPLOAD_BYTES = 1 * MiB
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    (tmp_path / "upload-tmp").mkdir()
    token, _ = Token.objects.get_or_create(user=alice)
    first = _post_streamed(StreamedBody(2 * MiB, tmp_path / "upload-tmp", watch_after=2 * MiB), token.key)
    assert first.status_code == 400  # the first request loads what every later one shares: measured after it
    body = StreamedBody(32 * MiB, tmp_path / "upload-tmp", watch_after=2 * MiB)
    tracemalloc.start()
    try:
        response = _post_streamed(body, token.key)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 400, response.content[:500]
    assert "The file is 32.0 MiB; the limit is 1 MiB." in json.loads(response.content)["message"]
    assert body.position == body.length  # the whole body was read (and dropped), so the answer reaches the client
    assert body.temp_bytes_seen and max(body.temp_bytes_seen) == 0, "the refused file was still being stored"
    assert peak < 2 * MiB, f"{peak / MiB:.1f} MiB held while refusing a 32 MiB upload"
    assert (Artifact.objects.count(), Submission.objects.count()) == (0, 0) and stored_files(media_root) == []
    assert_a_good_upload_is_queued(make_uploader("api", alice), good_onnx, send, django_capture_on_commit_callbacks)


def test_an_upload_just_under_the_limit_still_streams_through(alice, settings, mini_dataset, send, good_onnx) -> None:
    settings.SPECTRA_MAX_UPLOAD_BYTES = 3 * MiB  # above Django's 2 MiB in memory: it goes to a temporary file
    uploader = make_uploader("form", alice)
    uploader.created_id(uploader.post(pad_onnx(good_onnx, 3 * MiB)))
    assert Artifact.objects.get().size == 3 * MiB
