"""A zoo detector is fitted, exported and evaluated exactly like an upload, by real workers; its row, page and
weights download agree with a direct computation on the downloaded file."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.urls import reverse

from spectra.submissions.models import Submission
from tests.reference import expected_metrics, load_images, split_rows

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def test_the_spectral_baseline_row_is_evaluated_through_the_upload_path(client, mini_dataset, mini_root, workers):
    out = io.StringIO()
    call_command("zoo_baselines", "--entry", "spectral-lr", stdout=out)
    submission = Submission.objects.get(zoo_entry="spectral-lr")
    assert (submission.owner.username, submission.artifact.format, submission.artifact.input_size) == ("zoo", "torchscript", 64)
    done = workers.wait_for(submission.pk)
    assert done.status == "done", done.error
    again = io.StringIO()
    call_command("zoo_baselines", "--entry", "spectral-lr", stdout=again)  # idempotent
    assert "is done" in again.getvalue() and Submission.objects.filter(zoo_entry="spectral-lr").count() == 1

    response = client.get(reverse("zoo-weights", args=["spectral-lr", submission.artifact.sha256]))
    weights = b"".join(response.streaming_content)
    assert hashlib.sha256(weights).hexdigest() == submission.artifact.sha256
    model = torch.jit.load(io.BytesIO(weights))
    rows = split_rows(mini_root)
    with torch.no_grad():
        scores = torch.sigmoid(model(load_images(mini_root, rows, 64)).double()).numpy()
    expected = expected_metrics(rows, scores)
    board = client.get(reverse("api:leaderboard", args=["mini"])).json()
    row = next(r for r in board["rows"] if r["submission_id"] == submission.pk)
    assert row["zoo_entry"] == "spectral-lr"
    for metric, value in expected["mean"].items():
        assert row["mean"][metric] == pytest.approx(value, abs=1e-6), metric
    assert row["mean"]["acc_mean"] > 0.6  # the spectral profile tells the mini generators from real tiles
    page = client.get(reverse("zoo-detail", args=["spectral-lr"])).content.decode()
    assert f'<tr data-submission="{submission.pk}">' in page and submission.artifact.sha256 in page
    assert 'class="badge" href="/zoo/spectral-lr/">zoo</a>' in client.get(reverse("leaderboard", args=["mini"])).content.decode()
    assert np.isfinite(scores).all()
