"""Uploading a detector through the web form (/submit/) and the API (POST /api/v1/submissions/).

No worker runs here: the one seam patched is ``services.runs.evaluation_runs_send``, so the broker is never
touched, and ``django_capture_on_commit_callbacks`` shows whether the send was scheduled after commit.
"""
from __future__ import annotations

import hashlib
import html
import json
import random
from pathlib import Path

import pytest
from django.conf import global_settings
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token

from evaluation.protocols import get_protocol
from spectra.core import pagecache
from spectra.submissions.models import Artifact, EvaluationRun, Submission
from tests import detector_files
from tests.upload_channels import INPUT_SIZE, MiB, Uploader, make_uploader, pad_onnx, stored_files

HOW_TO_EXPORT = ("torch.onnx.export", "torch.jit.save")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The bytes of every kind of upload, written by the real tools (torch.onnx, torch.jit, torch.save...)."""
    folder = tmp_path_factory.mktemp("uploads")
    writers = {
        "onnx": lambda p: detector_files.write_onnx(p, seed=1, input_size=INPUT_SIZE),
        "onnx_other": lambda p: detector_files.write_onnx(p, seed=2, input_size=INPUT_SIZE),
        "torchscript": lambda p: detector_files.write_torchscript(p, seed=1),
        "state_dict": detector_files.write_pickled_checkpoint,
        "whole_model": detector_files.write_pickled_model,
        "legacy_pickle": detector_files.write_legacy_pickle,
        "export_archive": detector_files.write_export_archive,
        "torch_package": detector_files.write_torch_package,
    }
    out = {name: Path(write(folder / name)).read_bytes() for name, write in writers.items()}
    out["safetensors"] = zoo_safetensors(folder / "named.safetensors", {"spectra.architecture": "spectral-lr"})
    out["safetensors_bare"] = zoo_safetensors(folder / "bare.safetensors", None)
    # A leading 0x00 can be no magic number and no ONNX tag, so the seeded bytes are "random" every time.
    out["random_bytes"] = b"\x00" + random.Random(0).randbytes(4095)
    out["empty"] = b""
    return out


def zoo_safetensors(path: Path, metadata: dict[str, str] | None) -> bytes:
    """Weights of the zoo's spectral-lr architecture at the upload's input size, as safetensors."""
    from safetensors.torch import save_file

    from models_zoo.registry import create_model

    state = create_model("spectral-lr", input_size=INPUT_SIZE).state_dict()
    save_file({name: tensor + 0.01 for name, tensor in state.items()}, str(path), metadata=metadata)
    return path.read_bytes()


@pytest.fixture
def test_rows(mini_root: Path) -> int:
    with (mini_root / "manifest.jsonl").open(encoding="utf-8") as handle:
        return sum(json.loads(line)["split"] == "test" for line in handle)


@pytest.fixture(params=["form", "api"])
def uploader(request: pytest.FixtureRequest, alice) -> Uploader:
    return make_uploader(request.param, alice)


# --- accepted uploads --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "fmt", "filename", "extension", "architecture"), [
    ("onnx", "onnx", "detector.onnx", "onnx", ""),
    ("torchscript", "torchscript", "detector.pt", "pt", ""),
    ("safetensors_bare", "safetensors", "detector.safetensors", "safetensors", "spectral-lr"),
    ("safetensors", "safetensors", "detector.safetensors", "safetensors", ""),  # named by its metadata
])
def test_a_valid_upload_creates_one_artifact_one_queued_submission_and_one_run_and_schedules_one_send(
    uploader: Uploader, files, kind, fmt, filename, extension, architecture, alice, mini_dataset, test_rows, send,
    media_root, django_capture_on_commit_callbacks,
):
    data = files[kind]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = uploader.post(data, filename=filename, fmt=fmt, name="  tiny one  ", architecture=architecture)
    submission_id = uploader.created_id(response)

    artifact = Artifact.objects.get()
    sha = hashlib.sha256(data).hexdigest()
    assert (artifact.owner, artifact.sha256, artifact.size, artifact.format, artifact.input_size) == (
        alice, sha, len(data), fmt, INPUT_SIZE)
    assert artifact.architecture == ("spectral-lr" if fmt == "safetensors" else "")
    assert artifact.original_name == filename
    assert artifact.file.name == f"artifacts/{sha}.{extension}"
    assert stored_files(media_root) == [f"artifacts/{sha}.{extension}"]
    assert (media_root / artifact.file.name).read_bytes() == data

    submission = Submission.objects.get()
    assert submission.pk == submission_id
    assert (submission.status, submission.name, submission.owner, submission.artifact) == (
        "queued", "tiny one", alice, artifact)
    assert (submission.benchmark.slug, submission.dataset) == ("mini", mini_dataset)

    run = EvaluationRun.objects.get()
    assert run.submission == submission
    assert (run.protocol, run.protocol_version, run.split, run.status) == ("cross-generator", get_protocol("cross-generator").version, "test", "queued")
    assert test_rows == 1104
    assert (run.dataset, run.first_row, run.last_row, run.total, run.done) == (mini_dataset, 0, test_rows, test_rows, 0)

    assert len([c for c in callbacks if not pagecache.is_retirement(c)]) == 1
    send.assert_called_once_with(runs=[run])


def test_the_api_answers_a_created_submission_with_its_provenance(files, alice, mini_dataset, send):
    token, _ = Token.objects.get_or_create(user=alice)
    response = Client().post(
        reverse("api:submission-create"),
        {"benchmark": "mini", "format": "onnx", "input_size": INPUT_SIZE, "file": SimpleUploadedFile("d.onnx", files["onnx"])},
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["owner"] == "alice" and body["benchmark"] == "mini"
    assert body["artifact_sha256"] == hashlib.sha256(files["onnx"]).hexdigest()
    assert (body["artifact_format"], body["input_size"]) == ("onnx", INPUT_SIZE)
    assert body["manifest_sha256"] == mini_dataset.manifest_sha256
    assert body["progress"] == {"done": 0, "total": 1104, "stage": ""}
    assert body["name"] == "d.onnx"  # no name given: the file's name


def test_the_same_file_uploaded_twice_by_the_same_user_reuses_the_artifact(
    uploader: Uploader, files, mini_dataset, send, media_root, django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        first = uploader.created_id(uploader.post(files["onnx"], name="first"))
        second = uploader.created_id(uploader.post(files["onnx"], name="second"))

    assert first != second
    artifact = Artifact.objects.get()
    assert list(Submission.objects.order_by("pk").values_list("name", "artifact")) == [
        ("first", artifact.pk), ("second", artifact.pk)]
    assert EvaluationRun.objects.count() == 2
    assert stored_files(media_root) == [f"artifacts/{artifact.sha256}.onnx"]
    assert send.call_count == 2


def test_another_file_gets_its_own_artifact(uploader: Uploader, files, mini_dataset, send, media_root):
    uploader.created_id(uploader.post(files["onnx"]))
    uploader.created_id(uploader.post(files["onnx_other"]))
    assert Artifact.objects.count() == 2
    assert len(stored_files(media_root)) == 2


# --- refused uploads ---------------------------------------------------------------------------------

PICKLE_WORDS = ("pickled PyTorch checkpoint", "never unpickles", *HOW_TO_EXPORT)

REFUSED = {
    # case: (file kind, declared format, input size, key words the refusal must contain)
    "pickled state dict": ("state_dict", "torchscript", INPUT_SIZE, PICKLE_WORDS),
    "pickled whole model": ("whole_model", "torchscript", INPUT_SIZE, PICKLE_WORDS),
    "legacy pickle": ("legacy_pickle", "torchscript", INPUT_SIZE, PICKLE_WORDS),
    "torch.export archive": ("export_archive", "torchscript", INPUT_SIZE, ("torch.export archive", *HOW_TO_EXPORT)),
    "torch.package": ("torch_package", "torchscript", INPUT_SIZE, ("torch.package archive", *HOW_TO_EXPORT)),
    "random bytes": ("random_bytes", "onnx", INPUT_SIZE,
                     ("not a TorchScript archive, an ONNX model or a safetensors file", *HOW_TO_EXPORT)),
    "empty file": ("empty", "onnx", INPUT_SIZE, ("The file is empty", "torch.onnx.export")),
    "TorchScript declared as ONNX": ("torchscript", "onnx", INPUT_SIZE,
                                     ("declared as ONNX but it is a TorchScript archive",
                                      "Choose the format 'torchscript'")),
    "input size below 16": ("onnx", "onnx", 8, ("greater than or equal to 16",)),
    "input size above 1024": ("onnx", "onnx", 4096, ("less than or equal to 1024",)),
    "safetensors without an architecture": ("safetensors_bare", "safetensors", INPUT_SIZE,
                                            ("holds weights only", "name the model zoo architecture")),
    "safetensors named against its metadata": ("safetensors", "safetensors", INPUT_SIZE,
                                               ("metadata says it holds weights of 'spectral-lr'", "'spectral-svm'"),
                                               "spectral-svm"),
    "an architecture with an ONNX file": ("onnx", "onnx", INPUT_SIZE, ("only with a safetensors upload",),
                                          "spectral-lr"),
    "safetensors declared as ONNX": ("safetensors", "onnx", INPUT_SIZE,
                                     ("declared as ONNX but it is a safetensors state dict",)),
}
API_ONLY = {  # the form offers a closed list of architectures (it refuses others as invalid choices); the API
    # takes any string and explains
    "an unknown architecture": ("safetensors_bare", "safetensors", INPUT_SIZE,
                                ("no zoo entry named 'spectral_lr'", "did you mean: spectral-lr"), "spectral_lr"),
    "an embedding, not a detector": ("safetensors_bare", "safetensors", INPUT_SIZE,
                                     ("'triplet-absolute' is not a detector architecture", "spectral-lr"),
                                     "triplet-absolute"),
}


@pytest.mark.parametrize("case", list(REFUSED) + list(API_ONLY))
def test_a_refused_upload_answers_400_says_what_to_do_and_leaves_nothing_behind(
    uploader: Uploader, files, case, mini_dataset, send, media_root, django_capture_on_commit_callbacks,
):
    kind, fmt, input_size, words, *architecture = {**REFUSED, **API_ONLY}[case]
    if case in API_ONLY and uploader.via == "form":
        words = ("Select a valid choice", architecture[0])
    before = stored_files(media_root)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = uploader.post(files[kind], fmt=fmt, input_size=input_size, architecture="".join(architecture))
    message = uploader.refusal(response)
    for word in words:
        assert word in message, f"{word!r} missing from the refusal: {message}"
    assert "Traceback" not in response.content.decode()
    assert (Artifact.objects.count(), Submission.objects.count(), EvaluationRun.objects.count()) == (0, 0, 0)
    assert stored_files(media_root) == before == []
    assert callbacks == [] and send.call_count == 0


def test_a_file_above_the_upload_limit_is_refused_with_sizes_and_what_to_do(
    uploader: Uploader, files, settings, tmp_path, mini_dataset, send, media_root,
):
    settings.SPECTRA_MAX_UPLOAD_BYTES = 1 * MiB
    temporary = tmp_path / "upload-tmp"
    temporary.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temporary)
    data = pad_onnx(files["onnx"], 3 * MiB)  # a valid ONNX file: only its size is wrong

    message = uploader.refusal(uploader.post(data))

    assert "The file is 3.0 MiB; the limit is 1 MiB." in message
    assert "Export a smaller model" in message and "SPECTRA_MAX_UPLOAD_MB" in message
    assert (Artifact.objects.count(), Submission.objects.count(), EvaluationRun.objects.count()) == (0, 0, 0)
    assert stored_files(media_root) == []
    assert list(temporary.iterdir()) == []  # the 3 MiB went to a temporary file, removed after the request
    assert send.call_count == 0


def test_a_file_just_at_the_upload_limit_is_accepted(uploader: Uploader, files, settings, mini_dataset, send):
    settings.SPECTRA_MAX_UPLOAD_BYTES = 1 * MiB
    uploader.created_id(uploader.post(pad_onnx(files["onnx"], 1 * MiB)))
    assert Artifact.objects.get().size == 1 * MiB


def test_an_empty_upload_is_told_how_to_export(uploader: Uploader, files, mini_dataset, send):
    message = uploader.refusal(uploader.post(files["empty"]))
    assert "torch.onnx.export" in message


# --- who may upload ----------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page_by_the_form(client, files, mini_dataset, send):
    assert client.get(reverse("submit")).url == "/accounts/login/?next=/submit/"
    response = client.post(reverse("submit"), {
        "benchmark": "mini", "format": "onnx", "input_size": INPUT_SIZE, "file": SimpleUploadedFile("d.onnx", files["onnx"]),
    })
    assert response.status_code == 302 and response.url == "/accounts/login/?next=/submit/"
    assert (Artifact.objects.count(), Submission.objects.count()) == (0, 0)


@pytest.mark.parametrize("authorization", [None, "Token 0123456789abcdef0123456789abcdef01234567"])
def test_the_api_refuses_uploads_without_a_valid_token(files, mini_dataset, send, media_root, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = Client().post(reverse("api:submission-create"), {
        "benchmark": "mini", "format": "onnx", "input_size": INPUT_SIZE, "file": SimpleUploadedFile("d.onnx", files["onnx"]),
    }, **headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    body = response.json()
    assert set(body) == {"message", "extra"} and body["extra"] == {}
    assert ("credentials were not provided" in body["message"]) if authorization is None else (
        body["message"] == "Invalid token.")
    assert (Artifact.objects.count(), Submission.objects.count()) == (0, 0)
    assert stored_files(media_root) == [] and send.call_count == 0


def test_an_api_upload_to_an_unknown_benchmark_is_a_400_in_the_error_shape(files, alice, mini_dataset, send):
    token, _ = Token.objects.get_or_create(user=alice)
    response = Client().post(reverse("api:submission-create"), {
        "benchmark": "nope", "format": "onnx", "file": SimpleUploadedFile("d.onnx", files["onnx"]),
    }, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 400
    assert response.json() == {"message": "There is no benchmark 'nope'. Benchmarks: mini.", "extra": {}}
    assert Artifact.objects.count() == 0


def test_an_api_upload_with_missing_fields_lists_them(alice, mini_dataset, send):
    token, _ = Token.objects.get_or_create(user=alice)
    response = Client().post(reverse("api:submission-create"), {"format": "pickle"},
                             HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Some fields are invalid."
    assert set(body["extra"]["fields"]) == {"benchmark", "file", "format"}
    assert "not a valid choice" in body["extra"]["fields"]["format"][0]


# --- streaming ---------------------------------------------------------------------------------------


def test_a_5_mib_form_upload_is_streamed_to_a_temporary_file_and_stored_intact(
    alice_client, files, settings, mini_dataset, send, media_root,
):
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE == 2 * MiB
    assert settings.FILE_UPLOAD_HANDLERS[0] == "spectra.submissions.uploads.UploadLimitHandler"
    assert settings.FILE_UPLOAD_HANDLERS[1:] == global_settings.FILE_UPLOAD_HANDLERS
    assert settings.FILE_UPLOAD_HANDLERS[-1] == "django.core.files.uploadhandler.TemporaryFileUploadHandler"
    data = pad_onnx(files["onnx"], 5 * MiB)
    fields = {"name": "big", "benchmark": "mini", "format": "onnx", "input_size": INPUT_SIZE}

    # The same multipart body, parsed by Django with the project's settings, arrives as a file on disk.
    request = RequestFactory().post(reverse("submit"), {**fields, "file": SimpleUploadedFile("big.onnx", data)})
    upload = request.FILES["file"]
    assert isinstance(upload, TemporaryUploadedFile) and upload.size == 5 * MiB
    upload.close()

    response = alice_client.post(reverse("submit"), {**fields, "file": SimpleUploadedFile("big.onnx", data)})
    assert response.status_code == 302, html.unescape(response.content.decode())[:2000]
    artifact = Artifact.objects.get()
    assert artifact.size == 5 * MiB and artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert (media_root / artifact.file.name).read_bytes() == data
