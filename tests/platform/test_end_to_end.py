"""Upload real detector files through the web form, let real worker processes evaluate them, and find
the numbers on the leaderboard page and in the API equal to a direct computation."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from evaluation.sandbox.launch import bubblewrap_problem
from tests.detector_files import reference_scores, write_hostile_torchscript, write_onnx
from tests.reference import expected_metrics, json_rows, load_images, split_rows

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]
INPUT_SIZE = 64
METRICS = ("acc_real", "acc_generated", "acc_mean", "ap", "roc_auc")


def _direct(mini_root: Path, seed: int) -> dict[str, dict[str, float]]:
    rows = split_rows(mini_root)
    scores = reference_scores(load_images(mini_root, rows, INPUT_SIZE), seed=seed)
    return expected_metrics(rows, np.asarray(scores, dtype=np.float64))


def _assert_api_matches(client, submission_id: int, expected: dict[str, dict[str, float]]) -> None:
    board = client.get(reverse("api:leaderboard", args=["mini"])).json()
    row = next(r for r in board["rows"] if r["submission_id"] == submission_id)
    for metric in METRICS:
        assert row["mean"][metric] == pytest.approx(expected["mean"][metric], abs=1e-6), metric
        for generator in board["generators"]:
            assert row["per_generator"][generator][metric] == pytest.approx(expected[generator][metric], abs=1e-6)
    assert set(board["generators"]) == set(expected) - {"mean"}
    results = client.get(reverse("api:submission-results", args=[submission_id])).json()
    assert {r["subset"] for r in results if not r["condition"]} == set(expected)


def _assert_page_matches(html: str, submission_id: int, expected: dict[str, dict[str, float]]) -> None:
    row = re.search(rf'<tr data-submission="{submission_id}">(.*?)</tr>', html, re.S)
    assert row, "the submission has no row on the leaderboard page"
    shown = float(re.search(r'data-metric="acc_mean">([0-9.]+)\s*<', row.group(1)).group(1))
    assert shown == pytest.approx(expected["mean"]["acc_mean"], abs=5e-5)
    for generator, metrics in expected.items():
        if generator != "mean":
            cell = re.search(rf'data-generator="{generator}"[^>]*>([0-9.]+)<', row.group(1)).group(1)
            assert float(cell) == pytest.approx(metrics["acc_mean"], abs=5e-5)


def test_onnx_upload_through_the_form_is_evaluated_and_ranked(alice_client, mini_dataset, mini_root, workers, tmp_path):
    path = write_onnx(tmp_path / "detector.onnx", seed=3, input_size=INPUT_SIZE)
    with path.open("rb") as handle:
        response = alice_client.post(reverse("submit"), {
            "name": "tiny onnx", "benchmark": "mini", "format": "onnx", "input_size": INPUT_SIZE, "file": handle,
        })
    assert response.status_code == 302, response.content.decode()[:2000]
    submission_id = int(response.url.rstrip("/").split("/")[-1])
    submission = workers.wait_for(submission_id)
    assert submission.status == "done", submission.error
    expected = _direct(mini_root, seed=3)
    _assert_api_matches(alice_client, submission_id, expected)
    _assert_page_matches(alice_client.get(reverse("leaderboard", args=["mini"])).content.decode(), submission_id, expected)
    run = submission.runs.get()
    assert run.scores.count == len(split_rows(mini_root)) and run.done == run.total
    isolation = alice_client.get(reverse("api:submission-detail", args=[submission_id])).json()["isolation"]
    assert isolation["sandbox"] == ("process" if bubblewrap_problem() else "bubblewrap")
    assert isolation["full"] is not bool(bubblewrap_problem()) and isolation["network"] == "none"
    page = alice_client.get(reverse("submission-detail", args=[submission_id])).content.decode()
    assert 'id="isolation"' in page and "image tensors only" in page


def test_a_detector_that_fails_on_the_worker_reports_it_in_plain_words(alice_client, mini_dataset, workers, tmp_path):
    # The ONNX graph is fixed to 64 px; declaring 32 px makes the worker refuse it when it loads it.
    path = write_onnx(tmp_path / "fixed.onnx", seed=1, input_size=64)
    with path.open("rb") as handle:
        response = alice_client.post(reverse("submit"), {
            "name": "wrong size", "benchmark": "mini", "format": "onnx", "input_size": 32, "file": handle,
        })
    submission = workers.wait_for(int(response.url.rstrip("/").split("/")[-1]))
    assert submission.status == "failed" and submission.error_kind == "user"
    assert "input size is 32" in submission.error and "Declare the size the model was exported with" in submission.error
    page = alice_client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "because of the detector" in page and "input size is 32" in page and "Traceback" not in page
    assert not submission.results.exists()


def _upload(client, path: Path, name: str) -> int:
    with path.open("rb") as handle:
        response = client.post(reverse("submit"), {
            "name": name, "benchmark": "mini", "format": "onnx", "input_size": INPUT_SIZE, "file": handle,
        })
    assert response.status_code == 302, response.content.decode()[:2000]
    return int(response.url.rstrip("/").split("/")[-1])


def test_two_evaluation_workers_share_one_submission_and_the_merged_result_equals_a_single_shard_run(
    alice_client, mini_dataset, mini_root, workers, tmp_path, settings,
):
    path = write_onnx(tmp_path / "shared.onnx", seed=5, input_size=INPUT_SIZE)
    settings.SPECTRA_CARRY_THRESHOLD = True  # the validation split is scored too
    settings.SPECTRA_SHARD_IMAGES = 10_000
    single = workers.wait_for(_upload(alice_client, path, "one shard"))
    settings.SPECTRA_SHARD_IMAGES = 100  # 12 shards of the 1104 test images, 7 of the 678 validation images
    shared = workers.wait_for(_upload(alice_client, path, "nineteen shards"))
    assert (single.status, shared.status) == ("done", "done"), (single.error, shared.error)
    assert single.runs.count() == 2 and shared.runs.count() == 19
    assert len({run.worker for run in shared.runs.all()}) == 2, "both evaluation workers should have taken shards"

    def numbers(submission):
        return {(r.subset, r.condition): (r.metrics, r.intervals) for r in submission.results.all()}

    assert numbers(shared) == numbers(single)
    expected = _direct(mini_root, seed=5)
    for (subset, condition), (metrics, _) in numbers(shared).items():
        if condition:  # the reliability bins
            continue
        for metric in METRICS:
            assert metrics[metric] == pytest.approx(expected[subset][metric], abs=1e-6)
    # The carried threshold: the best balanced cut on the validation images, scored directly here.
    mean = shared.results.get(subset="mean", condition="").metrics
    val_rows = [r for r in json_rows(mini_root) if r["split"] == "val"]
    val_labels = np.array([r["label"] for r in val_rows])
    val_scores = np.asarray(reference_scores(load_images(mini_root, val_rows, INPUT_SIZE), seed=5), dtype=np.float32)
    t = mean["threshold_carried"]

    def balanced(cut: float) -> float:
        return (np.mean(val_scores[val_labels == 0] <= cut) + np.mean(val_scores[val_labels == 1] > cut)) / 2

    assert balanced(t) == pytest.approx(max(balanced(c) for c in set(val_scores.tolist())), abs=1e-9)


def _cropped_images(root: Path, rows: list[dict], crops: dict[str, int], size: int):
    """Decoded as the pipeline should: torchvision's CenterCrop on the decoded image (an implementation
    independent of the platform's), then the resize to the input size."""
    import torch
    from PIL import Image
    from torchvision.transforms import CenterCrop
    from torchvision.transforms.functional import pil_to_tensor

    images = []
    for row in rows:
        with Image.open(root / row["path"]) as image:
            rgb = CenterCrop(crops[row["generator"]])(image.convert("RGB"))
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        images.append(pil_to_tensor(rgb).to(torch.float32) / 255.0)
    return torch.stack(images)


def test_real_workers_evaluate_the_unbiased_variant_through_its_centre_crops(
    alice_client, mini_dataset, mini_variant_roots, workers, tmp_path,
):
    from evaluation.datasets.manifest import centre_crops
    from spectra.benchmarks.services import dataset_register
    from spectra.submissions.models import ImageScores
    from spectra.submissions.selectors import image_scores_get

    root = mini_variant_roots["unbiased"]
    crops = centre_crops(str(root))
    assert crops and all(side != INPUT_SIZE for side in crops.values()), "the variant must crop, then resize"
    dataset_register(benchmark=mini_dataset.benchmark, root=root, variant="unbiased")
    submission = workers.wait_for(_upload(alice_client, write_onnx(tmp_path / "d.onnx", seed=5), "unbiased"))
    assert submission.status == "done", submission.error

    from evaluation.protocols import RANKED_PROTOCOL

    runs = submission.runs.filter(dataset__variant="unbiased", protocol=RANKED_PROTOCOL)
    assert runs.exists()
    pairs = [image_scores_get(scores=ImageScores.objects.get(run=run)) for run in runs]
    row_ids, stored = np.concatenate([ids for ids, _ in pairs]), np.concatenate([values for _, values in pairs])
    rows = json_rows(root)
    tested = [rows[i] for i in row_ids]
    assert {row["split"] for row in tested} >= {"test"} and len(set(row_ids.tolist())) == len(tested)
    expected = reference_scores(_cropped_images(root, tested, crops, INPUT_SIZE), seed=5)
    assert np.abs(stored - expected).max() < 1e-4
    uncropped = reference_scores(load_images(root, tested, INPUT_SIZE), seed=5)
    assert np.abs(stored - uncropped).max() > 1e-2  # without the crop the scores would differ: the crop was applied


def _upload_torchscript(client, path: Path, name: str) -> int:
    with path.open("rb") as handle:
        response = client.post(reverse("submit"), {
            "name": name, "benchmark": "mini", "format": "torchscript", "input_size": 32, "file": handle,
        })
    assert response.status_code == 302, response.content.decode()[:2000]
    return int(response.url.rstrip("/").split("/")[-1])


def test_a_detector_that_reads_the_manifest_fails_without_its_labels(alice_client, mini_dataset, mini_root, workers,
                                                                     tmp_path):
    model = write_hostile_torchscript(tmp_path / "thief.pt", "reads_file", target=str(mini_root / "manifest.jsonl"))
    submission = workers.wait_for(_upload_torchscript(alice_client, model, "thief"))
    assert submission.status == "failed" and submission.error_kind == "user"
    assert "unable to open file" in submission.error and "No such file" in submission.error
    assert not submission.results.exists()


def test_a_detector_that_hangs_in_its_probe_fails_the_whole_submission_at_once(alice_client, mini_dataset, workers,
                                                                               tmp_path, settings):
    """Four shards, two workers, a probe budget of 20 s (tests/conftest.py): each worker waits out the budget
    at most once; its other shards of the artifact fail at once, and the rest are cancelled."""
    settings.SPECTRA_SHARD_IMAGES = 300
    model = write_hostile_torchscript(tmp_path / "hang.pt", "loop")
    submission = workers.wait_for(_upload_torchscript(alice_client, model, "hangs"))
    assert submission.status == "failed" and submission.error_kind == "user"
    assert "did not answer within 20 s while scoring its probe batch" in submission.error
    runs = list(submission.runs.all())
    assert len(runs) == 4 and all(run.status == "failed" for run in runs)
    waited_out = [run for run in runs if run.error.startswith("The detector did not answer")]
    assert len(waited_out) <= 2, [run.error for run in runs]  # at most once per evaluation worker
    assert all(run.stage == "cancelled" or "earlier shard" in run.error for run in runs if run not in waited_out)
