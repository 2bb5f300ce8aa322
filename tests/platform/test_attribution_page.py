"""An attribution detector's shard, recorded by the platform: the page shows its accuracy and confusion matrix, and
the benchmark page the classes its logits are over."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from sklearn.metrics import accuracy_score

from evaluation.attribution import class_conditions, declared_classes
from spectra.submissions.models import Result
from spectra.submissions.services.runs import shard_done_record
from spectra.submissions.services.submissions import submission_create
from tests import detector_files
from tests.platform.test_services import done_message, test_split  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def test_the_page_shows_attribution_for_class_logits_and_the_benchmark_lists_the_classes(
        alice, alice_client, mini_dataset, send, test_split, tmp_path, django_capture_on_commit_callbacks) -> None:  # noqa: F811
    onnx = detector_files.write_onnx(tmp_path / "d.onnx", seed=4, input_size=64).read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        submission = submission_create(owner=alice, name="classes", benchmark=mini_dataset.benchmark,
                                       upload=SimpleUploadedFile("d.onnx", onnx), declared_format="onnx", input_size=64)
    run = submission.runs.get()
    rows = test_split[1]
    labels = np.array([r["label"] for r in rows])
    generators = [r["generator"] for r in rows]
    classes = declared_classes(labels, generators)
    truth = np.array([0 if y == 0 else classes.index(g) for y, g in zip(labels, generators, strict=True)])
    rng = np.random.default_rng(3)
    class_logits = (rng.normal(0, 1, (len(classes), len(rows))) + 1.5 * np.eye(len(classes))[truth].T).astype(np.float32)
    binary = np.logaddexp.reduce(class_logits[1:].astype(np.float64), axis=0) - class_logits[0]
    scores = np.vstack([binary.astype(np.float32), class_logits]).ravel()
    message = dataclasses.replace(done_message(run, test_split), scores=[float(v) for v in scores],
                                  conditions=["", *class_conditions(len(classes))])
    shard_done_record(outcome=message)
    headline = Result.objects.get(submission=submission, condition="attribution", subset="mean")
    assert headline.metrics["attribution_acc"] == pytest.approx(accuracy_score(truth, class_logits.argmax(axis=0)))

    page = alice_client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert 'id="attribution-accuracy"' in page and '"confusion"' in page and 'id="results"' in page
    assert page.count('data-subset="real"') == 0  # the confusion rows stay out of the results table
    figure = alice_client.get(reverse("submission-figure", args=[submission.pk, "confusion", "csv"]))
    assert figure.status_code == 200 and figure.content.decode().count("\n") == 1 + len(classes) ** 2
    benchmark = alice_client.get(reverse("benchmark-detail", args=["mini"])).content.decode()
    assert f'data-classes="{",".join(classes)}"' in benchmark
