"""A zoo detector is fitted, exported to the three upload formats, and its safetensors weights are evaluated
exactly like an upload (format 3: a zoo architecture + a state dict), by real workers; its row, page and
downloads agree with a direct computation on the downloaded files."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import onnxruntime
import pytest
import torch
from django.core.management import call_command
from django.urls import reverse

from spectra.submissions.models import Submission
from spectra.zoo.models import ZooPreparation
from tests.reference import expected_metrics, load_images, split_rows

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def download(client, entry: str, sha256: str) -> bytes:
    response = client.get(reverse("zoo-weights", args=[entry, sha256]))
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == sha256
    return data


def test_the_spectral_baseline_row_is_evaluated_through_the_upload_path(client, mini_dataset, mini_root, workers, tmp_path):
    from safetensors.torch import load as load_safetensors

    from models_zoo.registry import create_model

    call_command("zoo_baselines", "--entry", "spectral-lr", stdout=io.StringIO())
    submission = Submission.objects.get(zoo_entry="spectral-lr")
    artifact = submission.artifact
    assert (submission.owner.username, submission.zoo_trained_on) == ("zoo", "original")
    assert (artifact.format, artifact.architecture, artifact.input_size) == ("safetensors", "spectral-lr", 64)
    done = workers.wait_for(submission.pk)
    assert done.status == "done", done.error
    again = io.StringIO()
    call_command("zoo_baselines", "--entry", "spectral-lr", stdout=again)  # idempotent
    assert "is done" in again.getvalue() and Submission.objects.filter(zoo_entry="spectral-lr").count() == 1
    record = ZooPreparation.objects.get(entry="spectral-lr")
    assert (record.trained_on, record.seed, record.stage, record.submission_id) == ("original", 0, "submitted", done.pk)
    assert done.name.endswith("(zoo, trained on original, seed 0)")

    # The evaluated weights, rebuilt by hand in the registered architecture, and the TorchScript and ONNX exports
    # of the same weights all score the test split alike.
    model = create_model("spectral-lr", input_size=64)
    model.load_state_dict(load_safetensors(download(client, "spectral-lr", artifact.sha256)), strict=True)
    exports = {e.artifact.format: e.artifact for e in submission.zoo_exports.select_related("artifact")}
    assert set(exports) == {"torchscript", "onnx"}
    scripted = torch.jit.load(io.BytesIO(download(client, "spectral-lr", exports["torchscript"].sha256)))
    rows = split_rows(mini_root)
    images = load_images(mini_root, rows, 64)
    with torch.no_grad():
        scores = model(images).double().numpy()  # logits, as the platform stores them
        assert torch.equal(scripted(images[:16]), model(images[:16]))
    onnx_path = tmp_path / "spectral.onnx"
    onnx_path.write_bytes(download(client, "spectral-lr", exports["onnx"].sha256))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {session.get_inputs()[0].name: images[:16].numpy()})[0]
    np.testing.assert_allclose(onnx_logits.reshape(-1), model(images[:16]).numpy(), atol=1e-4)
    expected = expected_metrics(rows, scores)
    board = client.get(reverse("api:leaderboard", args=["mini"])).json()
    row = next(r for r in board["rows"] if r["submission_id"] == submission.pk)
    assert row["zoo_entry"] == "spectral-lr"
    for metric, value in expected["mean"].items():
        assert row["mean"][metric] == pytest.approx(value, abs=1e-6), metric
    # The spectral profile tells the mini generators from real tiles (0.598 with SPECTRAL_PROFILE_VERSION 2's grey,
    # libpng's truncated one; 0.610 with version 1's rounded luma).
    assert row["mean"]["acc_mean"] > 0.55
    page = client.get(reverse("zoo-detail", args=["spectral-lr"])).content.decode()
    assert f'<tr data-submission="{submission.pk}">' in page
    assert all(sha in page for sha in (artifact.sha256, exports["torchscript"].sha256, exports["onnx"].sha256))
    assert 'class="badge" href="/zoo/spectral-lr/">zoo</a>' in client.get(reverse("leaderboard", args=["mini"])).content.decode()
    assert np.isfinite(scores).all()
